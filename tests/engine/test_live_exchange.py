"""Live trading through the real ccxt classes against the local exchange emulator."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import func, insert, select

from db.credential_secrets import CredentialSecrets
from db.models import (
    Bot,
    BotMode,
    BotStatus,
    Notification,
    Order,
    OrderStatus,
    PaperBalance,
    Position,
)
from engine.exchanges.clients import ClientPool
from engine.exchanges.errors import ExchangeAuthError, KeyAllowsWithdrawals
from engine.exchanges.key_check import check_key
from engine.live_orders import LiveContext, reconcile, settle_order
from engine.market_data.cache import MemoryCandleCache, RedisCandleCache
from engine.market_data.feed import MarketDataFeed
from engine.tick import run_tick
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.use_cases.bots import set_mode
from robotrader.use_cases.exchanges import connect_exchange
from tests.emulators.exchange import ExchangeEmulator
from tests.engine.conftest import make_user, running_bot
from tests.services import REDIS_URL

_keys = itertools.count()


def fake_key(exchange: ExchangeEmulator, name: str, **account: object) -> CredentialSecrets:
    n = next(_keys)
    key, secret = f"FAKEKEY{name}{n:04d}live", f"FAKESECRET{name}{n:04d}live"
    for venue in ("binance", "bybit"):
        exchange.add_account(venue, key, secret, **account)  # type: ignore[arg-type]
    return CredentialSecrets(SecretStr(key), SecretStr(secret))


def calm_market(exchange: ExchangeEmulator, venue: str, symbol: str = "BTC/USDT") -> None:
    """Candles that stay at the current price, so the fill price is the decision's price."""
    price = float(exchange.price(venue, symbol))
    start = (int(time.time() * 1000) // 60_000 - 200) * 60_000
    rows = [[start + i * 60_000, price, price, price, price, 1.0] for i in range(260)]
    exchange.set_candles(venue, symbol, "1m", rows)


def feed_of(app: App) -> MarketDataFeed:
    return MarketDataFeed(app.pool, MemoryCandleCache(), mode="exchange")


async def _live_bot(
    app: App, exchange: ExchangeEmulator, venue: str = "binance", **account: object
) -> tuple[int, int, CredentialSecrets]:
    user = await make_user(app, name=f"live{next(_keys)}")
    secrets = fake_key(exchange, "T", **account)
    await connect_exchange(app, user, venue, secrets)
    bot_id = await running_bot(app, user, exchange=venue)
    await set_mode(app, user, bot_id, BotMode.LIVE, confirmed=True)
    return user, bot_id, secrets


async def _kinds(app: App, user: int) -> list[str]:
    async with app.database.sessions() as session:
        return list(
            await session.scalars(
                select(Notification.kind)
                .where(Notification.user_id == user)
                .order_by(Notification.id)
            )
        )


@pytest.mark.parametrize("venue", ["binance", "bybit"])
async def test_key_check_reads_permissions_and_refuses_withdrawals(
    live_app: App, exchange_emulator: ExchangeEmulator, venue: str
) -> None:
    good = fake_key(exchange_emulator, "good")
    permissions = await check_key(live_app.pool, venue, good)
    assert permissions.can_trade is True and permissions.can_withdraw is False

    risky = fake_key(exchange_emulator, "risky", can_withdraw=True)
    with pytest.raises(KeyAllowsWithdrawals):
        await check_key(live_app.pool, venue, risky)

    wrong = CredentialSecrets(good.api_key, SecretStr("FAKESECRET-wrong-one"))
    with pytest.raises(ExchangeAuthError):
        await check_key(live_app.pool, venue, wrong)


async def test_connect_refuses_a_withdrawal_key_with_help(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    user = await make_user(live_app)
    with pytest.raises(UserError) as caught:
        await connect_exchange(
            live_app, user, "binance", fake_key(exchange_emulator, "w", can_withdraw=True)
        )
    assert caught.value.key == "key_allows_withdrawals"
    assert "help_url" in caught.value.args_


@pytest.mark.parametrize("venue", ["binance", "bybit"])
async def test_live_bot_places_one_order_per_decision(
    live_app: App, exchange_emulator: ExchangeEmulator, venue: str
) -> None:
    user, bot_id, secrets = await _live_bot(live_app, exchange_emulator, venue)
    calm_market(exchange_emulator, venue)
    feed = feed_of(live_app)
    now = int(time.time() * 1000)
    report = await run_tick(live_app.database, feed, now_ms=now)
    assert len(report.live_orders) == 1
    ctx = LiveContext(live_app.database, live_app.pool, live_app.vault)
    assert await settle_order(ctx, report.live_orders[0]) == "filled"
    # Ticked again for the same moment, and the placement retried: nothing new.
    again = await run_tick(live_app.database, feed, now_ms=now)
    assert again.live_orders == []
    assert await settle_order(ctx, report.live_orders[0]) == "skipped"

    placed = exchange_emulator.orders(venue, secrets.api_key.get_secret_value())
    assert len(placed) == 1
    async with live_app.database.sessions() as session:
        order = await session.get(Order, report.live_orders[0])
        position = await session.scalar(select(Position).where(Position.bot_id == bot_id))
    assert order is not None and order.status == OrderStatus.FILLED
    assert order.exchange_order_id == placed[0].id
    assert placed[0].client_order_id == order.client_order_id
    assert position is not None and position.amount > 0
    assert "trade_opened" in await _kinds(live_app, user)


async def test_order_filled_while_the_request_timed_out_is_booked_once(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    _, _, secrets = await _live_bot(live_app, exchange_emulator)
    report = await run_tick(live_app.database, feed_of(live_app), now_ms=int(time.time() * 1000))
    exchange_emulator.inject("binance", "timeout", path_contains="/api/v3/order", times=1, delay=5)
    ctx = LiveContext(live_app.database, live_app.pool, live_app.vault)
    outcome = await settle_order(ctx, report.live_orders[0])
    assert outcome in ("filled", "unknown")
    await reconcile(ctx)  # on restart, or the next reconciliation round
    placed = exchange_emulator.orders("binance", secrets.api_key.get_secret_value())
    assert len(placed) == 1, "a blind retry would have doubled the order"
    async with live_app.database.sessions() as session:
        order = await session.get(Order, report.live_orders[0])
    assert order is not None and order.status == OrderStatus.FILLED


async def test_insufficient_funds_rejects_the_order_and_the_bot_carries_on(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    user, bot_id, _ = await _live_bot(live_app, exchange_emulator, balances={"USDT": 5})
    report = await run_tick(live_app.database, feed_of(live_app), now_ms=int(time.time() * 1000))
    ctx = LiveContext(live_app.database, live_app.pool, live_app.vault)
    assert await settle_order(ctx, report.live_orders[0]) == "rejected"
    async with live_app.database.sessions() as session:
        bot = await session.get(Bot, bot_id)
    assert bot is not None and bot.status == BotStatus.RUNNING
    assert "order_rejected" in await _kinds(live_app, user)


async def test_refused_key_pauses_the_bot(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    user, bot_id, secrets = await _live_bot(live_app, exchange_emulator)
    exchange_emulator.add_account(
        "binance", secrets.api_key.get_secret_value(), "FAKESECRET-rotated-by-user"
    )
    report = await run_tick(live_app.database, feed_of(live_app), now_ms=int(time.time() * 1000))
    ctx = LiveContext(live_app.database, live_app.pool, live_app.vault)
    assert await settle_order(ctx, report.live_orders[0]) == "rejected"
    async with live_app.database.sessions() as session:
        bot = await session.get(Bot, bot_id)
    assert (
        bot is not None and bot.status == BotStatus.PAUSED and bot.pause_reason == "exchange_auth"
    )
    assert "bot_paused" in await _kinds(live_app, user)


async def test_market_data_calls_equal_markets_not_bots(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    user = await make_user(live_app)
    symbols = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    for i in range(30):
        await running_bot(
            live_app, user, strategy="sma_crossover", name=f"b{i}", symbols=[symbols[i % 3]]
        )
    await live_app.pool.markets("binance")
    exchange_emulator.reset_calls()
    report = await run_tick(live_app.database, feed_of(live_app), now_ms=int(time.time() * 1000))
    klines = [c for c in exchange_emulator.calls if c.exchange == "binance" and "klines" in c.path]
    assert report.bots == 30
    assert report.exchange_calls == len(klines) == 3
    assert all(c.api_key is None for c in klines), "market data is fetched without keys"


async def test_shards_on_two_workers_share_one_fetch_per_market_through_redis(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    """Two workers (two feeds, two client pools) tick the two shards of the same markets."""
    users = [await make_user(live_app, f"shard{i}") for i in range(2)]  # one in each shard
    symbols = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    for i in range(12):
        await running_bot(
            live_app, users[i % 2], strategy="rsi", name=f"r{i}", symbols=[symbols[i % 3]]
        )
    for symbol in symbols:  # a full window each (earlier tests may have left short ones)
        calm_market(exchange_emulator, "binance", symbol)
    other_pool = ClientPool(live_app.pool.api_urls, timeout_ms=3_000)
    prefix = f"rt-test-candles-{uuid.uuid4().hex[:8]}:"
    caches = [RedisCandleCache(REDIS_URL, prefix), RedisCandleCache(REDIS_URL, prefix)]
    feeds = [
        MarketDataFeed(pool, cache, mode="exchange")
        for pool, cache in zip((live_app.pool, other_pool), caches, strict=True)
    ]
    now = int(time.time() * 1000)
    try:
        exchange_emulator.reset_calls()
        first = await run_tick(live_app.database, feeds[0], shard=0, shards=2, now_ms=now)
        second = await run_tick(live_app.database, feeds[1], shard=1, shards=2, now_ms=now)
    finally:
        for cache in caches:
            await cache.close()
        await other_pool.close()
    klines = [c for c in exchange_emulator.calls if "klines" in c.path]
    assert first.bots + second.bots == 12 and first.markets == second.markets == 3
    assert (first.exchange_calls, second.exchange_calls) == (3, 0)
    assert len(klines) == 3


async def test_two_runs_of_one_tick_at_once_record_each_decision_once(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    """A beat that fired twice, or a task redelivered while the first still runs.

    The paper decisions lock their owners' balances and positions before looking for
    decisions already taken, so the second run waits for the first and finds them.
    """
    live = [(await _live_bot(live_app, exchange_emulator))[1] for _ in range(4)]
    paper_users = [await make_user(live_app, f"paper{next(_keys)}") for _ in range(4)]
    paper = [await running_bot(live_app, user, exchange="binance") for user in paper_users]
    calm_market(exchange_emulator, "binance")
    feed = feed_of(live_app)
    now = int(time.time() * 1000)

    first, second = await asyncio.gather(
        run_tick(live_app.database, feed, now_ms=now), run_tick(live_app.database, feed, now_ms=now)
    )

    assert first.decisions == second.decisions == len(live) + len(paper)
    assert sorted(first.live_orders + second.live_orders) == sorted(
        await _ids(live_app, Order.id, Order.mode == BotMode.LIVE)
    )
    assert first.orders_filled + second.orders_filled == len(paper)
    assert await _orders_per_bot(live_app) == dict.fromkeys(live + paper, 1)
    async with live_app.database.sessions() as session:
        usdt = await session.scalars(
            select(PaperBalance.amount).where(
                PaperBalance.user_id.in_(paper_users), PaperBalance.asset == "USDT"
            )
        )
        spent = [Decimal(10_000) - amount for amount in usdt]
    assert len(spent) == len(paper_users)
    assert all(Decimal(200) <= s <= Decimal("200.3") for s in spent), spent  # one base order
    positions = await _ids(live_app, Position.bot_id, Position.bot_id.in_(paper))
    assert sorted(positions) == sorted(paper)


async def test_a_run_that_loses_the_race_for_live_orders_writes_again(
    live_app: App, exchange_emulator: ExchangeEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Live decisions have no row to lock: the unique client order id settles a race.

    Made deterministic: another transaction holds, uncommitted, the very order this
    tick decides, so the tick's lookup cannot see it and its insert waits on the
    unique index; once the other commits, the insert fails, the tick writes again
    and finds the decision taken.
    """
    if live_app.database.is_sqlite:
        pytest.skip("SQLite admits one writer at a time: two writes cannot interleave")
    _, bot_id, _ = await _live_bot(live_app, exchange_emulator)
    calm_market(exchange_emulator, "binance")
    feed = feed_of(live_app)
    now = int(time.time() * 1000)
    assert len((await run_tick(live_app.database, feed, now_ms=now)).live_orders) == 1
    async with live_app.database.transaction() as session:
        order = await session.scalar(select(Order).where(Order.bot_id == bot_id))
        assert order is not None
        values = {c.key: getattr(order, c.key) for c in Order.__table__.columns}
        await session.delete(order)
    caplog.set_level("INFO", logger="engine.tick")

    async with live_app.database.sessions() as other, other.begin():
        await other.execute(insert(Order).values(values))  # the other run's order, uncommitted
        tick = asyncio.create_task(run_tick(live_app.database, feed, now_ms=now))
        await asyncio.sleep(1)  # the tick has looked the decision up and waits to insert
        assert not tick.done()
    report = await tick

    assert report.live_orders == []
    assert await _orders_per_bot(live_app) == {bot_id: 1}
    assert "tick.write_raced" in caplog.text


async def test_a_blip_in_market_data_does_not_pause_a_live_bot(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    """The exchange answers 503 once: the live bot waits a tick, then trades as usual."""
    user, bot_id, _ = await _live_bot(live_app, exchange_emulator)
    calm_market(exchange_emulator, "binance")
    # Retry the exchange on the next tick (the product waits a minute between tries).
    feed = MarketDataFeed(
        live_app.pool, MemoryCandleCache(), mode="exchange", offline_backoff_seconds=0
    )
    now = int(time.time() * 1000)
    exchange_emulator.inject("binance", "http_503", path_contains="/klines", times=None)

    blip = await run_tick(live_app.database, feed, now_ms=now)
    assert (blip.waiting_for_data, blip.paused, blip.live_orders) == (1, 0, [])

    exchange_emulator.clear_faults()
    back = await run_tick(live_app.database, feed, now_ms=now + 60_000)  # the next candle
    assert (back.waiting_for_data, back.paused, len(back.live_orders)) == (0, 0, 1)
    async with live_app.database.sessions() as session:
        bot = await session.get(Bot, bot_id)
    assert bot is not None and bot.status == BotStatus.RUNNING
    assert "bot_paused" not in await _kinds(live_app, user)


async def _ids(app: App, column: Any, *where: Any) -> list[int]:
    async with app.database.sessions() as session:
        return list(await session.scalars(select(column).where(*where)))


async def _orders_per_bot(app: App) -> dict[int, int]:
    async with app.database.sessions() as session:
        rows = await session.execute(select(Order.bot_id, func.count()).group_by(Order.bot_id))
        return {bot_id: count for bot_id, count in rows}
