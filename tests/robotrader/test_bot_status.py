"""A bot shows it is alive: its values are the strategy's own over the tick's candles.

Both databases, the exchange emulator through real ccxt. The expected values come
from a separate ccxt request for the same closed candles and the strategy's own
indicators, not from the use case's code.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from db.models import Bot, EngineHeartbeat, Order, OrderSide, OrderType, Position
from db.models.bots import tick_bucket_of
from db.models.enums import BotMode
from engine.heartbeats import shard_runner
from engine.market_data.feed import closed_candles
from engine.market_data.timeframes import TIMEFRAME_MS
from engine.sharding import shard_of
from engine.strategies.base import Candles, PositionState
from engine.strategies.grid import grid_lines
from engine.strategies.indicators import rsi, sma
from engine.strategies.registry import get_strategy
from engine.tick import run_tick
from robotrader.app import App
from robotrader.use_cases.bot_status import (
    BotActivity,
    MarketActivity,
    bot_activity,
    bots_activity,
    next_decision,
)
from robotrader.use_cases.bots import show_bot
from tests.emulators.exchange import ExchangeEmulator
from tests.engine.conftest import make_user, running_bot

WINDOW = 120  # the feed's window (engine.market_data.feed.STANDARD_WINDOW)


async def _tick_candles(app: App, market: MarketActivity, timeframe: str) -> Candles:
    """The window of closed candles ending at the status's candle, asked of ccxt anew."""
    assert market.candle_closed_at is not None
    step = TIMEFRAME_MS[timeframe]
    last_open = int(market.candle_closed_at.timestamp() * 1000) - step
    client = app.pool.public("binance")
    rows = await client.fetch_ohlcv(
        market.symbol, timeframe, since=last_open - (WINDOW - 1) * step, limit=WINDOW
    )
    candles = closed_candles(rows, last_open + step, timeframe)
    assert len(candles) == WINDOW and int(candles.time[-1]) == last_open
    return candles


def _reading(market: MarketActivity, kind: str) -> dict[str, float]:
    (found,) = [r for r in market.readings if r.kind == kind]
    return {role: value.value for role, value in found.values.items()}


async def _activity(app: App, user: int, bot_id: int) -> tuple[BotActivity, MarketActivity]:
    activity = await bot_activity(app, user, bot_id)
    (market,) = activity.markets
    assert market.source == "exchange"
    return activity, market


async def test_rsi_values_are_the_strategy_rsi_at_the_last_closed_candle(live_app: App) -> None:
    user = await make_user(live_app)
    params = {"period": 14, "oversold": 30, "overbought": 70}
    bot = await running_bot(live_app, user, strategy="rsi", parameters=params)
    _, market = await _activity(live_app, user, bot)
    candles = await _tick_candles(live_app, market, "1m")
    band = _reading(market, "crossing_band")
    assert band["line"] == pytest.approx(float(rsi(candles.close, 14)[-1]), abs=1e-9)
    assert (band["buy"], band["sell"]) == (30.0, 70.0)
    assert market.price == Decimal(repr(float(candles.close[-1])))
    assert market.position is None and market.waiting_for is None


async def test_sma_values_say_which_side_the_fast_average_is(live_app: App) -> None:
    user = await make_user(live_app)
    bot = await running_bot(
        live_app, user, strategy="sma_crossover", parameters={"fast": 9, "slow": 21}
    )
    _, market = await _activity(live_app, user, bot)
    candles = await _tick_candles(live_app, market, "1m")
    fast, slow = float(sma(candles.close, 9)[-1]), float(sma(candles.close, 21)[-1])
    side = "above" if fast > slow else "below" if fast < slow else "at"
    values = _reading(market, side)
    assert values == {"first": pytest.approx(fast), "second": pytest.approx(slow)}


async def test_dca_holding_shows_next_safety_take_profit_and_unrealised_pnl(
    live_app: App,
) -> None:
    user = await make_user(live_app)
    bot = await running_bot(live_app, user, strategy="dca")  # buys at its first tick
    report = await run_tick(live_app.database, live_app.feed)
    assert report.orders_filled == 1
    _, market = await _activity(live_app, user, bot)
    async with live_app.database.sessions() as session:
        position = await session.scalar(select(Position).where(Position.bot_id == bot))
    assert position is not None
    summary = await show_bot(live_app, user, bot)
    state = PositionState(float(position.amount), float(position.average_entry), position.entries)
    candles = await _tick_candles(live_app, market, "1m")
    view = get_strategy("dca").view(candles, summary.parameters, state)
    safety = max(v.value for v in view.levels if v.name == "safety")
    (take_profit,) = [v.value for v in view.levels if v.name == "take_profit_price"]
    assert _reading(market, "next_safety") == {"level": safety}
    assert _reading(market, "take_profit") == {"level": take_profit}
    held = market.position
    assert held is not None and market.price is not None
    assert (held.amount, held.average_entry, held.price) == (
        position.amount, position.average_entry, market.price,
    )  # fmt: skip
    assert held.unrealized_pnl == position.amount * market.price - position.cost
    assert held.unrealized_pct == held.unrealized_pnl / position.cost * 100


async def test_grid_shows_the_lines_next_below_and_above_the_price(live_app: App) -> None:
    user = await make_user(live_app)
    bot = await running_bot(live_app, user, strategy="grid")  # range around the live price
    _, market = await _activity(live_app, user, bot)
    summary = await show_bot(live_app, user, bot)
    candles = await _tick_candles(live_app, market, "1m")
    close = float(candles.close[-1])
    lines = [float(x) for x in grid_lines(summary.parameters)]
    assert _reading(market, "grid_below") == {"level": max(x for x in lines if x < close)}
    assert _reading(market, "grid_above") == {"level": min(x for x in lines if x > close)}


def test_next_decision_is_the_close_of_the_current_candle() -> None:
    at = datetime(2026, 12, 5, 20, 8, 31, tzinfo=UTC)
    now_ms = int(at.timestamp() * 1000)
    assert next_decision("1m", now_ms) == datetime(2026, 12, 5, 20, 9, tzinfo=UTC)
    assert next_decision("1h", now_ms) == datetime(2026, 12, 5, 21, 0, tzinfo=UTC)
    on_the_hour = int(datetime(2026, 12, 5, 21, 0, tzinfo=UTC).timestamp() * 1000)
    assert next_decision("1h", on_the_hour) == datetime(2026, 12, 5, 22, 0, tzinfo=UTC)


async def test_last_evaluation_comes_from_the_tick_that_took_the_bot_in(live_app: App) -> None:
    user = await make_user(live_app)
    minute = await running_bot(live_app, user, strategy="rsi", name="every-minute")
    hourly = await running_bot(live_app, user, strategy="rsi", name="hourly", timeframe="1h")
    before = {a.bot.id: a for a in await bots_activity(live_app, user)}
    assert before[minute].last_evaluated_at is None and before[minute].engine_stale

    await run_tick(live_app.database, live_app.feed)
    async with live_app.database.sessions() as session:
        beat = await session.get(EngineHeartbeat, "engine")
    assert beat is not None
    now = datetime.now(UTC)
    after = {a.bot.id: a for a in await bots_activity(live_app, user)}
    for bot_id, timeframe in ((minute, "1m"), (hourly, "1h")):
        activity = after[bot_id]
        assert activity.last_evaluated_at == beat.last_tick_at and not activity.engine_stale
        step = timedelta(milliseconds=TIMEFRAME_MS[timeframe])
        assert activity.next_decision_at is not None
        assert now < activity.next_decision_at <= now + step
        assert activity.next_decision_at.timestamp() * 1000 % step.total_seconds() == 0
        (market,) = activity.markets
        assert market.candle_closed_at is not None
        assert activity.next_decision_at - market.candle_closed_at == step


async def test_a_shard_runner_speaks_for_its_own_bots_only(live_app: App) -> None:
    """A shard holds whole users (engine.sharding): its heartbeat speaks for their bots."""
    users = [await make_user(live_app, f"u{i}") for i in range(2)]
    bots = [await running_bot(live_app, u, strategy="rsi", name="b") for u in users]
    buckets = [tick_bucket_of(u) for u in users]
    shards = next(n for n in range(2, 65) if shard_of(buckets[0], n) != shard_of(buckets[1], n))
    at = datetime.now(UTC)  # after the bots started
    async with live_app.database.transaction() as session:
        runner = shard_runner(shard_of(buckets[0], shards), shards)
        session.add(EngineHeartbeat(runner=runner, last_tick_at=at))
        session.add(EngineHeartbeat(runner="shard-5", last_tick_at=at))  # an older worker's
    (first,) = await bots_activity(live_app, users[0])
    (second,) = await bots_activity(live_app, users[1])
    assert (first.bot.id, first.last_evaluated_at) == (bots[0], at)
    assert (second.bot.id, second.last_evaluated_at) == (bots[1], None)


async def test_a_symbol_waiting_for_the_exchange_says_so(live_app: App) -> None:
    user = await make_user(live_app)
    bot = await running_bot(live_app, user, strategy="rsi")
    async with live_app.database.transaction() as session:
        order = Order(
            bot_id=bot, user_id=user, client_order_id="status-waits-1", mode=BotMode.LIVE,
            symbol="BTC/USDT", side=OrderSide.BUY, type=OrderType.MARKET, amount=Decimal("0.01"),
            reason="entry",
        )  # fmt: skip
        session.add(order)
        await session.flush()
        order_id = order.id
    _, market = await _activity(live_app, user, bot)
    assert market.waiting_for is not None and market.waiting_for.id == order_id


async def test_one_fetch_per_market_however_many_bots_and_requests(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    user = await make_user(live_app)
    for i in range(3):
        await running_bot(live_app, user, strategy="rsi", name=f"r{i}")
    before = live_app.feed.exchange_calls_total
    for _ in range(3):
        activities = await bots_activity(live_app, user)
        assert all(a.markets[0].readings for a in activities)
    assert live_app.feed.exchange_calls_total - before <= 2  # a candle may close in between


async def test_a_live_bot_never_reads_the_replay(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    user = await make_user(live_app)
    bot = await running_bot(live_app, user, strategy="rsi")
    async with live_app.database.transaction() as session:
        row = await session.get(Bot, bot)
        assert row is not None
        row.mode = BotMode.LIVE
    exchange_emulator.stop_serving()
    try:
        activity = await bot_activity(live_app, user, bot)
    finally:
        exchange_emulator.resume_serving()
    (market,) = activity.markets
    assert (market.source, market.readings, market.price) == (None, (), None)
