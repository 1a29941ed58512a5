"""A local exchange speaking the Binance spot and Bybit v5 (spot) REST dialects.

The real ``ccxt.async_support.binance`` / ``bybit`` classes work against it
unchanged once their URLs are rebased with
``engine.exchanges.api_urls.point_exchange_at(exchange, emulator.base_url)``::

    with ExchangeEmulator() as emu:
        emu.add_account("binance", "key", "secret", balances={"USDT": 10_000})
        ex = ccxt.async_support.binance({"apiKey": "key", "secret": "secret", "options": {
            "fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False}})
        point_exchange_at(ex, emu.base_url)

Binance paths live under ``/api/v3`` and ``/sapi/v1``, Bybit paths under
``/v5``, so one server on one port serves both dialects; each dialect has its
own state (markets, prices, candles, accounts, orders, rate-limit counters).

What is emulated, with the shapes of the exchanges' own documentation:

* Binance: ``ping``, ``time``, ``exchangeInfo`` (PRICE_FILTER, LOT_SIZE,
  MARKET_LOT_SIZE, NOTIONAL, MAX_NUM_ORDERS), ``klines``/``uiKlines``,
  ``ticker/24hr``, ``ticker/price``, ``ticker/bookTicker``, signed
  ``account``, ``order`` (POST/GET/DELETE with ``newClientOrderId`` /
  ``origClientOrderId``), ``openOrders`` (GET/DELETE), ``allOrders``,
  ``myTrades`` and ``/sapi/v1/account/apiRestrictions``.  HMAC-SHA256 over the
  query string concatenated with the body, ``X-MBX-APIKEY``, ``timestamp``
  within ``recvWindow``; errors as ``{"code": -NNNN, "msg": ...}`` with the
  documented HTTP status.  Request weights per endpoint
  (``X-MBX-USED-WEIGHT-1M``), 429 with ``-1003`` and ``Retry-After``, a 418 IP
  ban when a client ignores it, and the per-account order count
  (``X-MBX-ORDER-COUNT-10S`` / ``-1D``, ``-1015``).
* Bybit v5: ``market/time``, ``market/instruments-info``, ``market/tickers``,
  ``market/kline``, ``account/wallet-balance`` (UNIFIED), ``account/info``,
  ``user/query-api``, ``asset/coin/query-info``, ``order/create``,
  ``order/realtime``, ``order/history``, ``order/cancel``,
  ``execution/list``.  HMAC-SHA256 of ``timestamp + api_key + recv_window +
  (query string | body)`` with the ``X-BAPI-*`` headers; the
  ``retCode/retMsg/result/retExtInfo/time`` envelope; the 600 requests / 5 s
  per-IP limit (HTTP 403 "access too frequent" and a ban) and the per-UID,
  per-endpoint limits (``retCode`` 10006 with ``X-Bapi-Limit*`` headers).

Orders fill against a single price per market (`set_price`): market orders
at once, limit orders when marketable (as taker, at the current price) or
later when the price crosses them (as maker, at their own price); the fee
(0.1 %) is taken from the asset received, as both exchanges do, execution by
execution.

Partial fills: `set_depth` limits the base quantity available at the current
price (default None: unlimited, everything fills at once) and every execution
consumes it.  An order meeting less depth than its amount fills partly, one
execution per match, each with its own fee, listed by ``myTrades`` /
``execution/list``:

* a GTC limit order rests with the remainder, its lock released pro rata as
  it fills: Binance ``PARTIALLY_FILLED`` (``executedQty``,
  ``cummulativeQuoteQty``, ``fills`` in the FULL answer), Bybit
  ``PartiallyFilled`` (``cumExecQty``, ``cumExecValue``, ``cumExecFee``,
  ``cumFeeDetail``, ``leavesQty``, ``avgPrice``);
* a market or IOC order gives up the remainder: Binance ``EXPIRED`` keeping
  ``executedQty`` (the documented "MARKET orders that partially fill"), Bybit
  ``PartiallyFilledCanceled`` with ``rejectReason`` ``EC_CancelForNoFullFill``
  (``Cancelled`` when nothing filled); a FOK order fills all or nothing;
* cancelling a partly filled order: Binance ``CANCELED`` keeping
  ``executedQty``, Bybit ``PartiallyFilledCanceled`` (``leavesQty`` 0, as for
  any closed order).

`add_depth` (and `set_depth`, and a `set_price` move) match the open orders
that cross the price, oldest first, at their own price as maker, as far as the
depth goes; the book tickers quote the depth as the best bid/ask size.

Fault injection (`inject`), a call log (`calls`), `stop_serving` /
`resume_serving`, and ``/_emulator/...`` control endpoints (``accounts``,
``prices``, ``depth``, ``depth/add``, ``markets/synthetic``, ``faults``,
``calls``, ``orders``) for a process started with
``python -m tests.emulators.exchange --port 9001``.

Only 127.0.0.1 is ever bound; nothing outside the machine is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import parse_qsl

from aiohttp import web

from tests.emulators.server import ThreadedServer

ExchangeId = Literal["binance", "bybit"]
Side = Literal["buy", "sell"]
OrderType = Literal["market", "limit"]
OrderStatus = Literal["open", "filled", "canceled", "expired"]
FaultKind = Literal["timeout", "http_500", "http_503", "rate_limit", "malformed_json", "disconnect"]

EXCHANGES: tuple[ExchangeId, ...] = ("binance", "bybit")
FAULT_KINDS: tuple[str, ...] = (
    "timeout",
    "http_500",
    "http_503",
    "rate_limit",
    "malformed_json",
    "disconnect",
)
FEE_RATE = Decimal("0.001")
#: The first candle either exchange serves (2020-01-01T00:00:00Z).
LISTING_MS = 1_577_836_800_000
EIGHT_DP = Decimal("0.00000001")

#: symbol: (default price, tick size, step size, min quantity), like the real pairs.
DEFAULT_MARKETS: dict[str, tuple[str, str, str, str]] = {
    "BTC/USDT": ("65000", "0.01", "0.00001", "0.00001"),
    "ETH/USDT": ("3200", "0.01", "0.0001", "0.0001"),
    "SOL/USDT": ("150", "0.01", "0.001", "0.001"),
    "BNB/USDT": ("600", "0.01", "0.001", "0.001"),
    "XRP/USDT": ("0.55", "0.0001", "0.1", "0.1"),
    "DOGE/USDT": ("0.15", "0.00001", "1", "1"),
    "ADA/USDT": ("0.45", "0.0001", "0.1", "0.1"),
}
#: Binance's NOTIONAL filter is 5 USDT on the majors; Bybit's minOrderAmt is 1 USDT.
MIN_NOTIONAL: dict[str, Decimal] = {"binance": Decimal("5"), "bybit": Decimal("1")}
MAX_NOTIONAL: dict[str, Decimal] = {"binance": Decimal("9000000"), "bybit": Decimal("2000000")}

#: Binance kline intervals (also the names `set_candles` takes) in milliseconds.
INTERVAL_MS: dict[str, int] = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}
#: Bybit interval names -> Binance names.
BYBIT_INTERVALS: dict[str, str] = {
    "1": "1m",
    "3": "3m",
    "5": "5m",
    "15": "15m",
    "30": "30m",
    "60": "1h",
    "120": "2h",
    "240": "4h",
    "360": "6h",
    "720": "12h",
    "D": "1d",
    "W": "1w",
}
#: Weekly candles open on Monday 00:00 UTC; the epoch was a Thursday.
WEEK_OFFSET_MS = 4 * 86_400_000

#: Bybit's per-UID limits (requests per second) for the endpoints served.
BYBIT_UID_LIMITS: dict[str, int] = {
    "/v5/order/create": 20,
    "/v5/order/cancel": 20,
    "/v5/order/realtime": 50,
    "/v5/order/history": 50,
    "/v5/execution/list": 50,
    "/v5/account/wallet-balance": 50,
    "/v5/account/info": 50,
    "/v5/user/query-api": 10,
    "/v5/asset/coin/query-info": 5,
}


# --------------------------------------------------------------------------
# public records
# --------------------------------------------------------------------------
@dataclass
class Market:
    """One spot market and its trading rules."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    max_notional: Decimal
    min_price: Decimal
    max_price: Decimal

    @property
    def id(self) -> str:
        """The exchange's id, e.g. ``BTCUSDT``."""
        return self.base + self.quote


@dataclass
class Balance:
    """One asset of an account."""

    free: Decimal = Decimal(0)
    locked: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass
class Account:
    """An API key, its secret, its permissions and the balances behind it."""

    api_key: str
    secret: str
    uid: int
    balances: dict[str, Balance]
    can_withdraw: bool
    can_trade: bool
    read_only: bool
    created_ms: int
    # Binance internal/universal transfers, Bybit wallet transfers: funds can leave.
    can_transfer: bool = False
    # The permissions answer leaves out the withdrawal flag (an exchange changing its API).
    withdraw_flag_missing: bool = False

    def balance(self, asset: str) -> Balance:
        return self.balances.setdefault(asset, Balance())

    @property
    def may_trade(self) -> bool:
        return self.can_trade and not self.read_only


@dataclass
class Fill:
    """One execution of an order."""

    trade_id: int
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_asset: str
    maker: bool
    time_ms: int
    #: What was left of the order right after this execution (Bybit's execution ``leavesQty``).
    leaves_qty: Decimal = Decimal(0)


@dataclass
class Order:
    """An order the emulated exchange accepted."""

    exchange: str
    id: str
    client_order_id: str
    api_key: str
    symbol: str
    side: Side
    type: OrderType
    time_in_force: str
    price: Decimal | None
    amount: Decimal
    quote_amount: Decimal | None
    created_ms: int
    updated_ms: int
    status: OrderStatus = "open"
    filled: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    fee_asset: str = ""
    locked: Decimal = Decimal(0)
    post_only: bool = False
    reject_reason: str = ""
    fills: list[Fill] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        """Working on the book: new or partially filled (``filled > 0``)."""
        return self.status == "open"

    @property
    def remaining(self) -> Decimal:
        """Base quantity not executed (still working while open, given up once closed)."""
        return self.amount - self.filled

    @property
    def is_partially_filled(self) -> bool:
        """Some but not all of it executed, whatever the status (open, canceled, expired)."""
        return Decimal(0) < self.filled < self.amount

    @property
    def average(self) -> Decimal | None:
        return self.cost / self.filled if self.filled else None


@dataclass
class CallRecord:
    """One HTTP request the emulator received."""

    exchange: str
    method: str
    path: str
    api_key: str | None
    time: float
    private: bool
    status: int = 0


@dataclass
class Fault:
    """A fault waiting for matching requests (see `ExchangeEmulator.inject`)."""

    exchange: str
    kind: str
    path_contains: str
    remaining: int | None
    delay: float


@dataclass
class BinanceLimits:
    """Binance spot limits: IP request weight, SAPI IP weight, per-account order counts."""

    request_weight_per_minute: int = 6_000
    sapi_weight_per_minute: int = 12_000
    orders_per_10s: int = 100
    orders_per_day: int = 200_000
    ban_seconds: float = 120.0


@dataclass
class BybitLimits:
    """Bybit v5 limits: requests per IP per 5 s (then a ban), per-UID per-endpoint per second."""

    ip_requests_per_5s: int = 600
    ip_ban_seconds: float = 600.0
    uid_requests_per_second: dict[str, int] = field(default_factory=lambda: dict(BYBIT_UID_LIMITS))


Candle = tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal]


class OrderRejected(Exception):
    """The matching engine refused an order; `reason` is dialect-neutral."""

    def __init__(self, reason: Literal["insufficient_balance", "would_take"]) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def now_ms() -> int:
    return int(time.time() * 1000)


def to_decimal(value: Decimal | float | int | str) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def quantize(value: Decimal, step: Decimal, rounding: str = ROUND_DOWN) -> Decimal:
    """Round `value` to a multiple of `step`."""
    return (value / step).to_integral_value(rounding) * step


def is_multiple(value: Decimal, step: Decimal) -> bool:
    return step == 0 or value % step == 0


def fmt8(value: Decimal | None) -> str:
    """Binance's number format: a string with eight decimals."""
    return f"{(value or Decimal(0)).quantize(EIGHT_DP, ROUND_HALF_EVEN):f}"


def plain(value: Decimal | None) -> str:
    """Bybit's number format: the shortest plain decimal string."""
    if value is None:
        return ""
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "") else text


def unit_hash(*parts: object) -> float:
    """A deterministic number in [-1, 1) from `parts`."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**63 - 1


def default_price(symbol: str) -> Decimal:
    """The price a market starts at: the table's, else one derived from the symbol."""
    if symbol in DEFAULT_MARKETS:
        return Decimal(DEFAULT_MARKETS[symbol][0])
    exponent = 2 + 3 * unit_hash("price", symbol)  # 10**-1 .. 10**5
    raw = Decimal(repr(10**exponent))
    return raw.quantize(Decimal(1).scaleb(raw.adjusted() - 3))


def rules_for_price(price: Decimal) -> tuple[Decimal, Decimal]:
    """(tick size, step size) for a synthetic market: ~5 significant digits of price, lots
    worth at most ~0.1 of the quote asset (whole units below that price)."""
    tick = Decimal(1).scaleb(price.adjusted() - 4)
    step = Decimal(1).scaleb(min(0, (Decimal("0.1") / price).adjusted()))
    return tick, step


def interval_open(interval_ms: int, t_ms: int) -> int:
    """The open time of the candle containing `t_ms` (weeks start on Monday)."""
    if interval_ms == INTERVAL_MS["1w"]:
        return (t_ms - WEEK_OFFSET_MS) // interval_ms * interval_ms + WEEK_OFFSET_MS
    return t_ms // interval_ms * interval_ms


def parse_decimal(text: str | None) -> Decimal | None:
    if text is None or text == "":
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def split_symbol(symbol: str) -> tuple[str, str]:
    base, _, quote = symbol.partition("/")
    if not base or not quote:
        raise ValueError(f"symbol must look like BASE/QUOTE, got {symbol!r}")
    return base, quote


# --------------------------------------------------------------------------
# rate-limit counters
# --------------------------------------------------------------------------
class FixedWindow:
    """Counts per key in windows aligned on the clock (Binance's minute, 10 s, day)."""

    def __init__(self, length_ms: int) -> None:
        self.length_ms = length_ms
        self._counts: dict[str, tuple[int, int]] = {}

    def add(self, key: str, amount: int, at_ms: int) -> int:
        start = at_ms - at_ms % self.length_ms
        window, count = self._counts.get(key, (start, 0))
        count = (count if window == start else 0) + amount
        self._counts[key] = (start, count)
        return count

    def ends_at(self, at_ms: int) -> int:
        return at_ms - at_ms % self.length_ms + self.length_ms

    def clear(self) -> None:
        self._counts.clear()


class RollingWindow:
    """Hit times per key over the last `length_ms` (Bybit's 5 s IP and 1 s UID windows)."""

    def __init__(self, length_ms: int) -> None:
        self.length_ms = length_ms
        self._hits: dict[str, deque[int]] = {}

    def count(self, key: str, at_ms: int) -> int:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= at_ms - self.length_ms:
            hits.popleft()
        return len(hits)

    def add(self, key: str, at_ms: int) -> None:
        self._hits.setdefault(key, deque()).append(at_ms)

    def resets_at(self, key: str, at_ms: int) -> int:
        hits = self._hits.get(key)
        return hits[0] + self.length_ms if hits else at_ms

    def clear(self) -> None:
        self._hits.clear()


# --------------------------------------------------------------------------
# one exchange's state and matching engine
# --------------------------------------------------------------------------
class Venue:
    """Markets, prices, candles, accounts and orders of one emulated exchange."""

    def __init__(self, name: ExchangeId) -> None:
        self.name = name
        self.markets: dict[str, Market] = {}
        self.by_id: dict[str, Market] = {}
        self.prices: dict[str, Decimal] = {}
        #: Base quantity takers can still trade at the current price; absent or None: unlimited.
        self.depth: dict[str, Decimal | None] = {}
        self.candle_overrides: dict[tuple[str, str], list[Candle]] = {}
        #: symbol -> open time of its first candle (a later listing than LISTING_MS).
        self.listed: dict[str, int] = {}
        #: symbol -> [start, end) periods of open times with no candle (an outage, a halt).
        self.holes: dict[str, list[tuple[int, int]]] = {}
        self.accounts: dict[str, Account] = {}
        self.orders: list[Order] = []
        self.orders_by_id: dict[str, Order] = {}
        self._next_order = 1
        self._next_trade = 1
        self._next_uid = 1
        for symbol, (_, tick, step, min_qty) in DEFAULT_MARKETS.items():
            self.add_market(symbol, Decimal(tick), Decimal(step), Decimal(min_qty))

    # -- markets & prices ----------------------------------------------------
    def add_market(
        self,
        symbol: str,
        tick_size: Decimal,
        step_size: Decimal,
        min_qty: Decimal | None = None,
        *,
        max_qty: Decimal = Decimal("9000000"),
        min_notional: Decimal | None = None,
        price: Decimal | None = None,
    ) -> Market:
        base, quote = split_symbol(symbol)
        market = Market(
            symbol=symbol,
            base=base,
            quote=quote,
            tick_size=tick_size,
            step_size=step_size,
            min_qty=step_size if min_qty is None else min_qty,
            max_qty=max_qty,
            min_notional=MIN_NOTIONAL[self.name] if min_notional is None else min_notional,
            max_notional=MAX_NOTIONAL[self.name],
            min_price=tick_size,
            max_price=Decimal("1000000"),
        )
        self.markets[symbol] = market
        self.by_id[market.id] = market
        self.depth.pop(symbol, None)  # a replaced market starts with an unlimited book again
        self.prices[symbol] = quantize(price or default_price(symbol), tick_size, ROUND_HALF_EVEN)
        return market

    def price(self, symbol: str) -> Decimal:
        return self.prices[symbol]

    def set_price(self, symbol: str, price: Decimal) -> None:
        market = self.markets[symbol]
        self.prices[symbol] = quantize(price, market.tick_size, ROUND_HALF_EVEN)
        self._match_resting(symbol)

    # -- depth -----------------------------------------------------------------
    def depth_of(self, symbol: str) -> Decimal | None:
        self.markets[symbol]  # KeyError for an unknown market rather than a silent None
        return self.depth.get(symbol)

    def set_depth(self, symbol: str, qty: Decimal | None) -> None:
        if qty is not None and qty < 0:
            raise ValueError(f"depth must be >= 0 or None (unlimited), got {qty}")
        self.depth_of(symbol)
        self.depth[symbol] = qty
        # New liquidity meets the open orders that cross the price before any new taker does.
        self._match_resting(symbol)

    def add_depth(self, symbol: str, qty: Decimal) -> None:
        current = self.depth_of(symbol)
        if current is None:
            # Adding to an unlimited book would silently do nothing; say so instead.
            raise ValueError(f"{self.name} {symbol} has unlimited depth; call set_depth first")
        if qty < 0:
            raise ValueError(f"added depth must be >= 0, got {qty}")
        self.depth[symbol] = current + qty
        self._match_resting(symbol)

    def _available(self, symbol: str, wanted: Decimal) -> Decimal:
        """How much of `wanted` the book gives now: all of it when depth is unlimited, else at
        most the depth rounded down to the lot step (executions are whole lots)."""
        depth = self.depth.get(symbol)
        if depth is None:
            return wanted
        return min(wanted, quantize(depth, self.markets[symbol].step_size))

    # -- candles ---------------------------------------------------------------
    def candles(
        self,
        symbol: str,
        interval: str,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
    ) -> list[Candle]:
        """Up to `limit` candles, ascending: the first ones from `start_ms` if given, else the
        last ones up to `end_ms` (or now)."""
        now = now_ms()
        step = INTERVAL_MS[interval]
        last = interval_open(step, min(now, end_ms) if end_ms is not None else now)
        override = self.candle_overrides.get((symbol, interval))
        if override is not None:
            # As the exchanges do: the candle open now is the newest, never one to come.
            rows = [r for r in override if (start_ms is None or r[0] >= start_ms) and r[0] <= last]
            return rows[:limit] if start_ms is not None else rows[-limit:]
        listed = max(LISTING_MS, self.listed.get(symbol, LISTING_MS))
        first = max(listed, start_ms or listed)
        if interval_open(step, first) < first:  # the first candle opening at or after it
            first = interval_open(step, first) + step
        holes = self.holes.get(symbol, [])
        # As Binance does: `limit` candles that exist, missing ones simply absent (never
        # placeholders), so a page after a hole reaches further in time.
        times: list[int] = []
        if start_ms is not None:
            t = first
            while t <= last and len(times) < limit:
                hole = next((h for h in holes if h[0] <= t < h[1]), None)
                if hole is None:
                    times.append(t)
                    t += step
                else:
                    t = interval_open(step, hole[1] - 1) + step
        else:
            t = last
            while t >= first and len(times) < limit:
                hole = next((h for h in holes if h[0] <= t < h[1]), None)
                if hole is None:
                    times.append(t)
                    t -= step
                else:
                    t = interval_open(step, hole[0] - 1)
            times.reverse()
        current = interval_open(step, now)
        return [self._candle(symbol, interval, t, t == current) for t in times]

    def _walk(self, symbol: str, interval: str, t_ms: int) -> Decimal:
        """The seeded walk around the current price: the close of the candle opening at t_ms."""
        k = t_ms // INTERVAL_MS[interval]
        seed = f"{self.name}:{symbol}"
        phase1 = math.pi * unit_hash(seed, "phase1")
        phase2 = math.pi * unit_hash(seed, "phase2")
        offset = (
            0.02 * math.sin(2 * math.pi * k / 97 + phase1)
            + 0.008 * math.sin(2 * math.pi * k / 23 + phase2)
            + 0.002 * unit_hash(seed, interval, k)
        )
        return self.prices[symbol] * Decimal(repr(math.exp(offset)))

    def _candle(self, symbol: str, interval: str, t_ms: int, current: bool) -> Candle:
        market = self.markets[symbol]
        step = INTERVAL_MS[interval]
        tick = market.tick_size
        open_ = quantize(self._walk(symbol, interval, t_ms - step), tick, ROUND_HALF_EVEN)
        close = (
            self.prices[symbol]
            if current
            else quantize(self._walk(symbol, interval, t_ms), tick, ROUND_HALF_EVEN)
        )
        seed = f"{self.name}:{symbol}:{interval}:{t_ms}"
        wick_up = Decimal(repr(1 + 0.002 * abs(unit_hash(seed, "high"))))
        wick_down = Decimal(repr(1 - 0.002 * abs(unit_hash(seed, "low"))))
        high = quantize(max(open_, close) * wick_up, tick, ROUND_CEILING)
        low = max(tick, quantize(min(open_, close) * wick_down, tick, ROUND_DOWN))
        minutes = Decimal(step) / Decimal(60_000)
        notional = Decimal(20_000) * minutes * Decimal(repr(1 + abs(unit_hash(seed, "volume"))))
        volume = quantize(notional / close, market.step_size)
        return (t_ms, open_, high, low, close, volume)

    def day_stats(self, symbol: str) -> dict[str, Decimal]:
        """Rolling 24 h statistics from the hourly candles, for the tickers."""
        now = now_ms()
        rows = self.candles(symbol, "1h", now - 86_400_000, now, 25)
        last = self.prices[symbol]
        volume = sum((r[5] for r in rows), Decimal(0))
        quote_volume = sum((r[5] * r[4] for r in rows), Decimal(0))
        open_ = rows[0][1] if rows else last
        return {
            "open": open_,
            "high": max([last, *(r[2] for r in rows)]),
            "low": min([last, *(r[3] for r in rows)]),
            "last": last,
            "volume": volume,
            "quote_volume": quote_volume,
            "trades": Decimal(len(rows) * 1000),
        }

    # -- accounts ------------------------------------------------------------------
    def add_account(
        self,
        api_key: str,
        secret: str,
        balances: Mapping[str, Decimal | float | int | str],
        *,
        can_withdraw: bool,
        can_trade: bool,
        read_only: bool,
        can_transfer: bool = False,
        withdraw_flag_missing: bool = False,
    ) -> None:
        self.accounts[api_key] = Account(
            api_key=api_key,
            secret=secret,
            uid=10_000_000 + self._next_uid,
            balances={asset: Balance(free=to_decimal(v)) for asset, v in balances.items()},
            can_withdraw=can_withdraw,
            can_trade=can_trade,
            read_only=read_only,
            created_ms=now_ms(),
            can_transfer=can_transfer,
            withdraw_flag_missing=withdraw_flag_missing,
        )
        self._next_uid += 1

    # -- orders ------------------------------------------------------------------------
    def new_order_id(self) -> str:
        base = 28_000_000_000 if self.name == "binance" else 1_900_000_000_000_000_000
        order_id = str(base + self._next_order)
        self._next_order += 1
        return order_id

    def open_order_with_client_id(self, api_key: str, client_order_id: str) -> Order | None:
        for order in self.orders:
            if (
                order.api_key == api_key
                and order.client_order_id == client_order_id
                and order.is_open
            ):
                return order
        return None

    def find_order(
        self, api_key: str, symbol: str | None, order_id: str | None, client_order_id: str | None
    ) -> Order | None:
        """The account's order by id (preferred) or client order id, newest first."""
        if order_id:
            order = self.orders_by_id.get(order_id)
            if order and order.api_key == api_key and symbol in (None, order.symbol):
                return order
            return None
        for order in reversed(self.orders):
            if (
                order.api_key == api_key
                and order.client_order_id == client_order_id
                and symbol in (None, order.symbol)
            ):
                return order
        return None

    def submit(
        self,
        account: Account,
        symbol: str,
        side: Side,
        order_type: OrderType,
        amount: Decimal,
        *,
        price: Decimal | None = None,
        quote_amount: Decimal | None = None,
        time_in_force: str = "GTC",
        post_only: bool = False,
        client_order_id: str = "",
    ) -> Order:
        """Accept, lock funds for and match an already validated order."""
        market = self.markets[symbol]
        current = self.prices[symbol]
        marketable = order_type == "market" or (
            price is not None and (price >= current if side == "buy" else price <= current)
        )
        if post_only and marketable and self.name == "binance":
            raise OrderRejected("would_take")
        quote, base = account.balance(market.quote), account.balance(market.base)
        if order_type == "market":
            needed, wallet = (amount * current, quote) if side == "buy" else (amount, base)
        else:
            assert price is not None
            needed, wallet = (amount * price, quote) if side == "buy" else (amount, base)
        needed = quantize(needed, EIGHT_DP, ROUND_CEILING)
        if wallet.free < needed:
            raise OrderRejected("insufficient_balance")
        at = now_ms()
        order = Order(
            exchange=self.name,
            id=self.new_order_id(),
            client_order_id=client_order_id,
            api_key=account.api_key,
            symbol=symbol,
            side=side,
            type=order_type,
            time_in_force=time_in_force,
            price=price,
            amount=amount,
            quote_amount=quote_amount,
            created_ms=at,
            updated_ms=at,
            post_only=post_only,
        )
        self.orders.append(order)
        self.orders_by_id[order.id] = order
        if order_type == "limit":
            wallet.free -= needed
            wallet.locked += needed
            order.locked = needed
        if post_only and marketable:  # Bybit accepts a PostOnly order, then cancels it
            self._release(order, "canceled", "EC_PostOnlyWillTakeLiquidity")
        elif marketable:
            self._take_liquidity(order, current)
        elif time_in_force in ("IOC", "FOK"):
            self._release(order, "expired", "EC_CancelForNoFullFill")
        return order

    def _take_liquidity(self, order: Order, price: Decimal) -> None:
        """Fill a marketable order as taker at `price` as far as depth goes.

        What depth cannot give: a GTC limit order rests with it (Binance PARTIALLY_FILLED,
        Bybit PartiallyFilled); a market or IOC order gives it up (Binance EXPIRED, Bybit
        PartiallyFilledCanceled, or Cancelled without any fill); a FOK order executes nothing
        unless depth covers all of it.
        """
        qty = self._available(order.symbol, order.amount)
        if order.time_in_force == "FOK" and qty < order.amount:
            qty = Decimal(0)
        if qty > 0:
            self._fill(order, price, qty, maker=False)
        if order.is_open and (order.type == "market" or order.time_in_force in ("IOC", "FOK")):
            self._release(order, "expired", "EC_CancelForNoFullFill")

    def cancel(self, order: Order) -> None:
        self._release(order, "canceled", "")

    def _release(self, order: Order, status: OrderStatus, reason: str) -> None:
        account = self.accounts[order.api_key]
        market = self.markets[order.symbol]
        wallet = account.balance(market.quote if order.side == "buy" else market.base)
        wallet.locked -= order.locked
        wallet.free += order.locked
        order.locked = Decimal(0)
        order.status = status
        order.reject_reason = reason
        order.updated_ms = now_ms()

    def _fill(self, order: Order, price: Decimal, qty: Decimal, *, maker: bool) -> None:
        """Execute `qty` of `order` at `price`: one trade with its own fee, the balances, the
        depth it consumed and the part of the locked funds it no longer needs."""
        account = self.accounts[order.api_key]
        market = self.markets[order.symbol]
        depth = self.depth.get(order.symbol)
        if depth is not None:
            self.depth[order.symbol] = depth - qty
        cost = quantize(qty * price, EIGHT_DP)
        quote, base = account.balance(market.quote), account.balance(market.base)
        spent = quote if order.side == "buy" else base
        completes = order.filled + qty >= order.amount
        # A limit order locked amount x price (buy) or amount (sell); each execution frees its
        # own share (rounded down so the lock never runs short), the last one all that is left.
        if completes:
            release = order.locked
        elif order.side == "buy" and order.price is not None:
            release = min(order.locked, quantize(qty * order.price, EIGHT_DP))
        else:
            release = min(order.locked, qty)
        spent.locked -= release
        spent.free += release
        order.locked -= release
        if order.side == "buy":
            fee = quantize(qty * FEE_RATE, EIGHT_DP)
            quote.free -= cost
            base.free += qty - fee
            fee_asset = market.base
        else:
            fee = quantize(cost * FEE_RATE, EIGHT_DP)
            base.free -= qty
            quote.free += cost - fee
            fee_asset = market.quote
        at = now_ms()
        leaves = order.amount - order.filled - qty
        order.fills.append(
            Fill(self._next_trade, price, qty, fee, fee_asset, maker, at, leaves_qty=leaves)
        )
        self._next_trade += 1
        order.filled += qty
        order.cost += cost
        order.fee += fee
        order.fee_asset = fee_asset
        if completes:
            order.status = "filled"
        order.updated_ms = at

    def _match_resting(self, symbol: str) -> None:
        """Fill the open limit orders that cross the price, oldest first, at their own price as
        maker, as far as depth goes (the remainder of a partly filled order included).

        After this no open order crosses the price unless depth is exhausted.
        """
        current = self.prices[symbol]
        for order in self.orders:
            if order.symbol != symbol or not order.is_open or order.price is None:
                continue
            crossed = current <= order.price if order.side == "buy" else current >= order.price
            if not crossed:
                continue
            qty = self._available(symbol, order.remaining)
            if qty > 0:
                self._fill(order, order.price, qty, maker=True)


# --------------------------------------------------------------------------
# HTTP plumbing shared by both dialects
# --------------------------------------------------------------------------
@dataclass
class Request:
    """What a dialect needs from an HTTP request (already read)."""

    method: str
    path: str
    raw_query: str
    query: dict[str, str]
    body: str
    headers: Mapping[str, str]
    ip: str


@dataclass
class Reply:
    """A dialect's answer before it is serialised (and maybe broken by a fault)."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    def render(self) -> web.Response:
        if isinstance(self.body, str):
            return web.Response(status=self.status, text=self.body, headers=self.headers)
        return web.Response(
            status=self.status,
            text=json.dumps(self.body, separators=(",", ":")),
            content_type="application/json",
            headers=self.headers,
        )


Handler = Callable[[Request, Account | None], Reply]


@dataclass(frozen=True)
class Route:
    handler: Handler
    private: bool
    weight: Callable[[dict[str, str]], int] = lambda _params: 1
    bucket: str = "api"


def not_found(req: Request) -> Reply:
    return Reply(404, f"404 Not Found: {req.method} {req.path}")


# --------------------------------------------------------------------------
# Binance spot dialect
# --------------------------------------------------------------------------
class BinanceError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def _mandatory(name: str) -> BinanceError:
    return BinanceError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def _filter_failure(name: str) -> BinanceError:
    return BinanceError(-1013, f"Filter failure: {name}")


BINANCE_STATUS: dict[str, str] = {
    "open": "NEW",
    "filled": "FILLED",
    "canceled": "CANCELED",
    "expired": "EXPIRED",
}


def binance_status(order: Order) -> str:
    """Binance's ``status``: PARTIALLY_FILLED while an order works with some of it executed;
    a cancelled or expired one stays CANCELED / EXPIRED and keeps its ``executedQty``."""
    if order.is_open and order.filled > 0:
        return "PARTIALLY_FILLED"
    return BINANCE_STATUS[order.status]


class BinanceApi:
    """Binance spot REST (``/api/v3``, ``/sapi/v1``)."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.limits = BinanceLimits()
        self._weights = {"api": FixedWindow(60_000), "sapi": FixedWindow(60_000)}
        self._orders_10s = FixedWindow(10_000)
        self._orders_1d = FixedWindow(86_400_000)
        self._backoff_until: dict[str, float] = {}
        self._banned_until: dict[str, float] = {}

        def by_symbol(one: int, many: int) -> Callable[[dict[str, str]], int]:
            return lambda params: one if params.get("symbol") else many

        self.routes: dict[tuple[str, str], Route] = {
            ("GET", "/api/v3/ping"): Route(lambda r, a: Reply(200, {}), False),
            ("GET", "/api/v3/time"): Route(self._time, False),
            ("GET", "/api/v3/exchangeInfo"): Route(self._exchange_info, False, lambda p: 20),
            ("GET", "/api/v3/klines"): Route(self._klines, False, lambda p: 2),
            ("GET", "/api/v3/uiKlines"): Route(self._klines, False, lambda p: 2),
            ("GET", "/api/v3/ticker/24hr"): Route(self._ticker_24hr, False, self._ticker_weight),
            ("GET", "/api/v3/ticker/price"): Route(self._ticker_price, False, by_symbol(2, 4)),
            ("GET", "/api/v3/ticker/bookTicker"): Route(self._book_ticker, False, by_symbol(2, 4)),
            ("GET", "/api/v3/account"): Route(self._account, True, lambda p: 20),
            ("POST", "/api/v3/order"): Route(self._new_order, True),
            ("GET", "/api/v3/order"): Route(self._query_order, True, lambda p: 4),
            ("DELETE", "/api/v3/order"): Route(self._cancel_order, True),
            ("GET", "/api/v3/openOrders"): Route(self._open_orders, True, by_symbol(6, 80)),
            ("DELETE", "/api/v3/openOrders"): Route(self._cancel_open_orders, True),
            ("GET", "/api/v3/allOrders"): Route(self._all_orders, True, lambda p: 20),
            ("GET", "/api/v3/myTrades"): Route(
                self._my_trades, True, lambda p: 5 if p.get("orderId") else 20
            ),
            ("GET", "/sapi/v1/account/apiRestrictions"): Route(
                self._api_restrictions, True, bucket="sapi"
            ),
        }

    # -- limits ------------------------------------------------------------------
    def reset_limits(self) -> None:
        for window in (*self._weights.values(), self._orders_10s, self._orders_1d):
            window.clear()
        self._backoff_until.clear()
        self._banned_until.clear()

    def is_private(self, req: Request) -> bool:
        route = self.routes.get((req.method, req.path))
        return route.private if route else "X-MBX-APIKEY" in req.headers

    def _ban_reply(self, ip: str, now: float) -> Reply:
        until = self._banned_until[ip]
        return Reply(
            418,
            {
                "code": -1003,
                "msg": f"Way too much request weight used; IP banned until {int(until * 1000)}. "
                "Please use WebSocket Streams for live updates to avoid bans.",
            },
            {"Retry-After": str(math.ceil(until - now))},
        )

    def too_many_requests(self, ip: str, bucket: str, used: int | None = None) -> Reply:
        """A 429; a client that sends again before Retry-After is over gets banned (418)."""
        now = time.time()
        if used is None:
            used = self._weights[bucket].add(ip, 0, int(now * 1000))
        window_end = self._weights[bucket].ends_at(int(now * 1000)) / 1000
        retry_after = max(1, math.ceil(window_end - now))
        self._backoff_until[ip] = now + retry_after
        limit = self._bucket_limit(bucket)
        return Reply(
            429,
            {
                "code": -1003,
                "msg": f"Too much request weight used; current limit is {limit} request weight "
                "per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling "
                "the API.",
            },
            {"Retry-After": str(retry_after), self._weight_header(bucket): str(used)},
        )

    def _bucket_limit(self, bucket: str) -> int:
        if bucket == "sapi":
            return self.limits.sapi_weight_per_minute
        return self.limits.request_weight_per_minute

    @staticmethod
    def _weight_header(bucket: str) -> str:
        return "X-SAPI-USED-IP-WEIGHT-1M" if bucket == "sapi" else "X-MBX-USED-WEIGHT-1M"

    # -- dispatch ------------------------------------------------------------------
    def handle(self, req: Request) -> Reply:
        route = self.routes.get((req.method, req.path))
        now = time.time()
        if self._banned_until.get(req.ip, 0) > now:
            return self._ban_reply(req.ip, now)
        if self._backoff_until.get(req.ip, 0) > now:
            self._banned_until[req.ip] = now + self.limits.ban_seconds
            return self._ban_reply(req.ip, now)
        if route is None:
            return not_found(req)
        params = self._params(req)
        used = self._weights[route.bucket].add(req.ip, route.weight(params), int(now * 1000))
        if used > self._bucket_limit(route.bucket):
            return self.too_many_requests(req.ip, route.bucket, used)
        weight_header = {self._weight_header(route.bucket): str(used)}
        if route.bucket == "api":
            weight_header["X-MBX-USED-WEIGHT"] = str(used)
        try:
            account = self._authenticate(req, params) if route.private else None
            reply = route.handler(replace(req, query=params), account)
        except BinanceError as error:
            reply = Reply(error.status, {"code": error.code, "msg": error.msg})
        reply.headers.update(weight_header)
        return reply

    @staticmethod
    def _params(req: Request) -> dict[str, str]:
        """Body parameters overridden by query-string ones, as Binance documents."""
        params = dict(parse_qsl(req.body, keep_blank_values=True)) if req.body else {}
        params.update(req.query)
        return params

    def _authenticate(self, req: Request, params: dict[str, str]) -> Account:
        api_key = req.headers.get("X-MBX-APIKEY", "")
        if not api_key:
            raise BinanceError(-2014, "API-key format invalid.", 401)
        account = self.venue.accounts.get(api_key)
        if account is None:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        query, query_sig = _strip_signature(req.raw_query)
        body, body_sig = _strip_signature(req.body)
        signature = query_sig or body_sig
        if not signature:
            raise _mandatory("signature")
        if "timestamp" not in params:
            raise _mandatory("timestamp")
        timestamp = _int_param(params, "timestamp")
        recv_window = _int_param(params, "recvWindow") if params.get("recvWindow") else 5000
        if recv_window > 60_000:
            raise BinanceError(-1131, "recvWindow must be less than 60000")
        server_time = now_ms()
        if timestamp >= server_time + 1000:
            raise BinanceError(
                -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        if server_time - timestamp > recv_window:
            raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
        expected = hmac.new(
            account.secret.encode(), (query + body).encode(), hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise BinanceError(-1022, "Signature for this request is not valid.")
        return account

    def _market(self, params: dict[str, str]) -> Market:
        symbol_id = params.get("symbol")
        if not symbol_id:
            raise _mandatory("symbol")
        market = self.venue.by_id.get(symbol_id)
        if market is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return market

    def _markets(self, params: dict[str, str]) -> list[Market]:
        """The markets named by ``symbol`` or ``symbols`` (a JSON array), else all."""
        if params.get("symbol"):
            return [self._market(params)]
        if params.get("symbols"):
            try:
                ids = json.loads(params["symbols"])
            except json.JSONDecodeError as exc:
                raise BinanceError(
                    -1100, "Illegal characters found in parameter 'symbols'."
                ) from exc
            return [self._market({"symbol": str(symbol_id)}) for symbol_id in ids]
        return list(self.venue.markets.values())

    # -- public endpoints ----------------------------------------------------------
    def _time(self, req: Request, account: Account | None) -> Reply:
        return Reply(200, {"serverTime": now_ms()})

    def _exchange_info(self, req: Request, account: Account | None) -> Reply:
        limits = self.limits
        return Reply(
            200,
            {
                "timezone": "UTC",
                "serverTime": now_ms(),
                "rateLimits": [
                    _rate_limit("REQUEST_WEIGHT", "MINUTE", 1, limits.request_weight_per_minute),
                    _rate_limit("ORDERS", "SECOND", 10, limits.orders_per_10s),
                    _rate_limit("ORDERS", "DAY", 1, limits.orders_per_day),
                    _rate_limit("RAW_REQUESTS", "MINUTE", 5, 61_000),
                ],
                "exchangeFilters": [],
                "symbols": [self._symbol_info(m) for m in self._markets(req.query)],
            },
        )

    @staticmethod
    def _symbol_info(market: Market) -> dict[str, Any]:
        return {
            "symbol": market.id,
            "status": "TRADING",
            "baseAsset": market.base,
            "baseAssetPrecision": 8,
            "quoteAsset": market.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
            "icebergAllowed": False,
            "ocoAllowed": False,
            "otoAllowed": False,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": False,
            "amendAllowed": False,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": fmt8(market.min_price),
                    "maxPrice": fmt8(market.max_price),
                    "tickSize": fmt8(market.tick_size),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": fmt8(market.min_qty),
                    "maxQty": fmt8(market.max_qty),
                    "stepSize": fmt8(market.step_size),
                },
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": fmt8(Decimal(0)),
                    "maxQty": fmt8(market.max_qty),
                    "stepSize": fmt8(Decimal(0)),
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": fmt8(market.min_notional),
                    "applyMinToMarket": True,
                    "maxNotional": fmt8(market.max_notional),
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }

    def _klines(self, req: Request, account: Account | None) -> Reply:
        params = req.query
        market = self._market(params)
        interval = params.get("interval")
        if not interval:
            raise _mandatory("interval")
        if interval not in INTERVAL_MS:
            raise BinanceError(-1120, "Invalid interval.")
        limit = min(max(_int_param(params, "limit") if params.get("limit") else 500, 1), 1000)
        start = _int_param(params, "startTime") if params.get("startTime") else None
        end = _int_param(params, "endTime") if params.get("endTime") else None
        step = INTERVAL_MS[interval]
        rows = self.venue.candles(market.symbol, interval, start, end, limit)
        return Reply(200, [_binance_kline(row, step) for row in rows])

    @staticmethod
    def _ticker_weight(params: dict[str, str]) -> int:
        if params.get("symbol"):
            return 2
        try:
            count = len(json.loads(params["symbols"])) if params.get("symbols") else 0
        except json.JSONDecodeError:
            return 2
        if 0 < count <= 20:
            return 2
        return 40 if 0 < count <= 100 else 80

    def _one_or_many(self, params: dict[str, str], rows: list[dict[str, Any]]) -> Reply:
        return Reply(200, rows[0] if params.get("symbol") else rows)

    def _ticker_24hr(self, req: Request, account: Account | None) -> Reply:
        now = now_ms()
        rows = []
        for market in self._markets(req.query):
            stats = self.venue.day_stats(market.symbol)
            last, open_ = stats["last"], stats["open"]
            volume = stats["volume"]
            bid, ask, size = self._book(market)
            rows.append(
                {
                    "symbol": market.id,
                    "priceChange": fmt8(last - open_),
                    "priceChangePercent": f"{(last - open_) / open_ * 100:.3f}",
                    "weightedAvgPrice": fmt8(stats["quote_volume"] / volume if volume else last),
                    "prevClosePrice": fmt8(open_),
                    "lastPrice": fmt8(last),
                    "lastQty": fmt8(market.min_qty),
                    "bidPrice": fmt8(bid),
                    "bidQty": fmt8(size),
                    "askPrice": fmt8(ask),
                    "askQty": fmt8(size),
                    "openPrice": fmt8(open_),
                    "highPrice": fmt8(stats["high"]),
                    "lowPrice": fmt8(stats["low"]),
                    "volume": fmt8(volume),
                    "quoteVolume": fmt8(stats["quote_volume"]),
                    "openTime": now - 86_400_000,
                    "closeTime": now,
                    "firstId": 1,
                    "lastId": int(stats["trades"]),
                    "count": int(stats["trades"]),
                }
            )
        return self._one_or_many(req.query, rows)

    def _book(self, market: Market) -> tuple[Decimal, Decimal, Decimal]:
        """(best bid, best ask, size at each): one tick either side of the price."""
        price = self.venue.price(market.symbol)
        size = _book_size(self.venue, market, price)
        return max(market.tick_size, price - market.tick_size), price + market.tick_size, size

    def _ticker_price(self, req: Request, account: Account | None) -> Reply:
        rows = [
            {"symbol": m.id, "price": fmt8(self.venue.price(m.symbol))}
            for m in self._markets(req.query)
        ]
        return self._one_or_many(req.query, rows)

    def _book_ticker(self, req: Request, account: Account | None) -> Reply:
        rows = []
        for market in self._markets(req.query):
            bid, ask, size = self._book(market)
            rows.append(
                {
                    "symbol": market.id,
                    "bidPrice": fmt8(bid),
                    "bidQty": fmt8(size),
                    "askPrice": fmt8(ask),
                    "askQty": fmt8(size),
                }
            )
        return self._one_or_many(req.query, rows)

    # -- signed endpoints ----------------------------------------------------------
    def _account(self, req: Request, account: Account | None) -> Reply:
        assert account is not None
        omit_zero = req.query.get("omitZeroBalances") == "true"
        balances = [
            {"asset": asset, "free": fmt8(b.free), "locked": fmt8(b.locked)}
            for asset, b in sorted(account.balances.items())
            if not (omit_zero and b.total == 0)
        ]
        return Reply(
            200,
            {
                "makerCommission": 10,
                "takerCommission": 10,
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {
                    "maker": fmt8(FEE_RATE),
                    "taker": fmt8(FEE_RATE),
                    "buyer": fmt8(Decimal(0)),
                    "seller": fmt8(Decimal(0)),
                },
                "canTrade": account.may_trade,
                "canWithdraw": account.can_withdraw,
                "canDeposit": True,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": now_ms(),
                "accountType": "SPOT",
                "balances": balances,
                "permissions": ["SPOT"],
                "uid": account.uid,
            },
        )

    def _api_restrictions(self, req: Request, account: Account | None) -> Reply:
        assert account is not None
        body = {
            "ipRestrict": False,
            "createTime": account.created_ms,
            "enableReading": True,
            "enableWithdrawals": account.can_withdraw and not account.read_only,
            "enableInternalTransfer": account.can_transfer and not account.read_only,
            "enableMargin": False,
            "enableFutures": False,
            "permitsUniversalTransfer": account.can_transfer and not account.read_only,
            "enableVanillaOptions": False,
            "enableFixApiTrade": False,
            "enableFixReadOnly": False,
            "enableSpotAndMarginTrading": account.may_trade,
            "enablePortfolioMarginTrading": False,
        }
        if account.withdraw_flag_missing:
            del body["enableWithdrawals"]
        return Reply(200, body)

    def _count_order(self, account: Account) -> dict[str, str]:
        at = now_ms()
        key = str(account.uid)
        in_10s = self._orders_10s.add(key, 1, at)
        in_day = self._orders_1d.add(key, 1, at)
        if in_10s > self.limits.orders_per_10s:
            raise BinanceError(
                -1015,
                f"Too many new orders; current limit is {self.limits.orders_per_10s} orders per "
                "10 SECOND.",
                429,
            )
        if in_day > self.limits.orders_per_day:
            raise BinanceError(
                -1015,
                f"Too many new orders; current limit is {self.limits.orders_per_day} orders per "
                "1 DAY.",
                429,
            )
        return {"X-MBX-ORDER-COUNT-10S": str(in_10s), "X-MBX-ORDER-COUNT-1D": str(in_day)}

    def _new_order(self, req: Request, account: Account | None) -> Reply:
        assert account is not None
        params = req.query
        if not account.may_trade:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        counts = self._count_order(account)
        market = self._market(params)
        side = _required(params, "side")
        order_type = _required(params, "type")
        if side not in ("BUY", "SELL"):
            raise BinanceError(-1117, "Invalid side.")
        if order_type not in ("LIMIT", "LIMIT_MAKER", "MARKET"):
            raise BinanceError(-1116, "Invalid orderType.")
        client_id = params.get("newClientOrderId") or _random_client_id()
        if not _valid_client_id(client_id):
            raise BinanceError(
                -1100,
                "Illegal characters found in parameter 'newClientOrderId'; legal range is "
                "'^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
            )
        current = self.venue.price(market.symbol)
        price = quote_qty = None
        time_in_force = "GTC"
        if order_type == "MARKET":
            quantity = _decimal_param(params, "quantity")
            quote_qty = _decimal_param(params, "quoteOrderQty")
            if quantity is None and quote_qty is None:
                raise BinanceError(
                    -1102,
                    "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
                )
            if quantity is not None and quote_qty is not None:
                raise BinanceError(-1106, "Parameter 'quoteOrderQty' sent when not required.")
            if quantity is None:
                assert quote_qty is not None
                quantity = quantize(quote_qty / current, market.step_size)
            notional_price = current
        else:
            quantity = _decimal_param(params, "quantity")
            price = _decimal_param(params, "price")
            if quantity is None:
                raise _mandatory("quantity")
            if price is None:
                raise _mandatory("price")
            if order_type == "LIMIT":
                time_in_force = _required(params, "timeInForce")
                if time_in_force not in ("GTC", "IOC", "FOK"):
                    raise BinanceError(-1115, "Invalid timeInForce.")
            if (
                price < market.min_price
                or price > market.max_price
                or not is_multiple(price, market.tick_size)
            ):
                raise _filter_failure("PRICE_FILTER")
            notional_price = price
        if (
            quantity < market.min_qty
            or quantity > market.max_qty
            or not is_multiple(quantity, market.step_size)
        ):
            raise _filter_failure("LOT_SIZE")
        notional = quantity * notional_price
        if notional < market.min_notional or (
            order_type != "MARKET" and notional > market.max_notional
        ):
            raise _filter_failure("NOTIONAL")
        if self.venue.open_order_with_client_id(account.api_key, client_id):
            raise BinanceError(-2010, "Duplicate order sent.")
        try:
            order = self.venue.submit(
                account,
                market.symbol,
                "buy" if side == "BUY" else "sell",
                "market" if order_type == "MARKET" else "limit",
                quantity,
                price=price,
                quote_amount=quote_qty,
                time_in_force=time_in_force,
                post_only=order_type == "LIMIT_MAKER",
                client_order_id=client_id,
            )
        except OrderRejected as rejected:
            if rejected.reason == "would_take":
                raise BinanceError(-2010, "Order would immediately match and take.") from None
            raise BinanceError(
                -2010, "Account has insufficient balance for requested action."
            ) from None
        return Reply(200, self._new_order_response(order, params.get("newOrderRespType")), counts)

    def _new_order_response(self, order: Order, resp_type: str | None) -> dict[str, Any]:
        ack = {
            "symbol": self.venue.markets[order.symbol].id,
            "orderId": int(order.id),
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            "transactTime": order.created_ms,
        }
        if resp_type == "ACK":
            return ack
        result = {
            **ack,
            **self._order_core(order),
            "workingTime": order.created_ms,
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }
        if resp_type == "RESULT":
            return result
        result["fills"] = [
            {
                "price": fmt8(f.price),
                "qty": fmt8(f.qty),
                "commission": fmt8(f.fee),
                "commissionAsset": f.fee_asset,
                "tradeId": f.trade_id,
            }
            for f in order.fills
        ]
        return result

    @staticmethod
    def _order_core(order: Order) -> dict[str, Any]:
        return {
            "price": fmt8(order.price),
            "origQty": fmt8(order.amount),
            "executedQty": fmt8(order.filled),
            "origQuoteOrderQty": fmt8(order.quote_amount),
            "cummulativeQuoteQty": fmt8(order.cost),
            "status": binance_status(order),
            "timeInForce": order.time_in_force,
            "type": _binance_type(order),
            "side": order.side.upper(),
        }

    def _order_json(self, order: Order) -> dict[str, Any]:
        return {
            "symbol": self.venue.markets[order.symbol].id,
            "orderId": int(order.id),
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            **self._order_core(order),
            "stopPrice": fmt8(Decimal(0)),
            "icebergQty": fmt8(Decimal(0)),
            "time": order.created_ms,
            "updateTime": order.updated_ms,
            "isWorking": True,
            "workingTime": order.created_ms,
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def _lookup(self, params: dict[str, str], account: Account, market: Market) -> Order | None:
        order_id, client_id = params.get("orderId"), params.get("origClientOrderId")
        if not order_id and not client_id:
            raise BinanceError(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        return self.venue.find_order(account.api_key, market.symbol, order_id, client_id)

    def _query_order(self, req: Request, account: Account | None) -> Reply:
        assert account is not None
        market = self._market(req.query)
        order = self._lookup(req.query, account, market)
        if order is None:
            raise BinanceError(-2013, "Order does not exist.")
        return Reply(200, self._order_json(order))

    def _cancel_order(self, req: Request, account: Account | None) -> Reply:
        assert account is not None
        if not account.may_trade:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        market = self._market(req.query)
        order = self._lookup(req.query, account, market)
        if order is None or not order.is_open:
            raise BinanceError(-2011, "Unknown order sent.")
        self.venue.cancel(order)
        return Reply(200, self._cancel_json(order, req.query.get("newClientOrderId")))

    def _cancel_json(self, order: Order, cancel_client_id: str | None) -> dict[str, Any]:
        return {
            "symbol": self.venue.markets[order.symbol].id,
            "origClientOrderId": order.client_order_id,
            "orderId": int(order.id),
            "orderListId": -1,
            "clientOrderId": cancel_client_id or _random_client_id(),
            "transactTime": order.updated_ms,
            **self._order_core(order),
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def _account_orders(self, account: Account, market: Market | None) -> list[Order]:
        return [
            o
            for o in self.venue.orders
            if o.api_key == account.api_key and (market is None or o.symbol == market.symbol)
        ]

    def _open_orders(self, req: Request, account: Account | None) -> Reply:
        assert account is not None
        market = self._market(req.query) if req.query.get("symbol") else None
        orders = [o for o in self._account_orders(account, market) if o.is_open]
        return Reply(200, [self._order_json(o) for o in orders])

    def _cancel_open_orders(self, req: Request, account: Account | None) -> Reply:
        assert account is not None
        if not account.may_trade:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        market = self._market(req.query)
        orders = [o for o in self._account_orders(account, market) if o.is_open]
        if not orders:
            raise BinanceError(-2011, "Unknown order sent.")
        for order in orders:
            self.venue.cancel(order)
        return Reply(200, [self._cancel_json(o, None) for o in orders])

    def _window(
        self, params: dict[str, str], rows: list[Any], time_of: Callable[[Any], int]
    ) -> list[Any]:
        start = _int_param(params, "startTime") if params.get("startTime") else None
        end = _int_param(params, "endTime") if params.get("endTime") else None
        limit = min(max(_int_param(params, "limit") if params.get("limit") else 500, 1), 1000)
        rows = [
            r
            for r in rows
            if (start is None or time_of(r) >= start) and (end is None or time_of(r) <= end)
        ]
        return rows[:limit] if start is not None else rows[-limit:]

    def _all_orders(self, req: Request, account: Account | None) -> Reply:
        assert account is not None
        market = self._market(req.query)
        orders = self._account_orders(account, market)
        if req.query.get("orderId"):
            orders = [o for o in orders if int(o.id) >= _int_param(req.query, "orderId")]
        rows = self._window(req.query, orders, lambda o: o.created_ms)
        return Reply(200, [self._order_json(o) for o in rows])

    def _my_trades(self, req: Request, account: Account | None) -> Reply:
        assert account is not None
        market = self._market(req.query)
        trades = [
            (order, fill)
            for order in self._account_orders(account, market)
            for fill in order.fills
            if not req.query.get("orderId") or order.id == req.query["orderId"]
        ]
        if req.query.get("fromId"):
            trades = [t for t in trades if t[1].trade_id >= _int_param(req.query, "fromId")]
        trades.sort(key=lambda t: t[1].trade_id)
        rows = self._window(req.query, trades, lambda t: t[1].time_ms)
        return Reply(
            200,
            [
                {
                    "symbol": market.id,
                    "id": fill.trade_id,
                    "orderId": int(order.id),
                    "orderListId": -1,
                    "price": fmt8(fill.price),
                    "qty": fmt8(fill.qty),
                    "quoteQty": fmt8(fill.price * fill.qty),
                    "commission": fmt8(fill.fee),
                    "commissionAsset": fill.fee_asset,
                    "time": fill.time_ms,
                    "isBuyer": order.side == "buy",
                    "isMaker": fill.maker,
                    "isBestMatch": True,
                }
                for order, fill in rows
            ],
        )


def _book_size(venue: Venue, market: Market, price: Decimal) -> Decimal:
    """The quantity quoted at the best bid and ask: the depth when one is set (so a client that
    reads the book sees what it can take), else ~25,000 of the quote asset."""
    depth = venue.depth_of(market.symbol)
    if depth is not None:
        return quantize(depth, market.step_size)
    return max(market.min_qty, quantize(Decimal(25_000) / price, market.step_size))


def _rate_limit(kind: str, interval: str, num: int, limit: int) -> dict[str, Any]:
    return {"rateLimitType": kind, "interval": interval, "intervalNum": num, "limit": limit}


def _binance_kline(row: Candle, step: int) -> list[Any]:
    t, o, h, low, c, v = row
    quote_volume = v * c
    return [
        t,
        fmt8(o),
        fmt8(h),
        fmt8(low),
        fmt8(c),
        fmt8(v),
        t + step - 1,
        fmt8(quote_volume),
        max(1, int(v * 7) % 5000),
        fmt8(v / 2),
        fmt8(quote_volume / 2),
        "0",
    ]


def _binance_type(order: Order) -> str:
    if order.type == "market":
        return "MARKET"
    return "LIMIT_MAKER" if order.post_only else "LIMIT"


def _strip_signature(raw: str) -> tuple[str, str | None]:
    """(raw text without its ``signature=`` pair, the signature)."""
    kept, signature = [], None
    for part in raw.split("&") if raw else []:
        if part.startswith("signature="):
            signature = part[len("signature=") :]
        else:
            kept.append(part)
    return "&".join(kept), signature


def _int_param(params: Mapping[str, str], name: str) -> int:
    try:
        return int(params[name])
    except (KeyError, ValueError):
        raise BinanceError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        ) from None


def _decimal_param(params: Mapping[str, str], name: str) -> Decimal | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    value = parse_decimal(text)
    if value is None or value <= 0:
        raise BinanceError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is "
            "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
        )
    return value


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise _mandatory(name)
    return value


def _valid_client_id(client_id: str) -> bool:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/-")
    return 0 < len(client_id) <= 36 and set(client_id) <= allowed


def _random_client_id() -> str:
    return hashlib.sha256(str(time.perf_counter_ns()).encode()).hexdigest()[:22]


# --------------------------------------------------------------------------
# Bybit v5 dialect
# --------------------------------------------------------------------------
class BybitError(Exception):
    def __init__(self, code: int, msg: str, status: int = 200) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


BYBIT_STATUS: dict[str, str] = {
    "open": "New",
    "filled": "Filled",
    "canceled": "Cancelled",
    "expired": "Cancelled",
}


def bybit_status(order: Order) -> str:
    """Bybit's ``orderStatus``: PartiallyFilled while working with some of it executed;
    PartiallyFilledCanceled ("only spot has this order status") once a partly filled order is
    cancelled by the user or gives up the rest (market / IOC orders)."""
    if order.filled > 0 and order.status == "open":
        return "PartiallyFilled"
    if order.filled > 0 and order.status in ("canceled", "expired"):
        return "PartiallyFilledCanceled"
    return BYBIT_STATUS[order.status]


def bybit_envelope(result: Any, code: int = 0, msg: str = "OK") -> dict[str, Any]:
    return {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": now_ms()}


class BybitApi:
    """Bybit v5 REST (``/v5``), spot category, unified trading account."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.limits = BybitLimits()
        self._ip_window = RollingWindow(5_000)
        self._uid_window = RollingWindow(1_000)
        self._banned_until: dict[str, float] = {}
        self.routes: dict[tuple[str, str], Route] = {
            ("GET", "/v5/market/time"): Route(self._time, False),
            ("GET", "/v5/market/instruments-info"): Route(self._instruments, False),
            ("GET", "/v5/market/tickers"): Route(self._tickers, False),
            ("GET", "/v5/market/kline"): Route(self._kline, False),
            ("GET", "/v5/account/wallet-balance"): Route(self._wallet_balance, True),
            ("GET", "/v5/account/info"): Route(self._account_info, True),
            ("GET", "/v5/user/query-api"): Route(self._query_api, True),
            ("GET", "/v5/asset/coin/query-info"): Route(self._coin_info, True),
            ("POST", "/v5/order/create"): Route(self._create_order, True),
            ("GET", "/v5/order/realtime"): Route(self._realtime, True),
            ("GET", "/v5/order/history"): Route(self._history, True),
            ("POST", "/v5/order/cancel"): Route(self._cancel_order, True),
            ("GET", "/v5/execution/list"): Route(self._executions, True),
        }

    # -- limits --------------------------------------------------------------------
    def reset_limits(self) -> None:
        self._ip_window.clear()
        self._uid_window.clear()
        self._banned_until.clear()

    def is_private(self, req: Request) -> bool:
        route = self.routes.get((req.method, req.path))
        return route.private if route else "X-BAPI-API-KEY" in req.headers

    def too_many_visits(self, path: str, reset_ms: int) -> Reply:
        """Bybit's per-UID answer (HTTP 200, retCode 10006)."""
        limit = self.limits.uid_requests_per_second.get(path, 10)
        return Reply(
            200,
            bybit_envelope({}, 10006, "Too many visits!"),
            {
                "X-Bapi-Limit": str(limit),
                "X-Bapi-Limit-Status": "0",
                "X-Bapi-Limit-Reset-Timestamp": str(reset_ms),
            },
        )

    # -- dispatch ------------------------------------------------------------------
    def handle(self, req: Request) -> Reply:
        now = time.time()
        at = int(now * 1000)
        if self._banned_until.get(req.ip, 0) > now:
            return Reply(403, "access too frequent")
        self._ip_window.add(req.ip, at)
        if self._ip_window.count(req.ip, at) > self.limits.ip_requests_per_5s:
            self._banned_until[req.ip] = now + self.limits.ip_ban_seconds
            return Reply(403, "access too frequent")
        route = self.routes.get((req.method, req.path))
        if route is None:
            return not_found(req)
        try:
            params = self._params(req)
            headers: dict[str, str] = {}
            account = None
            if route.private:
                account = self._authenticate(req)
                key = f"{account.uid}:{req.path}"
                limit = self.limits.uid_requests_per_second.get(req.path, 10)
                used = self._uid_window.count(key, at)
                if used >= limit:
                    return self.too_many_visits(req.path, self._uid_window.resets_at(key, at))
                self._uid_window.add(key, at)
                headers = {
                    "X-Bapi-Limit": str(limit),
                    "X-Bapi-Limit-Status": str(limit - used - 1),
                    "X-Bapi-Limit-Reset-Timestamp": str(at),
                }
            reply = route.handler(replace(req, query=params), account)
            reply.headers.update(headers)
            return reply
        except BybitError as error:
            return Reply(error.status, bybit_envelope({}, error.code, error.msg))

    @staticmethod
    def _params(req: Request) -> dict[str, str]:
        if req.method == "GET" or not req.body:
            return dict(req.query)
        try:
            body = json.loads(req.body)
        except json.JSONDecodeError:
            raise BybitError(10001, "request params type error") from None
        if not isinstance(body, dict):
            raise BybitError(10001, "request params type error")
        return {
            k: json.dumps(v) if isinstance(v, bool | list | dict) else str(v)
            for k, v in body.items()
            if v is not None
        }

    def _authenticate(self, req: Request) -> Account:
        api_key = req.headers.get("X-BAPI-API-KEY", "")
        timestamp = req.headers.get("X-BAPI-TIMESTAMP", "")
        sign = req.headers.get("X-BAPI-SIGN", "")
        recv_window = req.headers.get("X-BAPI-RECV-WINDOW", "5000")
        if not (api_key and timestamp and sign):
            raise BybitError(
                10003 if not api_key else 10004,
                f"empty value: apiTimestamp[{timestamp}] apiKey[{api_key}] apiSignature[{sign}]",
                401 if not api_key else 200,
            )
        account = self.venue.accounts.get(api_key)
        if account is None:
            raise BybitError(10003, "API key is invalid.", 401)
        server_time = now_ms()
        try:
            ts, window = int(timestamp), int(recv_window)
        except ValueError:
            ts, window = 0, 0
        if not server_time - window <= ts < server_time + 1000:
            raise BybitError(
                10002,
                "invalid request, please check your server timestamp or recv_window param. "
                f"req_timestamp[{timestamp}],server_timestamp[{server_time}],"
                f"recv_window[{recv_window}]",
            )
        payload = (
            timestamp + api_key + recv_window + (req.raw_query if req.method == "GET" else req.body)
        )
        expected = hmac.new(account.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sign.lower()):
            raise BybitError(10004, f"error sign! origin_string[{payload}]")
        return account

    @staticmethod
    def _category(params: dict[str, str], default: str | None = None) -> str:
        category = params.get("category", default)
        if category not in ("spot", "linear", "inverse", "option"):
            raise BybitError(10001, "Illegal category")
        return category

    def _spot_market(self, params: dict[str, str], *, required: bool = True) -> Market | None:
        symbol_id = params.get("symbol")
        if not symbol_id:
            if required:
                raise BybitError(10001, "params error: symbol is required")
            return None
        market = self.venue.by_id.get(symbol_id)
        if market is None:
            raise BybitError(10001, "Not supported symbols")
        return market

    def _trade_category(self, params: dict[str, str]) -> None:
        if self._category(params) != "spot":
            raise BybitError(10001, "Illegal category")

    # -- public endpoints ----------------------------------------------------------
    def _time(self, req: Request, account: Account | None) -> Reply:
        nanos = time.time_ns()
        return Reply(
            200,
            bybit_envelope({"timeSecond": str(nanos // 10**9), "timeNano": str(nanos)}),
        )

    def _instruments(self, req: Request, account: Account | None) -> Reply:
        category = self._category(req.query)
        rows: list[dict[str, Any]] = []
        if category == "spot":
            market = self._spot_market(req.query, required=False)
            markets = [market] if market else list(self.venue.markets.values())
            rows = [self._instrument(m) for m in markets]
        return Reply(
            200, bybit_envelope({"category": category, "list": rows, "nextPageCursor": ""})
        )

    @staticmethod
    def _instrument(market: Market) -> dict[str, Any]:
        return {
            "symbol": market.id,
            "baseCoin": market.base,
            "quoteCoin": market.quote,
            "innovation": "0",
            "status": "Trading",
            "marginTrading": "none",
            "stTag": "0",
            "lotSizeFilter": {
                "basePrecision": plain(market.step_size),
                "quotePrecision": plain(EIGHT_DP),
                "minOrderQty": plain(market.min_qty),
                "maxOrderQty": plain(market.max_qty),
                "minOrderAmt": plain(market.min_notional),
                "maxOrderAmt": plain(market.max_notional),
            },
            "priceFilter": {"tickSize": plain(market.tick_size)},
            "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.1"},
            "symbolType": "",
        }

    def _tickers(self, req: Request, account: Account | None) -> Reply:
        category = self._category(req.query)
        rows: list[dict[str, Any]] = []
        if category == "spot":
            market = self._spot_market(req.query, required=False)
            for m in [market] if market else list(self.venue.markets.values()):
                stats = self.venue.day_stats(m.symbol)
                last, open_ = stats["last"], stats["open"]
                size = _book_size(self.venue, m, last)
                rows.append(
                    {
                        "symbol": m.id,
                        "bid1Price": plain(max(m.tick_size, last - m.tick_size)),
                        "bid1Size": plain(size),
                        "ask1Price": plain(last + m.tick_size),
                        "ask1Size": plain(size),
                        "lastPrice": plain(last),
                        "prevPrice24h": plain(open_),
                        "price24hPcnt": f"{(last - open_) / open_:.4f}",
                        "highPrice24h": plain(stats["high"]),
                        "lowPrice24h": plain(stats["low"]),
                        "turnover24h": plain(quantize(stats["quote_volume"], EIGHT_DP)),
                        "volume24h": plain(stats["volume"]),
                        "usdIndexPrice": plain(last) if m.quote in ("USDT", "USDC") else "",
                    }
                )
        return Reply(200, bybit_envelope({"category": category, "list": rows}))

    def _kline(self, req: Request, account: Account | None) -> Reply:
        params = req.query
        category = self._category(params, "linear")
        if category != "spot":
            raise BybitError(10001, "Not supported symbols")
        market = self._spot_market(params)
        assert market is not None
        interval = BYBIT_INTERVALS.get(params.get("interval", ""))
        if interval is None:
            raise BybitError(10001, "Invalid period!")
        try:
            limit = min(max(int(params.get("limit", "200")), 1), 1000)
            start = int(params["start"]) if params.get("start") else None
            end = int(params["end"]) if params.get("end") else None
        except ValueError:
            raise BybitError(10001, "params error: start, end and limit must be integers") from None
        rows = self.venue.candles(market.symbol, interval, start, end, limit)
        klines = [
            [str(t), plain(o), plain(h), plain(lo), plain(c), plain(v), plain(v * c)]
            for t, o, h, lo, c, v in rows
        ]
        klines.reverse()  # Bybit sorts newest first
        return Reply(200, bybit_envelope({"symbol": market.id, "category": "spot", "list": klines}))

    # -- account endpoints ---------------------------------------------------------
    def _usd_value(self, asset: str, amount: Decimal) -> Decimal:
        if asset in ("USDT", "USDC"):
            return amount
        market = self.venue.markets.get(f"{asset}/USDT")
        return amount * self.venue.price(market.symbol) if market else Decimal(0)

    def _wallet_balance(self, req: Request, account: Account | None) -> Reply:
        assert account is not None
        if req.query.get("accountType") != "UNIFIED":
            raise BybitError(10001, "accountType only support UNIFIED.")
        wanted = set(req.query["coin"].split(",")) if req.query.get("coin") else None
        coins = []
        total = Decimal(0)
        for asset, balance in sorted(account.balances.items()):
            if wanted is not None and asset not in wanted:
                continue
            usd = quantize(self._usd_value(asset, balance.total), EIGHT_DP)
            total += usd
            coins.append(
                {
                    "availableToBorrow": "",
                    "bonus": "0",
                    "accruedInterest": "0",
                    "availableToWithdraw": "",
                    "totalOrderIM": "0",
                    "equity": plain(balance.total),
                    "totalPositionMM": "0",
                    "usdValue": plain(usd),
                    "unrealisedPnl": "0",
                    "collateralSwitch": True,
                    "spotHedgingQty": "0",
                    "borrowAmount": "0",
                    "totalPositionIM": "0",
                    "walletBalance": plain(balance.total),
                    "cumRealisedPnl": "0",
                    "locked": plain(balance.locked),
                    "marginCollateral": True,
                    "coin": asset,
                    "spotBorrow": "0",
                }
            )
        entry = {
            "totalEquity": plain(total),
            "accountIMRate": "0",
            "totalMarginBalance": plain(total),
            "totalInitialMargin": "0",
            "accountType": "UNIFIED",
            "totalAvailableBalance": plain(total),
            "accountMMRate": "0",
            "totalPerpUPL": "0",
            "totalWalletBalance": plain(total),
            "accountLTV": "0",
            "totalMaintenanceMargin": "0",
            "coin": coins,
        }
        return Reply(200, bybit_envelope({"list": [entry]}))

    def _account_info(self, req: Request, account: Account | None) -> Reply:
        assert account is not None
        return Reply(
            200,
            bybit_envelope(
                {
                    "unifiedMarginStatus": 5,
                    "marginMode": "REGULAR_MARGIN",
                    "isMasterTrader": False,
                    "spotHedgingStatus": "OFF",
                    "updatedTime": str(account.created_ms),
                    "dcpStatus": "OFF",
                    "timeWindow": 10,
                    "smpGroup": 0,
                }
            ),
        )

    def _query_api(self, req: Request, account: Account | None) -> Reply:
        assert account is not None
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(account.created_ms / 1000))
        wallet = ["AccountTransfer", "SubMemberTransfer"] if account.can_transfer else []
        if account.can_withdraw and not account.read_only:
            wallet.append("Withdraw")
        trading = account.can_trade
        permissions: dict[str, list[str]] = {
            "ContractTrade": ["Order", "Position"] if trading else [],
            "Spot": ["SpotTrade"] if trading else [],
            "Wallet": wallet,
            "Options": ["OptionsTrade"] if trading else [],
            "Derivatives": [],
            "CopyTrading": [],
            "BlockTrade": [],
            "Exchange": ["ExchangeHistory"],
            "Earn": [],
            "NFT": [],
            "Affiliate": [],
        }
        if account.withdraw_flag_missing:
            del permissions["Wallet"]
        return Reply(
            200,
            bybit_envelope(
                {
                    "id": str(account.uid),
                    "note": "robotrader-emulator",
                    "apiKey": account.api_key,
                    "readOnly": 1 if account.read_only else 0,
                    "secret": "",
                    "permissions": permissions,
                    "ips": ["*"],
                    "type": 1,
                    "deadlineDay": 90,
                    "expiredAt": "",
                    "createdAt": created,
                    "unified": 0,
                    "uta": 1,
                    "userID": account.uid,
                    "inviterID": 0,
                    "vipLevel": "No VIP",
                    "mktMakerLevel": "0",
                    "affiliateID": 0,
                    "rsaPublicKey": "",
                    "isMaster": True,
                    "parentUid": "0",
                    "kycLevel": "LEVEL_DEFAULT",
                    "kycRegion": "",
                }
            ),
        )

    def _coin_info(self, req: Request, account: Account | None) -> Reply:
        coins = sorted({a for m in self.venue.markets.values() for a in (m.base, m.quote)})
        wanted = req.query.get("coin")
        rows = [
            {
                "name": coin,
                "coin": coin,
                "remainAmount": "1000000",
                "chains": [
                    {
                        "chainType": coin,
                        "confirmation": "12",
                        "withdrawFee": "0",
                        "depositMin": "0",
                        "withdrawMin": "0",
                        "chain": coin,
                        "chainDeposit": "1",
                        "chainWithdraw": "1",
                        "minAccuracy": "8",
                        "withdrawPercentageFee": "0",
                        "contractAddress": "",
                    }
                ],
            }
            for coin in coins
            if wanted in (None, coin)
        ]
        return Reply(200, bybit_envelope({"rows": rows}))

    # -- trade endpoints -----------------------------------------------------------
    def _create_order(self, req: Request, account: Account | None) -> Reply:
        assert account is not None
        params = req.query
        self._trade_category(params)
        if not account.may_trade:
            raise BybitError(10005, "Permission denied, please check your API key permissions.")
        symbol_id = params.get("symbol", "")
        market = self.venue.by_id.get(symbol_id)
        if market is None:
            raise BybitError(170121, "Invalid symbol.")
        side, order_type = params.get("side"), params.get("orderType")
        if side not in ("Buy", "Sell"):
            raise BybitError(10001, "params error: side invalid")
        if order_type not in ("Market", "Limit"):
            raise BybitError(10001, "params error: orderType invalid")
        qty = parse_decimal(params.get("qty"))
        if qty is None or qty <= 0:
            raise BybitError(10001, "params error: qty invalid")
        link_id = params.get("orderLinkId", "")
        if len(link_id) > 36:
            raise BybitError(10001, "params error: orderLinkId is too long")
        if link_id and self.venue.open_order_with_client_id(account.api_key, link_id):
            raise BybitError(170141, "Duplicate clientOrderId.")
        current = self.venue.price(market.symbol)
        time_in_force = params.get("timeInForce") or ("GTC" if order_type == "Limit" else "IOC")
        price = quote_qty = None
        if order_type == "Limit":
            price = parse_decimal(params.get("price"))
            if price is None or price <= 0:
                raise BybitError(10001, "params error: price invalid")
            if not is_multiple(price, market.tick_size):
                raise BybitError(170134, "Order price decimal too long.")
            amount, value = qty, qty * price
        else:
            default_unit = "quoteCoin" if side == "Buy" else "baseCoin"
            if params.get("marketUnit", default_unit) == "quoteCoin":
                quote_qty, value = qty, qty
                amount = quantize(qty / current, market.step_size)
            else:
                amount, value = qty, qty * current
        if quote_qty is None:
            if not is_multiple(amount, market.step_size):
                raise BybitError(170137, "Order volume decimal too long")
            if amount < market.min_qty:
                raise BybitError(170136, "Order quantity lower than the minimum.")
            if amount > market.max_qty:
                raise BybitError(170135, "Order quantity too large.")
        if value < market.min_notional:
            raise BybitError(170140, "Order value exceeded lower limit.")
        if value > market.max_notional:
            raise BybitError(170139, "Order value exceeded upper limit.")
        if amount <= 0:
            raise BybitError(170136, "Order quantity lower than the minimum.")
        try:
            order = self.venue.submit(
                account,
                market.symbol,
                "buy" if side == "Buy" else "sell",
                "limit" if order_type == "Limit" else "market",
                amount,
                price=price,
                quote_amount=quote_qty,
                time_in_force=time_in_force,
                post_only=time_in_force == "PostOnly",
                client_order_id=link_id,
            )
        except OrderRejected:
            raise BybitError(170131, "Insufficient balance.") from None
        return Reply(
            200, bybit_envelope({"orderId": order.id, "orderLinkId": order.client_order_id})
        )

    def _order_json(self, order: Order) -> dict[str, Any]:
        market = self.venue.markets[order.symbol]
        quote_unit = order.quote_amount is not None
        qty = order.quote_amount if quote_unit else order.amount
        leaves = Decimal(0) if not order.is_open else order.amount - order.filled
        cancel_type = "UNKNOWN"
        if order.status == "canceled":
            cancel_type = "CancelByUser" if not order.reject_reason else "CancelBySystem"
        return {
            "orderId": order.id,
            "orderLinkId": order.client_order_id,
            "blockTradeId": "",
            "symbol": market.id,
            "price": plain(order.price) if order.price is not None else "0",
            "qty": plain(qty),
            "side": order.side.capitalize(),
            "isLeverage": "0",
            "positionIdx": 0,
            "orderStatus": bybit_status(order),
            "createType": "CreateByUser",
            "cancelType": cancel_type,
            "rejectReason": order.reject_reason or "EC_NoError",
            "avgPrice": plain(quantize(order.average, market.tick_size)) if order.average else "",
            "leavesQty": plain(leaves),
            "leavesValue": plain(leaves * order.price) if order.price is not None else "0",
            "cumExecQty": plain(order.filled),
            "cumExecValue": plain(order.cost),
            "cumExecFee": plain(order.fee),
            "cumFeeDetail": {order.fee_asset: plain(order.fee)} if order.fee_asset else {},
            "timeInForce": order.time_in_force,
            "orderType": order.type.capitalize(),
            "stopOrderType": "",
            "orderIv": "",
            "marketUnit": ("quoteCoin" if quote_unit else "baseCoin")
            if order.type == "market"
            else "",
            "triggerPrice": "0",
            "takeProfit": "0",
            "stopLoss": "0",
            "tpslMode": "",
            "ocoTriggerBy": "",
            "tpLimitPrice": "",
            "slLimitPrice": "",
            "tpTriggerBy": "",
            "slTriggerBy": "",
            "triggerDirection": 0,
            "triggerBy": "",
            "lastPriceOnCreated": "",
            "reduceOnly": False,
            "closeOnTrigger": False,
            "placeType": "",
            "smpType": "None",
            "smpGroup": 0,
            "smpOrderId": "",
            "createdTime": str(order.created_ms),
            "updatedTime": str(order.updated_ms),
        }

    def _page(
        self, params: dict[str, str], rows: list[Any], default: int, most: int
    ) -> tuple[list[Any], str]:
        try:
            limit = min(max(int(params.get("limit", default)), 1), most)
            offset = int(params.get("cursor") or 0)
        except ValueError:
            raise BybitError(10001, "params error: limit or cursor invalid") from None
        page = rows[offset : offset + limit]
        return page, str(offset + limit) if offset + limit < len(rows) else ""

    def _account_orders(self, account: Account, params: dict[str, str]) -> list[Order]:
        """The account's orders, newest first, selected by the documented priority:
        orderId > orderLinkId > symbol."""
        order_id, link_id = params.get("orderId"), params.get("orderLinkId")
        market = self._spot_market(params, required=False)

        def selected(order: Order) -> bool:
            if order_id:
                return order.id == order_id
            if link_id:
                return order.client_order_id == link_id
            return market is None or order.symbol == market.symbol

        mine = (o for o in reversed(self.venue.orders) if o.api_key == account.api_key)
        return [o for o in mine if selected(o)]

    def _realtime(self, req: Request, account: Account | None) -> Reply:
        assert account is not None
        params = req.query
        self._trade_category(params)
        orders = self._account_orders(account, params)
        if params.get("orderId") or params.get("orderLinkId"):
            orders = orders[:500]
        elif params.get("openOnly", "0") == "0":
            orders = [o for o in orders if o.is_open]
        else:
            orders = [o for o in orders if not o.is_open][:500]
        page, cursor = self._page(params, orders, 20, 50)
        result = {
            "category": "spot",
            "list": [self._order_json(o) for o in page],
            "nextPageCursor": cursor,
        }
        return Reply(200, bybit_envelope(result))

    def _time_range(self, params: dict[str, str]) -> tuple[int, int]:
        try:
            end = int(params.get("endTime") or now_ms())
            start = int(params.get("startTime") or end - 7 * 86_400_000)
        except ValueError:
            raise BybitError(10001, "params error: startTime or endTime invalid") from None
        return start, end

    def _history(self, req: Request, account: Account | None) -> Reply:
        assert account is not None
        params = req.query
        self._trade_category(params)
        start, end = self._time_range(params)
        status = params.get("orderStatus")
        orders = [
            o
            for o in self._account_orders(account, params)
            if start <= o.created_ms <= end and status in (None, bybit_status(o))
        ]
        page, cursor = self._page(params, orders, 20, 50)
        result = {
            "category": "spot",
            "list": [self._order_json(o) for o in page],
            "nextPageCursor": cursor,
        }
        return Reply(200, bybit_envelope(result))

    def _cancel_order(self, req: Request, account: Account | None) -> Reply:
        assert account is not None
        params = req.query
        self._trade_category(params)
        if not account.may_trade:
            raise BybitError(10005, "Permission denied, please check your API key permissions.")
        market = self._spot_market(params)
        assert market is not None
        order_id, link_id = params.get("orderId"), params.get("orderLinkId")
        if not order_id and not link_id:
            raise BybitError(10001, "params error: orderId or orderLinkId is required")
        order = self.venue.find_order(account.api_key, market.symbol, order_id, link_id)
        if order is None or not order.is_open:
            raise BybitError(170213, "Order does not exist.")
        self.venue.cancel(order)
        return Reply(
            200, bybit_envelope({"orderId": order.id, "orderLinkId": order.client_order_id})
        )

    def _executions(self, req: Request, account: Account | None) -> Reply:
        assert account is not None
        params = req.query
        self._trade_category(params)
        start, end = self._time_range(params)
        rows = []
        for order in self._account_orders(account, params):
            market = self.venue.markets[order.symbol]
            for fill in reversed(order.fills):
                if not start <= fill.time_ms <= end:
                    continue
                rows.append(
                    {
                        "symbol": market.id,
                        "orderId": order.id,
                        "orderLinkId": order.client_order_id,
                        "side": order.side.capitalize(),
                        "orderPrice": plain(order.price) if order.price is not None else "0",
                        "orderQty": plain(order.quote_amount or order.amount),
                        "leavesQty": plain(fill.leaves_qty),
                        "createType": "CreateByUser",
                        "orderType": order.type.capitalize(),
                        "stopOrderType": "",
                        "execFee": plain(fill.fee),
                        "feeCurrency": fill.fee_asset,
                        "execId": str(fill.trade_id),
                        "execPrice": plain(fill.price),
                        "execQty": plain(fill.qty),
                        "execType": "Trade",
                        "execValue": plain(fill.price * fill.qty),
                        "execTime": str(fill.time_ms),
                        "isMaker": fill.maker,
                        "feeRate": plain(FEE_RATE),
                        "tradeIv": "",
                        "markIv": "",
                        "markPrice": "",
                        "indexPrice": "",
                        "underlyingPrice": "",
                        "blockTradeId": "",
                        "closedSize": "",
                        "seq": fill.trade_id,
                    }
                )
        page, cursor = self._page(params, rows, 50, 100)
        return Reply(
            200, bybit_envelope({"category": "spot", "list": page, "nextPageCursor": cursor})
        )


# --------------------------------------------------------------------------
# the emulator
# --------------------------------------------------------------------------
def exchange_for_path(path: str) -> ExchangeId | None:
    """The dialect of a path: Binance's ``/api``, ``/sapi``, ``/fapi``...; Bybit's ``/v5``."""
    if path.startswith("/v5/"):
        return "bybit"
    if path.split("/")[1] in ("api", "sapi", "fapi", "dapi", "eapi", "papi"):
        return "binance"
    return None


class ExchangeEmulator(ThreadedServer):
    """Binance spot and Bybit v5 spot on one loopback port (see the module docstring).

    Every public method is thread-safe: tests call them while the server
    answers ccxt from its own thread.
    """

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self._lock = threading.RLock()
        self._venues: dict[str, Venue] = {name: Venue(name) for name in EXCHANGES}
        self._binance = BinanceApi(self._venues["binance"])
        self._bybit = BybitApi(self._venues["bybit"])
        self._faults: list[Fault] = []
        self._calls: list[CallRecord] = []
        self._release_holds: asyncio.Event | None = None

    # -- markets, prices, candles ----------------------------------------------------
    def add_market(
        self,
        exchange: str,
        symbol: str,
        *,
        price: Decimal | float | str | None = None,
        tick_size: Decimal | float | str = "0.01",
        step_size: Decimal | float | str = "0.001",
        min_qty: Decimal | float | str | None = None,
        max_qty: Decimal | float | str = "9000000",
        min_notional: Decimal | float | str | None = None,
    ) -> Market:
        """Add (or replace) a market such as ``"PEPE/USDT"``; `min_qty` defaults to the step,
        `min_notional` to the exchange's (5 USDT on Binance, 1 USDT on Bybit)."""
        with self._lock:
            market = self._venue(exchange).add_market(
                symbol,
                to_decimal(tick_size),
                to_decimal(step_size),
                None if min_qty is None else to_decimal(min_qty),
                max_qty=to_decimal(max_qty),
                min_notional=None if min_notional is None else to_decimal(min_notional),
                price=None if price is None else to_decimal(price),
            )
            return replace(market)

    def add_synthetic_markets(self, exchange: str, n: int, quote: str = "USDT") -> list[str]:
        """Add `n` markets ``C001/USDT``, ``C002/USDT``... with deterministic prices and rules."""
        width = max(3, len(str(n)))
        symbols = []
        with self._lock:
            venue = self._venue(exchange)
            for i in range(1, n + 1):
                symbol = f"C{i:0{width}d}/{quote}"
                price = default_price(symbol)
                tick, step = rules_for_price(price)
                venue.add_market(symbol, tick, step, price=price)
                symbols.append(symbol)
        return symbols

    def markets(self, exchange: str) -> list[Market]:
        """The exchange's markets."""
        with self._lock:
            return [replace(m) for m in self._venue(exchange).markets.values()]

    def price(self, exchange: str, symbol: str) -> Decimal:
        """The current price of `symbol`."""
        with self._lock:
            return self._venue(exchange).price(symbol)

    def set_price(self, exchange: str, symbol: str, price: Decimal | float | str) -> None:
        """Move the price (rounded to the tick); resting limit orders it crosses fill at their
        own price as maker, oldest first, as far as the depth (`set_depth`) goes."""
        with self._lock:
            self._venue(exchange).set_price(symbol, to_decimal(price))

    def depth(self, exchange: str, symbol: str) -> Decimal | None:
        """The base quantity takers can still trade at the current price (None: unlimited)."""
        with self._lock:
            return self._venue(exchange).depth_of(symbol)

    def set_depth(
        self, exchange: str, symbol: str, qty: Decimal | float | int | str | None
    ) -> None:
        """Limit the base quantity available at the current price (None: unlimited, the default).

        Every execution consumes it, whether a taker's or that of a resting order the price
        reaches.  An order meeting less than its amount fills partly: a GTC limit order rests
        with the remainder, a market or IOC order expires with it, a FOK order fills nothing.
        Resting orders that cross the price are matched against the new depth at once, oldest
        first, at their own price as maker.
        """
        with self._lock:
            self._venue(exchange).set_depth(symbol, None if qty is None else to_decimal(qty))

    def add_depth(self, exchange: str, symbol: str, qty: Decimal | float | int | str) -> None:
        """Add `qty` to a limited depth, then match resting orders that cross the price (the
        remainder of partly filled ones included), oldest first, at their own price as maker.
        ValueError when the depth is unlimited."""
        with self._lock:
            self._venue(exchange).add_depth(symbol, to_decimal(qty))

    def set_candles(
        self,
        exchange: str,
        symbol: str,
        interval: str,
        rows: Iterable[Sequence[Decimal | float | int | str]],
    ) -> None:
        """Serve these ``[open_ms, open, high, low, close, volume]`` rows instead of the walk."""
        if interval not in INTERVAL_MS:
            raise ValueError(f"unknown interval {interval!r}; use one of {sorted(INTERVAL_MS)}")
        candles: list[Candle] = sorted(
            (int(t), to_decimal(o), to_decimal(h), to_decimal(low), to_decimal(c), to_decimal(v))
            for t, o, h, low, c, v in rows
        )
        with self._lock:
            venue = self._venue(exchange)
            if symbol not in venue.markets:
                raise KeyError(f"{exchange} has no market {symbol}")
            venue.candle_overrides[(symbol, interval)] = candles

    def set_history(
        self,
        exchange: str,
        symbol: str,
        *,
        listed_ms: int | None = None,
        holes: Iterable[tuple[int, int]] = (),
    ) -> None:
        """Shape the walk's history like a real market's: no candle opens before ``listed_ms``
        (the listing), and none inside each ``[start, end)`` of ``holes`` (ms, open times):
        the exchange leaves those out of its answers, as Binance leaves out missing minutes.
        """
        with self._lock:
            venue = self._venue(exchange)
            if symbol not in venue.markets:
                raise KeyError(f"{exchange} has no market {symbol}")
            if listed_ms is None:
                venue.listed.pop(symbol, None)
            else:
                venue.listed[symbol] = listed_ms
            venue.holes[symbol] = sorted((int(a), int(b)) for a, b in holes)

    # -- accounts and orders ---------------------------------------------------------
    def add_account(
        self,
        exchange: str,
        api_key: str,
        secret: str,
        balances: Mapping[str, Decimal | float | int | str] | None = None,
        can_withdraw: bool = False,
        can_trade: bool = True,
        read_only: bool = False,
        can_transfer: bool = False,
        withdraw_flag_missing: bool = False,
    ) -> None:
        """Create an API key with its secret, permissions and balances (default 10,000 USDT)."""
        with self._lock:
            self._venue(exchange).add_account(
                api_key,
                secret,
                {"USDT": 10_000} if balances is None else balances,
                can_withdraw=can_withdraw,
                can_trade=can_trade,
                read_only=read_only,
                can_transfer=can_transfer,
                withdraw_flag_missing=withdraw_flag_missing,
            )

    def set_balance(
        self, exchange: str, api_key: str, asset: str, free: Decimal | float | int | str
    ) -> None:
        """Set the free amount of an asset, as a deposit or a withdrawal would."""
        with self._lock:
            self._venue(exchange).accounts[api_key].balance(asset).free = to_decimal(free)

    def balances(self, exchange: str, api_key: str) -> dict[str, Balance]:
        """A copy of an account's balances."""
        with self._lock:
            account = self._venue(exchange).accounts[api_key]
            return {asset: replace(b) for asset, b in account.balances.items()}

    def orders(self, exchange: str, api_key: str | None = None) -> list[Order]:
        """Copies of the accepted orders, oldest first, optionally of one API key."""
        with self._lock:
            return [
                replace(o, fills=list(o.fills))
                for o in self._venue(exchange).orders
                if api_key is None or o.api_key == api_key
            ]

    # -- call log --------------------------------------------------------------------
    @property
    def calls(self) -> list[CallRecord]:
        """Every request received since the last `reset_calls`, oldest first."""
        with self._lock:
            return list(self._calls)

    def reset_calls(self) -> None:
        """Forget the call log."""
        with self._lock:
            self._calls.clear()

    # -- rate limits -----------------------------------------------------------------
    def set_rate_limit(self, exchange: str, **limits: Any) -> None:
        """Change limits (fields of `BinanceLimits` / `BybitLimits`) and reset the counters.

        For Bybit, ``uid_requests_per_second`` entries are merged into the current table.
        """
        with self._lock:
            api = self._api(exchange)
            if isinstance(api, BybitApi) and "uid_requests_per_second" in limits:
                limits["uid_requests_per_second"] = {
                    **api.limits.uid_requests_per_second,
                    **limits["uid_requests_per_second"],
                }
            api.limits = replace(api.limits, **limits)
            api.reset_limits()

    def reset_rate_limits(self, exchange: str | None = None) -> None:
        """Forget used weights, order counts and bans (limits stay as set)."""
        with self._lock:
            for name in [exchange] if exchange else list(EXCHANGES):
                self._api(name).reset_limits()

    # -- faults ----------------------------------------------------------------------
    def inject(
        self,
        exchange: str,
        fault: FaultKind,
        path_contains: str = "",
        times: int | None = 1,
        delay: float = 30.0,
    ) -> None:
        """Make the next `times` matching requests (None: all until `clear_faults`) fail.

        ``timeout``: the request is processed (an order IS placed and filled) and the
        answer held `delay` seconds.  ``http_500`` / ``http_503``: an error page, nothing
        processed.  ``rate_limit``: Binance's 429 ``-1003`` with Retry-After (a 418 ban
        follows if the client does not back off); Bybit's ``retCode`` 10006.
        ``malformed_json``: the request is processed and its JSON answer cut short.
        ``disconnect``: the connection is closed without an answer, nothing processed
        (aiohttp resends an idempotent request such as a GET once after a dropped
        connection, so use ``times=2`` to make one such call fail).
        """
        if exchange not in EXCHANGES:
            raise KeyError(f"unknown exchange {exchange!r}")
        if fault not in FAULT_KINDS:
            raise ValueError(f"unknown fault {fault!r}; use one of {FAULT_KINDS}")
        with self._lock:
            self._faults.append(Fault(exchange, fault, path_contains, times, delay))

    def clear_faults(self) -> None:
        """Remove every pending fault."""
        with self._lock:
            self._faults.clear()

    # -- reachability ----------------------------------------------------------------
    def stop_serving(self) -> None:
        """Close the listening socket and every open connection: the exchange is unreachable."""
        self.call(self._stop_serving)

    def resume_serving(self) -> None:
        """Listen again on the same port, state intact."""
        self.call(self._resume_serving)

    def stop(self) -> None:
        """Stop the server thread (held ``timeout`` answers are released first)."""
        if self._loop is not None and self._release_holds is not None:
            self._loop.call_soon_threadsafe(self._release_holds.set)
        super().stop()

    # -- server ------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        """One catch-all route: the dialect is chosen from the path."""
        self._release_holds = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/_emulator/{action:.*}", self._control)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _stop_serving(self) -> None:
        assert self._runner is not None
        for site in list(self._runner.sites):
            await site.stop()
        server = self._runner.server
        if server is not None:
            for connection in server.connections:
                connection.force_close()

    async def _resume_serving(self) -> None:
        assert self._runner is not None
        if not self._runner.sites:
            await web.TCPSite(self._runner, self.host, self.port).start()

    def _venue(self, exchange: str) -> Venue:
        try:
            return self._venues[exchange]
        except KeyError:
            raise KeyError(f"unknown exchange {exchange!r}; use one of {EXCHANGES}") from None

    def _api(self, exchange: str) -> BinanceApi | BybitApi:
        self._venue(exchange)
        return self._binance if exchange == "binance" else self._bybit

    def _take_fault(self, exchange: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.exchange == exchange and fault.path_contains in path:
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        req = Request(
            method=request.method,
            path=request.path,
            raw_query=request.rel_url.raw_query_string,
            query=dict(request.query),
            body=await request.text(),
            headers=request.headers,
            ip=request.remote or "127.0.0.1",
        )
        exchange = exchange_for_path(req.path)
        with self._lock:
            if exchange is None:
                record = CallRecord("", req.method, req.path, None, time.time(), False)
                self._calls.append(record)
                reply = not_found(req)
                record.status = reply.status
                return reply.render()
            api = self._api(exchange)
            api_key = req.headers.get("X-MBX-APIKEY") or req.headers.get("X-BAPI-API-KEY")
            record = CallRecord(
                exchange, req.method, req.path, api_key, time.time(), api.is_private(req)
            )
            self._calls.append(record)
            # Matched with the query too: a fault can target one market's klines.
            fault = self._take_fault(exchange, f"{req.path}?{req.raw_query}")
            kind = fault.kind if fault else None
            if kind == "disconnect":
                if request.transport is not None:
                    request.transport.close()
                return web.Response(status=500)
            if kind in ("http_500", "http_503"):
                reply = _error_page(500 if kind == "http_500" else 503)
            elif kind == "rate_limit" and exchange == "binance":
                bucket = "sapi" if req.path.startswith("/sapi/") else "api"
                reply = self._binance.too_many_requests(req.ip, bucket)
            elif kind == "rate_limit":
                reply = self._bybit.too_many_visits(req.path, now_ms() + 1000)
            else:
                reply = api.handle(req)
            record.status = reply.status
        response = reply.render()
        if kind == "malformed_json" and response.text:
            response.text = response.text[: max(1, len(response.text) // 2)]
        if kind == "timeout" and fault is not None and self._release_holds is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release_holds.wait(), fault.delay)
        return response

    async def _control(self, request: web.Request) -> web.Response:
        """``/_emulator/...``: drive a standalone emulator from another process."""
        action = request.match_info["action"]
        data: dict[str, Any] = await request.json() if request.can_read_body else {}
        query = request.query
        try:
            if action == "accounts" and request.method == "POST":
                self.add_account(
                    data["exchange"],
                    data["api_key"],
                    data["secret"],
                    data.get("balances"),
                    data.get("can_withdraw", False),
                    data.get("can_trade", True),
                    data.get("read_only", False),
                    data.get("can_transfer", False),
                    data.get("withdraw_flag_missing", False),
                )
                return web.json_response({"ok": True})
            if action == "prices" and request.method == "POST":
                self.set_price(data["exchange"], data["symbol"], str(data["price"]))
                return web.json_response({"ok": True})
            if action == "depth" and request.method == "POST":
                qty = data["qty"]
                self.set_depth(data["exchange"], data["symbol"], None if qty is None else str(qty))
                return web.json_response({"ok": True})
            if action == "depth/add" and request.method == "POST":
                self.add_depth(data["exchange"], data["symbol"], str(data["qty"]))
                return web.json_response({"ok": True})
            if action == "depth" and request.method == "GET":
                depth = self.depth(query["exchange"], query["symbol"])
                return web.json_response({"qty": None if depth is None else plain(depth)})
            if action == "markets/synthetic" and request.method == "POST":
                return web.json_response(
                    {"symbols": self.add_synthetic_markets(data["exchange"], int(data["n"]))}
                )
            if action == "faults" and request.method == "POST":
                self.inject(
                    data["exchange"],
                    data["fault"],
                    data.get("path_contains", ""),
                    data.get("times", 1),
                    float(data.get("delay", 30.0)),
                )
                return web.json_response({"ok": True})
            if action == "faults" and request.method == "DELETE":
                self.clear_faults()
                return web.json_response({"ok": True})
            if action == "calls" and request.method == "GET":
                return web.json_response([_call_json(c) for c in self.calls])
            if action == "calls" and request.method == "DELETE":
                self.reset_calls()
                return web.json_response({"ok": True})
            if action == "orders" and request.method == "GET":
                orders = self.orders(query["exchange"], query.get("api_key"))
                return web.json_response([_order_summary(o) for o in orders])
        except (KeyError, ValueError, TypeError, InvalidOperation) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(
            {"error": f"no control action {request.method} {action}"}, status=404
        )


def _error_page(status: int) -> Reply:
    title = "500 Internal Server Error" if status == 500 else "503 Service Unavailable"
    return Reply(
        status, f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
    )


def _call_json(call: CallRecord) -> dict[str, Any]:
    return {f.name: getattr(call, f.name) for f in fields(call)}


def _order_summary(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "client_order_id": order.client_order_id,
        "api_key": order.api_key,
        "symbol": order.symbol,
        "side": order.side,
        "type": order.type,
        "price": plain(order.price),
        "amount": plain(order.amount),
        "filled": plain(order.filled),
        "remaining": plain(order.remaining),
        "cost": plain(order.cost),
        "fee": plain(order.fee),
        "fee_asset": order.fee_asset,
        "status": order.status,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m tests.emulators.exchange --port 9001``: serve until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=9001, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="EXCHANGE:KEY:SECRET",
        help="an account with 10,000 USDT (repeatable)",
    )
    parser.add_argument(
        "--synthetic-markets",
        type=int,
        default=0,
        metavar="N",
        help="add N markets C001/USDT... to both",
    )
    args = parser.parse_args(argv)
    emulator = ExchangeEmulator(args.port)
    for spec in args.account:
        exchange, key, secret = spec.split(":", 2)
        emulator.add_account(exchange, key, secret)
    for exchange in EXCHANGES:
        emulator.add_synthetic_markets(exchange, args.synthetic_markets)
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    with emulator:
        print(f"exchange emulator listening on {emulator.base_url}", flush=True)
        done.wait()


if __name__ == "__main__":
    main()
