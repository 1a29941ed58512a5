"""The exchange emulator driven by the real ccxt Binance and Bybit classes."""

from __future__ import annotations

import asyncio
import itertools
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest

from engine.exchanges.api_urls import point_exchange_at
from tests.emulators.exchange import (
    DEFAULT_MARKETS,
    EXCHANGES,
    INTERVAL_MS,
    BinanceLimits,
    BybitLimits,
    ExchangeEmulator,
    default_price,
    interval_open,
    now_ms,
)

REPO = Path(__file__).resolve().parents[2]
OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {
        "fetchMarkets": {"types": ["spot"]},
        "fetchCurrencies": False,
        "fetchMargins": False,
    },
    "bybit": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}},
}
FAST_RATE_LIMIT_MS = 1
both = pytest.mark.parametrize("exchange_id", EXCHANGES)


@pytest.fixture(scope="module")
def emu() -> Iterator[ExchangeEmulator]:
    with ExchangeEmulator() as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _clean_slate(emu: ExchangeEmulator) -> Iterator[None]:
    """Each test starts with default prices, unlimited depth, default limits and no faults."""
    yield
    emu.clear_faults()
    emu.set_rate_limit("binance", **asdict(BinanceLimits()))
    emu.set_rate_limit("bybit", **asdict(BybitLimits()))
    for exchange in EXCHANGES:
        for symbol in DEFAULT_MARKETS:
            emu.set_depth(exchange, symbol, None)
            emu.set_price(exchange, symbol, default_price(symbol))


def new_account(emu: ExchangeEmulator, exchange_id: str, **kwargs: Any) -> tuple[str, str]:
    key, secret = f"key-{uuid.uuid4().hex[:16]}", f"secret-{uuid.uuid4().hex}"
    emu.add_account(exchange_id, key, secret, **kwargs)
    return key, secret


@asynccontextmanager
async def connect(
    emu: ExchangeEmulator,
    exchange_id: str,
    api_key: str | None = None,
    secret: str | None = None,
    rate_limit_ms: float | None = FAST_RATE_LIMIT_MS,
) -> AsyncIterator[Any]:
    """A real ccxt client pointed at the emulator, with ccxt's own rate limiter on.

    ccxt's limiter paces by ``rateLimit`` ms per unit of cost (Bybit's coin list
    alone costs 28 units, 0.56 s); tests shorten the unit to stay fast, except
    `test_product_pacing_stays_under_the_real_limits`, which keeps ccxt's own.
    """
    config: dict[str, Any] = {"enableRateLimit": True, "options": dict(OPTIONS[exchange_id])}
    if rate_limit_ms is not None:
        config["rateLimit"] = rate_limit_ms
    if api_key is not None:
        config.update(apiKey=api_key, secret=secret)
    exchange = getattr(ccxt, exchange_id)(config)
    exchange.timeout_on_exit = 0  # ccxt waits 0.25 s on close for TLS sessions; this is plain HTTP
    point_exchange_at(exchange, emu.base_url)
    try:
        yield exchange
    finally:
        await exchange.close()


@asynccontextmanager
async def trader(emu: ExchangeEmulator, exchange_id: str, **account: Any) -> AsyncIterator[Any]:
    """A client with keys of a fresh account (10,000 USDT unless told)."""
    key, secret = new_account(emu, exchange_id, **account)
    async with connect(emu, exchange_id, key, secret) as exchange:
        exchange.test_api_key = key
        yield exchange


async def find_by_client_id(exchange: Any, symbol: str, client_id: str) -> dict[str, Any]:
    """How the engine finds an order whose answer never arrived."""
    order: dict[str, Any]
    if exchange.id == "binance":
        order = await exchange.fetch_order(None, symbol, {"clientOrderId": client_id})
        return order
    # Bybit: order/realtime filtered by orderLinkId answers for any status.
    [order] = await exchange.fetch_open_orders(symbol, params={"orderLinkId": client_id})
    return order


# --------------------------------------------------------------------------
# market data
# --------------------------------------------------------------------------
@both
async def test_load_markets_precision_and_limits(emu, exchange_id):
    emu.reset_calls()
    async with connect(emu, exchange_id) as exchange:
        markets = await exchange.load_markets()
    assert set(DEFAULT_MARKETS) <= set(markets)
    btc, doge = markets["BTC/USDT"], markets["DOGE/USDT"]
    assert btc["spot"] and btc["active"] and btc["id"] == "BTCUSDT"
    assert btc["precision"]["price"] == 0.01
    assert btc["precision"]["amount"] == 0.00001
    assert btc["limits"]["amount"]["min"] == 0.00001
    assert btc["limits"]["cost"]["min"] == (5 if exchange_id == "binance" else 1)
    assert doge["precision"] == {**doge["precision"], "price": 0.00001, "amount": 1}
    paths = [c.path for c in emu.calls]
    assert paths == (
        ["/api/v3/exchangeInfo"] if exchange_id == "binance" else ["/v5/market/instruments-info"]
    )


@both
async def test_fetch_ticker_follows_set_price(emu, exchange_id):
    async with connect(emu, exchange_id) as exchange:
        ticker = await exchange.fetch_ticker("ETH/USDT")
        assert ticker["last"] == 3200
        assert ticker["bid"] < ticker["last"] < ticker["ask"]
        assert ticker["low"] <= ticker["last"] <= ticker["high"]
        emu.set_price(exchange_id, "ETH/USDT", Decimal("3333.337"))
        assert (await exchange.fetch_ticker("ETH/USDT"))["last"] == 3333.34  # rounded to the tick


@both
async def test_fetch_ohlcv_paginates_with_since_and_limit(emu, exchange_id):
    step = INTERVAL_MS["1m"]
    current = interval_open(step, now_ms())
    since = current - 25 * step
    rows: list[list[float]] = []
    async with connect(emu, exchange_id) as exchange:
        cursor = since
        while True:
            page = await exchange.fetch_ohlcv("BTC/USDT", "1m", since=cursor, limit=10)
            rows += page
            if len(page) < 10:
                break
            cursor = page[-1][0] + 1
        again = await exchange.fetch_ohlcv("BTC/USDT", "1m", since=since, limit=10)
    if rows[-1][0] != current:  # a new minute began while paging
        current += step
    assert [r[0] for r in rows] == list(range(since, current + 1, step))
    assert again == rows[:10]  # deterministic history
    for _, o, h, low, c, v in rows:
        assert low <= min(o, c) <= max(o, c) <= h and v > 0
    assert all(prev[4] == nxt[1] for prev, nxt in itertools.pairwise(rows))
    assert rows[-1][4] == 65000  # the walk ends at the current price
    assert max(r[2] for r in rows) < 65000 * 1.04 and min(r[3] for r in rows) > 65000 * 0.96


async def test_binance_paginate_option_and_hourly_alignment(emu):
    hour = INTERVAL_MS["1h"]
    since = interval_open(hour, now_ms()) - 1500 * hour
    async with connect(emu, "binance") as exchange:
        rows = await exchange.fetch_ohlcv("SOL/USDT", "1h", since=since, params={"paginate": True})
    stamps = [r[0] for r in rows]
    assert stamps[0] == since and stamps == sorted(set(stamps)) and len(stamps) >= 1500
    assert all(t % hour == 0 for t in stamps)


@both
async def test_set_candles_overrides_the_walk(emu, exchange_id):
    day = INTERVAL_MS["1d"]
    start = interval_open(day, now_ms()) - 3 * day
    rows = [[start + i * day, 100 + i, 110 + i, 90 + i, 105 + i, 1000 + i] for i in range(3)]
    emu.set_candles(exchange_id, "ADA/USDT", "1d", rows)
    async with connect(emu, exchange_id) as exchange:
        got = await exchange.fetch_ohlcv("ADA/USDT", "1d", since=start, limit=5)
    assert got == rows


@both
async def test_set_candles_never_serve_a_candle_that_has_not_opened(emu, exchange_id):
    """The newest kline either exchange returns is the one open now (Binance, Bybit docs)."""
    minute = INTERVAL_MS["1m"]
    if now_ms() % minute > minute - 2_000:  # not across a minute's end
        await asyncio.sleep(2.1)
    current = interval_open(minute, now_ms())
    rows = [[current + i * minute, 100, 101, 99, 100, 1] for i in range(-5, 6)]
    emu.set_candles(exchange_id, "ADA/USDT", "1m", rows)
    async with connect(emu, exchange_id) as exchange:
        latest = await exchange.fetch_ohlcv("ADA/USDT", "1m", limit=3)
        since = await exchange.fetch_ohlcv("ADA/USDT", "1m", since=current - minute, limit=10)
    assert [row[0] for row in latest] == [current - 2 * minute, current - minute, current]
    assert [row[0] for row in since] == [current - minute, current]


# --------------------------------------------------------------------------
# account and orders
# --------------------------------------------------------------------------
@both
async def test_fetch_balance(emu, exchange_id):
    async with trader(emu, exchange_id, balances={"USDT": 1234.5, "BTC": "0.25"}) as exchange:
        balance = await exchange.fetch_balance()
        emu.set_balance(exchange_id, exchange.test_api_key, "ETH", "1.5")  # a deposit
        deposited = await exchange.fetch_balance()
    assert balance["USDT"]["free"] == 1234.5 and balance["USDT"]["used"] == 0
    assert balance["BTC"]["total"] == 0.25
    assert deposited["ETH"]["free"] == 1.5


@both
async def test_market_and_limit_orders_with_client_ids(emu, exchange_id):
    async with trader(emu, exchange_id) as exchange:
        bought = await exchange.create_order(
            "BTC/USDT", "market", "buy", 0.01, params={"clientOrderId": "mkt-buy-1"}
        )
        assert bought["clientOrderId"] == "mkt-buy-1"
        found = await find_by_client_id(exchange, "BTC/USDT", "mkt-buy-1")
        assert found["id"] == bought["id"] and found["status"] == "closed"
        assert found["filled"] == 0.01 and found["average"] == 65000 and found["cost"] == 650

        limit = await exchange.create_order(
            "BTC/USDT", "limit", "buy", 0.01, 60000, params={"clientOrderId": "lmt-buy-1"}
        )
        [open_order] = await exchange.fetch_open_orders("BTC/USDT")
        assert open_order["id"] == limit["id"] and open_order["status"] == "open"
        assert open_order["price"] == 60000 and open_order["clientOrderId"] == "lmt-buy-1"
        balance = await exchange.fetch_balance()
        assert balance["USDT"]["used"] == 600  # locked by the resting order
        assert balance["BTC"]["free"] == pytest.approx(0.00999)  # 0.1 % fee in BTC

        await exchange.cancel_order(limit["id"], "BTC/USDT")
        assert await exchange.fetch_open_orders("BTC/USDT") == []
        assert (await find_by_client_id(exchange, "BTC/USDT", "lmt-buy-1"))["status"] == "canceled"

        sold = await exchange.create_order(
            "BTC/USDT", "market", "sell", 0.005, params={"clientOrderId": "mkt-sell-1"}
        )
        assert sold["id"]
        balance = await exchange.fetch_balance()
        assert balance["USDT"]["free"] == pytest.approx(10_000 - 650 + 325 * 0.999)
        assert balance["USDT"]["used"] == 0

        trades = await exchange.fetch_my_trades("BTC/USDT")
        assert sorted(t["side"] for t in trades) == ["buy", "sell"]
        key = exchange.test_api_key
    accepted = emu.orders(exchange_id, key)
    assert [o.client_order_id for o in accepted] == ["mkt-buy-1", "lmt-buy-1", "mkt-sell-1"]
    assert [o.status for o in accepted] == ["filled", "canceled", "filled"]
    assert accepted[0].fee_asset == "BTC" and accepted[2].fee_asset == "USDT"


@both
async def test_limit_fills_when_price_crosses(emu, exchange_id):
    async with trader(emu, exchange_id, balances={"USDT": 1000, "SOL": 5}) as exchange:
        await exchange.create_order("SOL/USDT", "limit", "buy", 2, 140, {"clientOrderId": "b1"})
        sell = await exchange.create_order("SOL/USDT", "limit", "sell", 1, 160)
        emu.set_price(exchange_id, "SOL/USDT", 139.5)
        orders = {o["id"]: o for o in await exchange.fetch_open_orders("SOL/USDT")}
        assert list(orders) == [sell["id"]]
        filled = await find_by_client_id(exchange, "SOL/USDT", "b1")
        assert filled["status"] == "closed" and filled["average"] == 140  # maker at its price
        emu.set_price(exchange_id, "SOL/USDT", 161)
        assert await exchange.fetch_open_orders("SOL/USDT") == []
        balance = await exchange.fetch_balance()
    assert balance["SOL"]["total"] == pytest.approx(5 + 2 * 0.999 - 1)
    assert balance["USDT"]["total"] == pytest.approx(1000 - 280 + 160 * 0.999)


@both
async def test_marketable_limit_fills_at_the_current_price(emu, exchange_id):
    async with trader(emu, exchange_id) as exchange:
        await exchange.create_order("XRP/USDT", "limit", "buy", 100, 0.6, {"clientOrderId": "x1"})
        order = await find_by_client_id(exchange, "XRP/USDT", "x1")
        assert order["status"] == "closed" and order["average"] == 0.55
        assert (await exchange.fetch_balance())["USDT"]["used"] == 0


# --------------------------------------------------------------------------
# partial fills (set_depth / add_depth)
# --------------------------------------------------------------------------
def by_id(trades: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Executions in the order they happened (two can share a millisecond)."""
    return sorted(trades, key=lambda t: int(t["id"]))


@both
async def test_partial_limit_buy_rests_then_add_depth_completes_it(
    emu: ExchangeEmulator, exchange_id: str
) -> None:
    emu.set_depth(exchange_id, "BTC/USDT", "0.004")
    async with trader(emu, exchange_id) as exchange:
        created = await exchange.create_order(
            "BTC/USDT", "limit", "buy", 0.01, 65000, {"clientOrderId": "part-buy-1"}
        )
        if exchange_id == "binance":  # the FULL new-order answer already shows the fill
            info = created["info"]
            assert created["status"] == "open" and created["filled"] == 0.004
            assert info["status"] == "PARTIALLY_FILLED" and info["executedQty"] == "0.00400000"
            assert info["cummulativeQuoteQty"] == "260.00000000"
            assert [(f["qty"], f["commission"]) for f in info["fills"]] == [
                ("0.00400000", "0.00000400")
            ]
        order = await find_by_client_id(exchange, "BTC/USDT", "part-buy-1")
        assert order["id"] == created["id"] and order["status"] == "open"
        assert (order["amount"], order["filled"], order["remaining"]) == (0.01, 0.004, 0.006)
        assert order["average"] == 65000 and order["cost"] == 260
        if exchange_id == "bybit":
            info = order["info"]
            assert info["orderStatus"] == "PartiallyFilled"
            assert (info["cumExecQty"], info["cumExecValue"], info["cumExecFee"]) == (
                "0.004",
                "260",
                "0.000004",
            )
            assert (info["leavesQty"], info["avgPrice"]) == ("0.006", "65000")
        else:
            assert order["info"]["status"] == "PARTIALLY_FILLED"
        [listed] = await exchange.fetch_open_orders("BTC/USDT")
        assert listed["id"] == created["id"] and listed["remaining"] == 0.006
        assert emu.depth(exchange_id, "BTC/USDT") == 0
        balance = await exchange.fetch_balance()
        assert balance["USDT"]["used"] == 390  # the remainder's lock; the filled part's is spent
        assert balance["BTC"]["free"] == pytest.approx(0.004 * 0.999)

        emu.add_depth(exchange_id, "BTC/USDT", "0.01")
        done = await find_by_client_id(exchange, "BTC/USDT", "part-buy-1")
        assert done["status"] == "closed" and (done["filled"], done["remaining"]) == (0.01, 0)
        assert await exchange.fetch_open_orders("BTC/USDT") == []
        assert emu.depth(exchange_id, "BTC/USDT") == Decimal("0.004")
        trades = by_id(await exchange.fetch_order_trades(created["id"], "BTC/USDT"))
        balance = await exchange.fetch_balance()
        key = exchange.test_api_key
    assert [t["amount"] for t in trades] == [0.004, 0.006]
    assert [t["takerOrMaker"] for t in trades] == ["taker", "maker"]
    assert [t["fee"]["currency"] for t in trades] == ["BTC", "BTC"]
    assert [t["fee"]["cost"] for t in trades] == pytest.approx([0.000004, 0.000006])
    assert balance["USDT"]["used"] == 0 and balance["BTC"]["free"] == pytest.approx(0.00999)
    [record] = emu.orders(exchange_id, key)
    assert record.status == "filled" and record.filled == Decimal("0.01") and record.remaining == 0
    assert record.cost == 650 and record.fee == Decimal("0.00001") and len(record.fills) == 2


@both
async def test_cancelling_a_partially_filled_order_keeps_what_filled(
    emu: ExchangeEmulator, exchange_id: str
) -> None:
    emu.set_depth(exchange_id, "SOL/USDT", "2")
    async with trader(emu, exchange_id, balances={"SOL": 5}) as exchange:
        created = await exchange.create_order(
            "SOL/USDT", "limit", "sell", 5, 150, {"clientOrderId": "part-sell-1"}
        )
        canceled = await exchange.cancel_order(created["id"], "SOL/USDT")
        order = await find_by_client_id(exchange, "SOL/USDT", "part-sell-1")
        balance = await exchange.fetch_balance()
        [trade] = await exchange.fetch_order_trades(created["id"], "SOL/USDT")
        key = exchange.test_api_key
    assert (order["amount"], order["filled"], order["cost"]) == (5, 2, 300)
    if exchange_id == "binance":
        assert canceled["status"] == "canceled" and canceled["filled"] == 2
        assert canceled["info"]["status"] == "CANCELED"
        assert order["info"]["status"] == "CANCELED"
        assert order["info"]["executedQty"] == "2.00000000"
        assert order["status"] == "canceled" and order["remaining"] == 3
    else:
        info = order["info"]
        assert info["orderStatus"] == "PartiallyFilledCanceled"
        assert info["cancelType"] == "CancelByUser"
        assert (info["cumExecQty"], info["leavesQty"]) == ("2", "0")
        # ccxt maps PartiallyFilledCanceled to "closed" (ccxt issue #18685) and reads remaining
        # from leavesQty, which Bybit zeroes once an order is closed: only filled < amount tells.
        assert order["status"] == "closed" and order["remaining"] == 0
    assert balance["SOL"]["free"] == 3 and balance["SOL"]["used"] == 0
    assert balance["USDT"]["total"] == pytest.approx(300 * 0.999)
    assert trade["amount"] == 2 and trade["fee"]["currency"] == "USDT"  # a sell pays in quote
    assert trade["fee"]["cost"] == pytest.approx(0.3)
    [record] = emu.orders(exchange_id, key)
    assert record.status == "canceled" and record.filled == 2 and record.remaining == 3
    assert record.locked == 0 and record.fee == Decimal("0.3") and record.fee_asset == "USDT"


@both
async def test_market_order_meeting_short_depth_fills_what_it_can(
    emu: ExchangeEmulator, exchange_id: str
) -> None:
    emu.set_depth(exchange_id, "ETH/USDT", "0.3")
    async with trader(emu, exchange_id) as exchange:
        created = await exchange.create_order(
            "ETH/USDT", "market", "buy", 1, params={"clientOrderId": "short-mkt-1"}
        )
        order = await find_by_client_id(exchange, "ETH/USDT", "short-mkt-1")
        assert emu.depth(exchange_id, "ETH/USDT") == 0
        await exchange.create_order(
            "ETH/USDT", "market", "buy", 1, params={"clientOrderId": "no-depth-1"}
        )
        empty = await find_by_client_id(exchange, "ETH/USDT", "no-depth-1")
        balance = await exchange.fetch_balance()
    assert (order["amount"], order["filled"], order["cost"]) == (1, 0.3, 960)
    assert empty["filled"] == 0
    if exchange_id == "binance":
        # "EXPIRED: ... LIMIT IOC or MARKET orders that partially fill" (Binance's enums)
        assert created["status"] == "expired" and created["filled"] == 0.3  # FULL answer
        assert order["info"]["status"] == "EXPIRED" and order["info"]["executedQty"] == "0.30000000"
        assert order["status"] == "expired" and order["remaining"] == 0.7
        assert empty["info"]["status"] == "EXPIRED" and empty["status"] == "expired"
    else:
        assert order["info"]["orderStatus"] == "PartiallyFilledCanceled"
        assert order["info"]["rejectReason"] == "EC_CancelForNoFullFill"
        assert order["status"] == "closed"  # ccxt's mapping, see the cancel test
        assert empty["info"]["orderStatus"] == "Cancelled" and empty["status"] == "canceled"
    assert balance["ETH"]["total"] == pytest.approx(0.3 * 0.999)
    assert balance["USDT"]["free"] == 10_000 - 960 and balance["USDT"]["used"] == 0


@both
async def test_ioc_gives_up_the_rest_and_fok_fills_all_or_nothing(
    emu: ExchangeEmulator, exchange_id: str
) -> None:
    emu.set_depth(exchange_id, "BNB/USDT", "1")
    async with trader(emu, exchange_id) as exchange:
        for tif in ("FOK", "IOC"):
            await exchange.create_order(
                "BNB/USDT", "limit", "buy", 3, 600, {"clientOrderId": tif, "timeInForce": tif}
            )
        fok = await find_by_client_id(exchange, "BNB/USDT", "FOK")
        ioc = await find_by_client_id(exchange, "BNB/USDT", "IOC")
        assert (await exchange.fetch_balance())["USDT"]["used"] == 0
    assert (fok["filled"], ioc["filled"]) == (0, 1)
    if exchange_id == "binance":
        assert fok["info"]["status"] == ioc["info"]["status"] == "EXPIRED"
        assert fok["status"] == ioc["status"] == "expired"
    else:
        assert fok["info"]["orderStatus"] == "Cancelled" and fok["status"] == "canceled"
        assert ioc["info"]["orderStatus"] == "PartiallyFilledCanceled"


@both
async def test_each_partial_fill_is_one_execution_with_its_own_fee(
    emu: ExchangeEmulator, exchange_id: str
) -> None:
    emu.set_depth(exchange_id, "BTC/USDT", "0.002")
    async with trader(emu, exchange_id) as exchange:
        created = await exchange.create_order(
            "BTC/USDT", "limit", "buy", 0.005, 65000, {"clientOrderId": "three-fills"}
        )
        emu.add_depth(exchange_id, "BTC/USDT", "0.002")
        emu.add_depth(exchange_id, "BTC/USDT", "0.002")  # 0.001 of it is left over
        await exchange.create_order("BTC/USDT", "market", "buy", 0.001)  # another order
        everything = await exchange.fetch_my_trades("BTC/USDT")
        trades = by_id(await exchange.fetch_order_trades(created["id"], "BTC/USDT"))
        if exchange_id == "bybit":  # execution/list filtered by orderLinkId, as documented
            by_link = await exchange.fetch_order_trades(
                created["id"], "BTC/USDT", params={"clientOrderId": "three-fills"}
            )
            raw = await exchange.privateGetV5ExecutionList(
                {"category": "spot", "orderLinkId": "three-fills"}
            )
            rows = sorted(raw["result"]["list"], key=lambda r: int(r["execId"]))
            assert [r["leavesQty"] for r in rows] == ["0.003", "0.001", "0"]
            assert [r["execFee"] for r in rows] == ["0.000002", "0.000002", "0.000001"]
            assert {r["feeCurrency"] for r in rows} == {"BTC"}
            assert by_id(by_link) == trades
        else:
            raw = await exchange.privateGetMyTrades({"symbol": "BTCUSDT", "orderId": created["id"]})
            assert [r["commission"] for r in raw] == ["0.00000200", "0.00000200", "0.00000100"]
            assert {r["commissionAsset"] for r in raw} == {"BTC"}
    assert len(everything) == 4
    assert [t["order"] for t in trades] == [created["id"]] * 3
    assert [t["amount"] for t in trades] == [0.002, 0.002, 0.001]
    assert [t["fee"]["cost"] for t in trades] == pytest.approx([0.000002, 0.000002, 0.000001])
    assert {t["fee"]["currency"] for t in trades} == {"BTC"}


async def test_binance_query_order_carries_no_fills_or_commission(emu: ExchangeEmulator) -> None:
    """GET /api/v3/order has no ``fills``: executions and fees come from myTrades only."""
    emu.set_depth("binance", "BTC/USDT", "0.004")
    async with trader(emu, "binance") as exchange:
        created = await exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 65000)
        raw = await exchange.privateGetOrder({"symbol": "BTCUSDT", "orderId": created["id"]})
    assert raw["status"] == "PARTIALLY_FILLED" and raw["executedQty"] == "0.00400000"
    assert not {"fills", "commission", "commissionAsset"} & set(raw)


@both
async def test_balances_move_exactly_by_what_filled(
    emu: ExchangeEmulator, exchange_id: str
) -> None:
    """A buy limited above the price: the taker part fills at the price and frees its share of
    the lock; the remainder rests, and fills at its own price as maker when depth arrives."""
    emu.set_depth(exchange_id, "BTC/USDT", "0.004")
    async with trader(emu, exchange_id) as exchange:
        await exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 66000)
        key = exchange.test_api_key
        after_taker = emu.balances(exchange_id, key)
        emu.set_price(exchange_id, "BTC/USDT", 64000)  # crosses the remainder, but no depth
        after_move = emu.balances(exchange_id, key)
        emu.add_depth(exchange_id, "BTC/USDT", "0.01")
        after_maker = emu.balances(exchange_id, key)
        trades = await exchange.fetch_my_trades("BTC/USDT")
    assert after_taker["USDT"].free == 10_000 - Decimal("0.004") * 65000 - Decimal("0.006") * 66000
    assert after_taker["USDT"].locked == Decimal("0.006") * 66000
    assert after_taker["BTC"].free == Decimal("0.004") - Decimal("0.000004")
    assert after_move == after_taker
    assert after_maker["USDT"].free == 10_000 - 260 - 396 and after_maker["USDT"].locked == 0
    assert after_maker["BTC"].total == Decimal("0.01") - Decimal("0.00001")
    # exactly what the executions say: the quantities less their base-asset fees, for the costs
    received = sum(Decimal(str(t["amount"])) - Decimal(str(t["fee"]["cost"])) for t in trades)
    spent = sum(Decimal(str(t["cost"])) for t in trades)
    assert received == after_maker["BTC"].total
    assert spent == 10_000 - after_maker["USDT"].total
    [order] = emu.orders(exchange_id, key)
    assert order.locked == 0 and order.cost == 656 and order.status == "filled"


@both
async def test_price_move_fills_crossed_orders_oldest_first_up_to_depth(
    emu: ExchangeEmulator, exchange_id: str
) -> None:
    async with trader(emu, exchange_id) as exchange:
        await exchange.create_order(
            "BTC/USDT", "limit", "buy", 0.003, 64000, {"clientOrderId": "a"}
        )
        await exchange.create_order(
            "BTC/USDT", "limit", "buy", 0.002, 64500, {"clientOrderId": "b"}
        )
        emu.set_depth(exchange_id, "BTC/USDT", "0.004")  # neither crosses 65000 yet
        emu.set_price(exchange_id, "BTC/USDT", 63000)
        older = await find_by_client_id(exchange, "BTC/USDT", "a")
        newer = await find_by_client_id(exchange, "BTC/USDT", "b")
    assert older["status"] == "closed" and older["average"] == 64000
    assert newer["status"] == "open" and (newer["filled"], newer["remaining"]) == (0.001, 0.001)
    assert newer["average"] == 64500  # a maker fill at its own price
    assert emu.depth(exchange_id, "BTC/USDT") == 0


async def test_depth_control_endpoints(emu: ExchangeEmulator) -> None:
    where = {"exchange": "bybit", "symbol": "DOGE/USDT"}
    async with aiohttp.ClientSession(emu.base_url) as control:
        async with control.post("/_emulator/depth", json={**where, "qty": "100"}) as response:
            assert response.status == 200
        async with control.post("/_emulator/depth/add", json={**where, "qty": 50}) as response:
            assert response.status == 200
        async with control.get("/_emulator/depth", params=where) as response:
            assert await response.json() == {"qty": "150"}
        async with control.post("/_emulator/depth", json={**where, "qty": None}) as response:
            assert response.status == 200
        async with control.post("/_emulator/depth/add", json={**where, "qty": "1"}) as response:
            assert response.status == 400  # unlimited depth cannot grow
            assert "set_depth" in (await response.json())["error"]
    assert emu.depth("bybit", "DOGE/USDT") is None
    with pytest.raises(ValueError):
        emu.set_depth("bybit", "DOGE/USDT", -1)


# --------------------------------------------------------------------------
# refusals, each with the exception the real exchange triggers in ccxt
# --------------------------------------------------------------------------
@both
async def test_wrong_secret_and_unknown_key_are_authentication_errors(emu, exchange_id):
    key, _ = new_account(emu, exchange_id)
    async with connect(emu, exchange_id, key, "not-the-secret") as exchange:
        with pytest.raises(ccxt.AuthenticationError):
            await exchange.fetch_balance()
    async with connect(emu, exchange_id, "no-such-key", "whatever") as exchange:
        with pytest.raises(ccxt.AuthenticationError):
            await exchange.fetch_balance()


@both
async def test_stale_timestamp_is_invalid_nonce(emu, exchange_id):
    async with trader(emu, exchange_id) as exchange:
        exchange.options["timeDifference"] = 70_000  # the client's clock is 70 s behind
        with pytest.raises(ccxt.InvalidNonce):
            await exchange.fetch_balance()


async def test_binance_below_min_notional_is_bad_request(emu):
    async with trader(emu, "binance") as exchange:
        with pytest.raises(ccxt.BadRequest, match="-1013") as caught:
            await exchange.create_order("BTC/USDT", "market", "buy", 0.00005)
    assert not isinstance(caught.value, ccxt.InvalidOrder)
    assert "Filter failure: NOTIONAL" in str(caught.value)


async def test_bybit_below_min_order_amount_is_invalid_order(emu):
    async with trader(emu, "bybit") as exchange:
        with pytest.raises(ccxt.InvalidOrder, match="170140"):
            await exchange.create_order("BTC/USDT", "market", "buy", 0.00001)


async def test_binance_price_off_the_tick_is_invalid_order(emu):
    async with trader(emu, "binance") as exchange:
        await exchange.load_markets()
        with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
            await exchange.create_order(
                "BTC/USDT", "limit", "buy", 0.001, 60000, params={"price": "60000.005"}
            )


@both
async def test_insufficient_balance(emu, exchange_id):
    async with trader(emu, exchange_id, balances={"USDT": 100}) as exchange:
        with pytest.raises(ccxt.InsufficientFunds):
            await exchange.create_order("ETH/USDT", "market", "buy", 1)
        with pytest.raises(ccxt.InsufficientFunds):
            await exchange.create_order("ETH/USDT", "limit", "sell", 1, 4000)
        key = exchange.test_api_key
    assert emu.orders(exchange_id, key) == []


@both
async def test_duplicate_client_id_refused_while_open(emu, exchange_id):
    async with trader(emu, exchange_id) as exchange:
        resting = await exchange.create_order(
            "BNB/USDT", "limit", "buy", 0.1, 500, params={"clientOrderId": "dup-1"}
        )
        with pytest.raises(ccxt.InvalidOrder):
            await exchange.create_order(
                "BNB/USDT", "limit", "buy", 0.1, 501, params={"clientOrderId": "dup-1"}
            )
        await exchange.cancel_order(resting["id"], "BNB/USDT")
        again = await exchange.create_order(
            "BNB/USDT", "limit", "buy", 0.1, 502, params={"clientOrderId": "dup-1"}
        )
        assert again["id"] != resting["id"]
        # an id whose earlier order is FILLED is accepted again
        for _ in range(2):
            await exchange.create_order(
                "BNB/USDT", "market", "buy", 0.1, params={"clientOrderId": "dup-filled"}
            )
        key = exchange.test_api_key
    ids = [o.client_order_id for o in emu.orders(exchange_id, key)]
    assert ids == ["dup-1", "dup-1", "dup-filled", "dup-filled"]


async def test_binance_read_only_key_cannot_trade(emu):
    async with trader(emu, "binance", read_only=True) as exchange:
        with pytest.raises(ccxt.AuthenticationError, match="-2015"):
            await exchange.create_order("BTC/USDT", "market", "buy", 0.001)


async def test_bybit_read_only_key_cannot_trade(emu):
    async with trader(emu, "bybit", read_only=True) as exchange:
        with pytest.raises(ccxt.PermissionDenied, match="10005"):
            await exchange.create_order("BTC/USDT", "market", "buy", 0.001)


# --------------------------------------------------------------------------
# permissions
# --------------------------------------------------------------------------
async def test_binance_api_restrictions_report_withdrawals(emu):
    async with trader(emu, "binance", can_withdraw=True) as exchange:
        withdrawing = await exchange.sapiGetAccountApiRestrictions()
    async with trader(emu, "binance") as exchange:
        trading_only = await exchange.sapiGetAccountApiRestrictions()
    async with trader(emu, "binance", read_only=True) as exchange:
        read_only = await exchange.sapiGetAccountApiRestrictions()
    assert withdrawing["enableWithdrawals"] is True
    assert trading_only["enableWithdrawals"] is False
    assert trading_only["enableSpotAndMarginTrading"] is True and trading_only["enableReading"]
    assert read_only["enableSpotAndMarginTrading"] is False


async def test_bybit_query_api_reports_withdrawals(emu):
    async with trader(emu, "bybit", can_withdraw=True) as exchange:
        withdrawing = (await exchange.privateGetV5UserQueryApi())["result"]
    async with trader(emu, "bybit", read_only=True) as exchange:
        read_only = (await exchange.privateGetV5UserQueryApi())["result"]
    assert "Withdraw" in withdrawing["permissions"]["Wallet"] and withdrawing["readOnly"] == 0
    assert withdrawing["permissions"]["Spot"] == ["SpotTrade"] and withdrawing["uta"] == 1
    assert "Withdraw" not in read_only["permissions"]["Wallet"] and read_only["readOnly"] == 1


# --------------------------------------------------------------------------
# rate limits
# --------------------------------------------------------------------------
async def test_binance_request_weight_429_then_418_ban(emu):
    emu.set_rate_limit("binance", request_weight_per_minute=5, ban_seconds=60)
    async with connect(emu, "binance") as exchange:
        with pytest.raises(ccxt.DDoSProtection, match="429"):
            for _ in range(16):  # weight 1 each; a new minute may begin once
                await exchange.fetch_time()
        with pytest.raises(ccxt.DDoSProtection, match="418"):
            await exchange.fetch_time()  # did not back off: IP ban
        with pytest.raises(ccxt.DDoSProtection, match="418"):
            await exchange.fetch_time()
        statuses = [c.status for c in emu.calls[-3:]]
        emu.reset_rate_limits("binance")
        assert await exchange.fetch_time() > 0
    assert statuses == [429, 418, 418]


@both
async def test_product_pacing_stays_under_the_real_limits(emu, exchange_id):
    """ccxt with its default pacing against the real default limits: no refusal."""
    emu.reset_rate_limits(exchange_id)
    key, secret = new_account(emu, exchange_id)
    async with connect(emu, exchange_id, key, secret, rate_limit_ms=None) as exchange:
        await exchange.load_markets()
        emu.reset_calls()
        for _ in range(3):
            await asyncio.gather(
                exchange.fetch_ticker("BTC/USDT"),
                exchange.fetch_ohlcv("BTC/USDT", "1m", limit=5),
                exchange.fetch_open_orders("BTC/USDT"),
            )
    assert len(emu.calls) >= 9 and {c.status for c in emu.calls} == {200}


async def test_binance_weight_header(emu):
    emu.reset_rate_limits("binance")
    async with connect(emu, "binance") as exchange:
        exchange.enableLastResponseHeaders = True
        await exchange.load_markets()
        first = int(exchange.last_response_headers["X-MBX-USED-WEIGHT-1M"])
        await exchange.fetch_ticker("BTC/USDT")
        second = int(exchange.last_response_headers["X-MBX-USED-WEIGHT-1M"])
    assert first >= 20 and second - first in (2, 2 - first)  # ticker/24hr weighs 2


async def test_binance_order_count_limit(emu):
    emu.set_rate_limit("binance", orders_per_10s=2)
    async with trader(emu, "binance") as exchange:
        exchange.enableLastResponseHeaders = True
        with pytest.raises(ccxt.DDoSProtection, match="-1015"):
            for _ in range(7):  # a new 10 s window may begin once
                await exchange.create_order("DOGE/USDT", "market", "buy", 50)
                assert int(exchange.last_response_headers["X-MBX-ORDER-COUNT-10S"]) <= 2


async def test_bybit_ip_limit_is_403_and_a_ban(emu):
    emu.set_rate_limit("bybit", ip_requests_per_5s=3)
    async with connect(emu, "bybit") as exchange:
        with pytest.raises(ccxt.RateLimitExceeded, match="403"):
            for _ in range(4):
                await exchange.fetch_time()
        with pytest.raises(ccxt.RateLimitExceeded, match="access too frequent"):
            await exchange.fetch_time()


async def test_bybit_uid_limit_is_retcode_10006(emu):
    emu.set_rate_limit("bybit", uid_requests_per_second={"/v5/order/realtime": 1})
    async with trader(emu, "bybit") as exchange:
        exchange.enableLastResponseHeaders = True
        await exchange.fetch_open_orders("BTC/USDT")
        assert exchange.last_response_headers["X-Bapi-Limit"] == "1"
        with pytest.raises(ccxt.RateLimitExceeded, match="10006"):
            await exchange.fetch_open_orders("BTC/USDT")


# --------------------------------------------------------------------------
# faults
# --------------------------------------------------------------------------
@both
async def test_rate_limit_fault(emu, exchange_id):
    error = ccxt.DDoSProtection if exchange_id == "binance" else ccxt.RateLimitExceeded
    async with connect(emu, exchange_id) as exchange:
        await exchange.load_markets()
        emu.inject(exchange_id, "rate_limit", path_contains="ticker")
        with pytest.raises(error):
            await exchange.fetch_ticker("BTC/USDT")
        if exchange_id == "binance":
            with pytest.raises(ccxt.DDoSProtection, match="418"):  # ignored Retry-After
                await exchange.fetch_ticker("BTC/USDT")
            emu.reset_rate_limits("binance")
        assert (await exchange.fetch_ticker("BTC/USDT"))["last"] == 65000


@both
async def test_malformed_json_gives_empty_values(emu, exchange_id):
    async with connect(emu, exchange_id) as exchange:
        await exchange.load_markets()
        emu.inject(exchange_id, "malformed_json", path_contains="ticker")
        ticker = await exchange.fetch_ticker("BTC/USDT")
        assert ticker["last"] is None and ticker["bid"] is None
        assert (await exchange.fetch_ticker("BTC/USDT"))["last"] == 65000


@both
async def test_timeout_leaves_an_accepted_order(emu, exchange_id):
    create_path = "/api/v3/order" if exchange_id == "binance" else "/v5/order/create"
    async with trader(emu, exchange_id) as exchange:
        await exchange.fetch_balance()  # Bybit's account-type calls happen first
        exchange.timeout = 500
        emu.inject(exchange_id, "timeout", path_contains=create_path, delay=5)
        with pytest.raises(ccxt.RequestTimeout):
            await exchange.create_order(
                "ETH/USDT", "market", "buy", 0.1, params={"clientOrderId": "lost-answer-1"}
            )
        exchange.timeout = 10_000
        order = await find_by_client_id(exchange, "ETH/USDT", "lost-answer-1")
        assert order["status"] == "closed" and order["filled"] == 0.1
        assert (await exchange.fetch_balance())["ETH"]["total"] == pytest.approx(0.0999)


@both
async def test_server_errors_and_disconnects_are_network_errors(emu, exchange_id):
    async with trader(emu, exchange_id) as exchange:
        await exchange.fetch_balance()
        for fault in ("http_500", "http_503"):
            emu.inject(exchange_id, fault, path_contains="ticker")
            with pytest.raises(ccxt.ExchangeNotAvailable):
                await exchange.fetch_ticker("BTC/USDT")
        # aiohttp resends an idempotent request once when the connection drops
        emu.inject(exchange_id, "disconnect", path_contains="ticker", times=2)
        with pytest.raises(ccxt.NetworkError):
            await exchange.fetch_ticker("BTC/USDT")
        emu.inject(exchange_id, "http_500", path_contains="order")
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await exchange.create_order("BTC/USDT", "market", "buy", 0.001)
        emu.inject(exchange_id, "disconnect", path_contains="order")
        with pytest.raises(ccxt.NetworkError):
            await exchange.create_order("BTC/USDT", "market", "buy", 0.001)
        key = exchange.test_api_key
    assert emu.orders(exchange_id, key) == []  # neither fault processed the order


# --------------------------------------------------------------------------
# call log, reachability, scale, standalone
# --------------------------------------------------------------------------
@both
async def test_call_log_counts_public_and_private_calls(emu, exchange_id):
    async with trader(emu, exchange_id) as exchange:
        await exchange.load_markets()
        await exchange.fetch_balance()
        emu.reset_calls()
        await exchange.fetch_ticker("BTC/USDT")
        await exchange.fetch_open_orders("BTC/USDT")
        key = exchange.test_api_key
    calls = emu.calls
    assert [c.private for c in calls] == [False, True]
    assert calls[0].api_key is None and calls[1].api_key == key
    assert {c.exchange for c in calls} == {exchange_id} and {c.status for c in calls} == {200}


async def test_stop_and_resume_serving():
    with ExchangeEmulator() as emulator:
        async with connect(emulator, "binance") as exchange:
            assert await exchange.fetch_time() > 0
            emulator.stop_serving()
            with pytest.raises(ccxt.ExchangeNotAvailable):
                await exchange.fetch_time()
            emulator.resume_serving()
            assert await exchange.fetch_time() > 0


@both
async def test_synthetic_markets(exchange_id):
    with ExchangeEmulator() as emulator:
        symbols = emulator.add_synthetic_markets(exchange_id, 150)
        async with trader(emulator, exchange_id) as exchange:
            markets = await exchange.load_markets()
            assert symbols[0] == "C001/USDT" and symbols[-1] == "C150/USDT"
            assert set(symbols) <= set(markets)
            for symbol in symbols[:20]:
                market = markets[symbol]
                assert market["precision"]["price"] and market["precision"]["amount"]
                price = float(emulator.price(exchange_id, symbol))
                amount = max(market["limits"]["amount"]["min"], 6 / price)
                amount = float(exchange.amount_to_precision(symbol, amount * 1.2))
                order = await exchange.create_order(symbol, "market", "buy", amount)
                assert order["id"]


async def test_standalone_process_serves_until_sigterm():
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tests.emulators.exchange", "--port", "0"),
        *("--account", "binance:k:s"),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        base_url = line.decode().rsplit(" ", 1)[-1].strip()
        assert base_url.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession(base_url) as control:  # the /_emulator API
            price = {"exchange": "binance", "symbol": "BTC/USDT", "price": "70000"}
            async with control.post("/_emulator/prices", json=price) as response:
                assert response.status == 200
            exchange = ccxt.binance({"apiKey": "k", "secret": "s", "options": OPTIONS["binance"]})
            point_exchange_at(exchange, base_url)
            try:
                assert (await exchange.fetch_balance())["USDT"]["free"] == 10_000
                await exchange.create_order("BTC/USDT", "market", "buy", 0.001)
                depth = {"exchange": "binance", "symbol": "BTC/USDT", "qty": "0.0004"}
                async with control.post("/_emulator/depth", json=depth) as response:
                    assert response.status == 200
                await exchange.create_order("BTC/USDT", "market", "buy", 0.001)
            finally:
                await exchange.close()
            async with control.get("/_emulator/orders", params={"exchange": "binance"}) as response:
                [order, short] = await response.json()
        assert order["status"] == "filled" and order["cost"] == "70"
        assert short["status"] == "expired" and short["filled"] == "0.0004"
        assert short["remaining"] == "0.0006" and short["cost"] == "28"
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
