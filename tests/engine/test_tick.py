"""The tick on real databases: paper fills, idempotence, shared computation, fall-backs, risk."""

from __future__ import annotations

import gc
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, func, select, update

from bots.core.notifications import render_notification
from db.models import (
    Bot,
    BotMode,
    BotSignal,
    BotStatus,
    Fill,
    Notification,
    NotificationDelivery,
    Order,
    OrderStatus,
    PaperBalance,
    Position,
    Trade,
)
from engine.computed_signals import ComputedSignals
from engine.market_data.cache import MemoryCandleCache
from engine.market_data.feed import MarketDataFeed
from engine.tick import LIVE_DATA_GRACE, run_tick
from robotrader.app import App
from robotrader.use_cases.bot_settings import BotSettings
from robotrader.use_cases.bots import start_bot, stop_bot
from robotrader.use_cases.signals import SignalAlert, receive_signal
from tests.engine.conftest import make_user, offline_feed, running_bot

NOW = 1_764_000_000_000  # a fixed moment: replay candles are deterministic for it
MINUTE = 60_000
LIVE_DATA_GRACE_MS = int(LIVE_DATA_GRACE.total_seconds() * 1000)


def replay_feed(app: App) -> MarketDataFeed:
    return MarketDataFeed(app.pool, MemoryCandleCache(), mode="replay")


async def _count(app: App, model: type, *where: object) -> int:
    async with app.database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def _kinds(app: App) -> list[str]:
    async with app.database.sessions() as session:
        return list(await session.scalars(select(Notification.kind).order_by(Notification.id)))


async def test_paper_dca_bot_buys_once_and_is_notified(app: App) -> None:
    user = await make_user(app)
    bot_id = await running_bot(app, user, strategy="dca", capital="1000")
    feed = replay_feed(app)

    report = await run_tick(app.database, feed, now_ms=NOW)
    assert (report.bots, report.decisions, report.orders_filled) == (1, 1, 1)

    async with app.database.sessions() as session:
        order = await session.scalar(select(Order).where(Order.bot_id == bot_id))
        position = await session.scalar(select(Position).where(Position.bot_id == bot_id))
        usdt = await session.get(PaperBalance, (user, "USDT"))
    assert order is not None and order.status == OrderStatus.FILLED and order.reason == "base"
    assert position is not None and position.amount == order.filled
    # base order = 20 % of 1000 USDT (amount rounded down), paid with 0.05 % slippage + 0.1 % fee
    spent = Decimal(10_000) - usdt.amount  # type: ignore[union-attr]
    assert Decimal("200") <= spent <= Decimal(200) * Decimal("1.0005") * Decimal("1.001")
    # Replay data is announced once, before the first trade made on it.
    assert await _kinds(app) == ["data_fallback", "trade_opened"]

    # The same moment ticked again (a retried or duplicated tick) places nothing more.
    again = await run_tick(app.database, feed, now_ms=NOW)
    assert again.orders_filled == 0
    assert await _count(app, Order) == 1


async def test_one_computation_per_market_and_parameters(app: App) -> None:
    user = await make_user(app)
    for i in range(6):
        await running_bot(app, user, strategy="sma_crossover", name=f"same-{i}")
    await running_bot(app, user, strategy="sma_crossover", name="other", parameters={"fast": 5})
    await running_bot(app, user, strategy="sma_crossover", name="eth", symbols=["ETH/USDT"])
    report = await run_tick(app.database, replay_feed(app), now_ms=NOW)
    assert report.bots == 8
    assert report.markets == 2
    assert report.computations == 3  # BTC default, BTC fast=5, ETH default


async def test_sharded_ticks_cover_every_bot_once(app: App) -> None:
    users = [await make_user(app, f"s{i}") for i in range(3)]
    for i in range(7):
        await running_bot(app, users[i % 3], name=f"b{i}")
    feed = replay_feed(app)
    reports = [await run_tick(app.database, feed, shard=s, shards=3, now_ms=NOW) for s in range(3)]
    assert sum(r.bots for r in reports) == 7
    assert sum(1 for r in reports if r.bots) > 1
    assert await _count(app, Order) == 7


async def test_a_process_computes_each_signal_once_for_all_the_shards_it_runs(app: App) -> None:
    """Shards of one candle share the candles: the first computes, the others read."""
    users = [await make_user(app, f"c{i}") for i in range(2)]  # one in each of two shards
    for i in range(6):
        await running_bot(app, users[i % 2], strategy="sma_crossover", name=f"sma-{i}")
    feed, computed = replay_feed(app), ComputedSignals()
    first, second = [
        await run_tick(app.database, feed, shard=s, shards=2, now_ms=NOW, computed=computed)
        for s in range(2)
    ]
    assert (first.bots, second.bots) == (3, 3)
    assert (first.computations, second.computations) == (1, 0)
    # The next candle is computed again, once.
    later = [
        await run_tick(
            app.database, feed, shard=s, shards=2, now_ms=NOW + 60_000, computed=computed
        )
        for s in range(2)
    ]
    assert [r.computations for r in later] == [1, 0]


async def test_paper_bot_falls_back_to_replay_and_says_so_once(app: App) -> None:
    user = await make_user(app)
    bot_id = await running_bot(app, user)
    feed = offline_feed(app)
    await run_tick(app.database, feed, now_ms=NOW)
    await run_tick(app.database, feed, now_ms=NOW + MINUTE)
    async with app.database.sessions() as session:
        bot = await session.get(Bot, bot_id)
    assert bot is not None and bot.market_data_source == "replay"
    assert bot.status == BotStatus.RUNNING
    assert (await _kinds(app)).count("data_fallback") == 1


async def test_live_bot_never_falls_back_it_pauses(app: App) -> None:
    """No exchange data: a live bot waits (never replay), and is paused once it lasts."""
    user = await make_user(app)
    bot_id = await running_bot(app, user)
    async with app.database.transaction() as session:
        bot = await session.get(Bot, bot_id)
        assert bot is not None
        bot.mode = BotMode.LIVE  # as if switched with a key (the key is not needed to pause)
    feed = offline_feed(app)
    for moment in (NOW, NOW + LIVE_DATA_GRACE_MS - 1):
        report = await run_tick(app.database, feed, now_ms=moment)
        assert (report.paused, report.waiting_for_data, report.decisions) == (0, 1, 0)
        assert await _kinds(app) == []  # a blip is not worth waking anybody up
    report = await run_tick(app.database, feed, now_ms=NOW + LIVE_DATA_GRACE_MS)
    assert report.paused == 1 and report.decisions == 0
    async with app.database.sessions() as session:
        bot = await session.get(Bot, bot_id)
    assert bot is not None and bot.status == BotStatus.PAUSED
    assert bot.pause_reason == "market_data_unavailable"
    assert await _count(app, Order) == 0
    assert await _kinds(app) == ["bot_paused"]


async def test_live_bot_in_replay_mode_pauses_at_once(app: App) -> None:
    user = await make_user(app)
    bot_id = await running_bot(app, user)
    async with app.database.transaction() as session:
        bot = await session.get(Bot, bot_id)
        assert bot is not None
        bot.mode = BotMode.LIVE
    report = await run_tick(app.database, replay_feed(app), now_ms=NOW)
    assert report.paused == 1
    assert await _kinds(app) == ["bot_paused"]


async def test_stop_loss_sells_the_position(app: App) -> None:
    user = await make_user(app)
    bot_id = await running_bot(app, user, settings=BotSettings(stop_loss_pct=Decimal(1)))
    feed = replay_feed(app)
    await run_tick(app.database, feed, now_ms=NOW)
    # Pretend the entry was far above the market: the stop loss must fire next tick.
    async with app.database.transaction() as session:
        position = await session.scalar(select(Position).where(Position.bot_id == bot_id))
        assert position is not None
        position.average_entry *= 2
        position.cost *= 2
    await run_tick(app.database, feed, now_ms=NOW + MINUTE)
    async with app.database.sessions() as session:
        trade = await session.scalar(select(Trade).where(Trade.bot_id == bot_id))
    assert trade is not None and trade.exit_reason == "stop_loss" and trade.pnl < 0
    assert await _count(app, Position, Position.bot_id == bot_id) == 0
    assert (await _kinds(app))[-1] == "trade_closed"


async def test_daily_loss_limit_pauses_the_bot(app: App) -> None:
    user = await make_user(app)
    bot_id = await running_bot(app, user, daily_loss_limit_pct="5")
    feed = replay_feed(app)
    await run_tick(app.database, feed, now_ms=NOW)
    async with app.database.transaction() as session:
        position = await session.scalar(select(Position).where(Position.bot_id == bot_id))
        assert position is not None
        position.cost += Decimal(100)  # 10 % of the 1,000 USDT capital under water
    report = await run_tick(app.database, feed, now_ms=NOW + MINUTE)
    assert report.paused == 1
    async with app.database.sessions() as session:
        bot = await session.get(Bot, bot_id)
    assert bot is not None and bot.pause_reason == "daily_loss_limit"


async def test_many_paper_fills_are_written_together_not_one_round_trip_each(app: App) -> None:
    """A tick's paper fills read balances, positions and recipients once and flush once.

    On PostgreSQL the whole tick is a fixed number of statements however many bots
    fill (each fill cost a dozen when every order read and flushed its own rows);
    SQLite's driver inserts rows that return their ids one by one.
    """
    users = [await make_user(app, f"trader{n}") for n in range(30)]
    bots = [await running_bot(app, user, strategy="dca", capital="1000") for user in users]
    feed = replay_feed(app)
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(app.database.engine.sync_engine, "before_cursor_execute", count)
    try:
        report = await run_tick(app.database, feed, now_ms=NOW)
    finally:
        event.remove(app.database.engine.sync_engine, "before_cursor_execute", count)

    assert report.orders_filled == len(bots) == 30
    def of(verb: str) -> list[str]:
        return [s for s in statements if s.lstrip().upper().startswith(verb)]

    # Reads and updates do not grow with the fills: they happen once per tick.
    assert len(of("SELECT")) <= 13, "\n".join(of("SELECT"))
    assert len(of("UPDATE")) <= 5, "\n".join(of("UPDATE"))
    if not app.database.is_sqlite:
        assert len(statements) <= 30, "\n".join(statements)
    async with app.database.sessions() as session:
        balances = await session.execute(
            select(PaperBalance.user_id, PaperBalance.amount).where(PaperBalance.asset == "USDT")
        )
        usdt = {user_id: amount for user_id, amount in balances}
        positions = (await session.scalars(select(Position))).all()
        notified = await session.scalar(
            select(func.count()).select_from(NotificationDelivery).join(Notification)
            .where(Notification.kind == "trade_opened")
        )  # fmt: skip
    assert sorted(usdt) == sorted(users)
    assert all(Decimal(9_799) < amount < Decimal(9_800) for amount in usdt.values())
    assert sorted(p.bot_id for p in positions) == sorted(bots)
    assert notified == 30  # each owner, on the one platform they use


async def test_a_ticks_orders_are_stored_whole_filled_or_rejected(app: App) -> None:
    """The tick inserts its orders as rows: the model's defaults, ids its fills point at."""
    rich, poor = await make_user(app, "rich"), await make_user(app, "poor")
    async with app.database.transaction() as session:
        session.add(PaperBalance(user_id=poor, asset="USDT", amount=Decimal("1")))
    filled_bot = await running_bot(app, rich, strategy="dca", name="filled")
    refused_bot = await running_bot(app, poor, strategy="dca", name="refused")

    report = await run_tick(app.database, replay_feed(app), now_ms=NOW)

    assert (report.orders_filled, report.orders_rejected) == (1, 1)
    async with app.database.sessions() as session:
        orders = {o.bot_id: o for o in await session.scalars(select(Order))}
        fills = (await session.scalars(select(Fill))).all()
    filled, refused = orders[filled_bot], orders[refused_bot]
    assert filled.status == OrderStatus.FILLED and filled.filled > 0 and filled.fee > 0
    assert [f.order_id for f in fills] == [filled.id]
    assert refused.status == OrderStatus.REJECTED
    assert refused.error is not None and refused.error.startswith("below_minimum")
    assert (refused.filled, refused.fee, refused.submit_attempts) == (0, 0, 0)
    assert refused.created_at is not None and refused.exchange_order_id is None


async def test_garbage_collection_resumes_after_a_tick_even_a_failed_one(app: App) -> None:
    """A tick pauses automatic collection while it runs (see `run_tick`), never for longer."""
    user = await make_user(app)
    await running_bot(app, user)
    seen: list[bool] = []

    class Probe(MarketDataFeed):
        async def fetch(self, *args: Any, **kwargs: Any) -> Any:
            seen.append(gc.isenabled())
            if len(seen) == 2:
                raise RuntimeError("the exchange client blew up")
            return await super().fetch(*args, **kwargs)

    feed = Probe(app.pool, MemoryCandleCache(), mode="replay")
    await run_tick(app.database, feed, now_ms=NOW)
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        await run_tick(app.database, feed, now_ms=NOW + MINUTE)
    assert gc.isenabled()
    assert seen == [False, False]


async def _signal_bot(app: App) -> tuple[int, int, str]:
    user = await make_user(app)
    bot_id = await running_bot(app, user, strategy="signal")
    async with app.database.sessions() as session:
        secret = await session.scalar(select(Bot.signal_secret).where(Bot.id == bot_id))
    assert secret
    return user, bot_id, secret


async def test_an_alert_that_waited_too_long_is_dropped_and_its_owner_told(app: App) -> None:
    """The engine was down for a while: a 'buy' from five minutes ago must not buy now."""
    _, bot_id, secret = await _signal_bot(app)
    late = await receive_signal(app, secret, SignalAlert("buy"))
    async with app.database.transaction() as session:
        await session.execute(
            update(BotSignal)
            .where(BotSignal.id == late.signal_id)
            .values(received_at=late.received_at - timedelta(minutes=5))
        )
    now_ms = int(time.time() * 1000)

    report = await run_tick(app.database, replay_feed(app), now_ms=now_ms)

    assert (report.decisions, await _count(app, Order)) == (0, 0)
    assert await _count(app, BotSignal, BotSignal.consumed_at.is_(None)) == 0
    async with app.database.sessions() as session:
        notice = await session.scalar(
            select(Notification).where(Notification.kind == "signal_expired")
        )
    assert notice is not None and notice.payload["action"] == "buy"
    text = render_notification(notice.kind, notice.payload, "pt-BR").plain()
    assert "“buy”" in text and "5 min" in text and "2 min" in text and "{" not in text

    # An alert on time still trades.
    await receive_signal(app, secret, SignalAlert("buy"))
    report = await run_tick(app.database, replay_feed(app), now_ms=now_ms + MINUTE)
    assert report.orders_filled == 1
    assert await _count(app, Order, Order.bot_id == bot_id) == 1


async def test_a_restarted_bot_never_acts_on_an_alert_from_before_its_stop(app: App) -> None:
    user, bot_id, secret = await _signal_bot(app)
    await receive_signal(app, secret, SignalAlert("buy"))
    await stop_bot(app, user, bot_id)
    await start_bot(app, user, bot_id)

    report = await run_tick(app.database, replay_feed(app), now_ms=NOW)

    assert (report.decisions, await _count(app, Order)) == (0, 0)
    assert await _count(app, BotSignal, BotSignal.consumed_at.is_(None)) == 0


async def test_only_todays_realised_losses_count_toward_the_daily_limit(app: App) -> None:
    """A 5 % limit of 1,000 USDT: yesterday's -100 is forgotten, today's -30 - 25.5 is not."""
    user = await make_user(app)
    calm = await running_bot(app, user, name="calm", daily_loss_limit_pct="5")
    hurt = await running_bot(app, user, name="hurt", daily_loss_limit_pct="5")
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)

    def trade(bot_id: int, pnl: str, closed_at: datetime) -> Trade:
        return Trade(
            bot_id=bot_id, user_id=user, symbol="BTC/USDT", mode=BotMode.PAPER,
            amount=Decimal("0.001"), entry_price=Decimal(60_000), exit_price=Decimal(59_000),
            pnl=Decimal(pnl), pnl_pct=Decimal(-1), fees=Decimal(0), exit_reason="exit",
            opened_at=closed_at, closed_at=closed_at,
        )  # fmt: skip

    async with app.database.transaction() as session:
        for bot_id in (calm, hurt):
            session.add(trade(bot_id, "-100", midnight - timedelta(minutes=1)))
            session.add(trade(bot_id, "-30", midnight))
        session.add(trade(hurt, "-25.5", now))

    report = await run_tick(app.database, replay_feed(app), now_ms=int(now.timestamp() * 1000))

    assert report.paused == 1
    async with app.database.sessions() as session:
        statuses = dict((await session.execute(select(Bot.name, Bot.status))).all())
    assert statuses == {"calm": BotStatus.RUNNING, "hurt": BotStatus.PAUSED}
