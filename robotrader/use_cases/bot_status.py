"""A bot shows it is alive: when it last decided, when it decides next, and on what values.

For the chat's /status and a bot's card, the REST API and the dashboard. The values
are the strategy's own (``Strategy.view``) over the candles the tick decides on: read
through the market-data feed and its cache, one fetch per (exchange, symbol,
timeframe) per request, and none while the candle that the tick fetched is still the
last closed one. "Last evaluated" comes from the engine's heartbeat of the runner
whose ticks take the bot in (engine.heartbeats): the tick writes nothing per bot.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from db.models import Bot, BotMode, BotStatus, EngineHeartbeat, Position
from engine.heartbeats import evaluates
from engine.market_data.feed import MarketKey, MarketSnapshot
from engine.market_data.timeframes import timeframe_ms
from engine.strategies.base import Level, Line, Pane, ParamValue, PositionState, StrategyView
from engine.strategies.registry import get_strategy
from robotrader.app import App
from robotrader.use_cases.bots import BotSummary, OrderInFlight, list_bots, show_bot
from robotrader.use_cases.health import STALE_TICKS
from robotrader.use_cases.portfolio import unrealized


@dataclass(frozen=True)
class Value:
    """One value a strategy decides on, at the last closed candle.

    ``name`` is a catalog key suffix (``indicator.<name>``) filled with ``args``;
    on the ``price`` pane the value is a price, on ``oscillator`` a plain figure.
    """

    name: str
    value: float
    pane: Pane = "price"
    args: Mapping[str, ParamValue] = field(default_factory=dict)


# Every kind of reading (catalog key ``reading.<kind>``).
READING_KINDS = (
    "crossing_band", "above", "below", "at", "next_safety", "take_profit", "grid_below",
    "grid_above", "value", "warming_up",
)  # fmt: skip


@dataclass(frozen=True)
class Reading:
    """A sentence of what the strategy decides on: catalog key ``reading.<kind>``.

    ``values`` by role (``line``, ``buy``, ``sell``, ``first``, ``second``, ``level``,
    ``item``); the text names each role's value and its label.
    """

    kind: str
    values: Mapping[str, Value]


@dataclass(frozen=True)
class HeldPosition:
    amount: Decimal
    average_entry: Decimal
    price: Decimal | None  # the last close; None without market data
    unrealized_pnl: Decimal | None
    unrealized_pct: Decimal | None


@dataclass(frozen=True)
class MarketActivity:
    """One symbol of a bot: the values it decides on, what it holds, what it waits for."""

    symbol: str
    # Where the values come from: "exchange", or "replay" (a paper bot while the exchange
    # is out of reach); None: no data (a live bot waits for the exchange's).
    source: str | None
    candle_closed_at: datetime | None  # the close of the candle the values are at
    price: Decimal | None
    readings: tuple[Reading, ...] = ()
    position: HeldPosition | None = None
    # A live order the exchange has not settled: the bot decides nothing here until it is.
    waiting_for: OrderInFlight | None = None


@dataclass(frozen=True)
class BotActivity:
    bot: BotSummary
    # The engine's last completed tick that evaluated the bot (running bots only);
    # None before its first one.
    last_evaluated_at: datetime | None
    # The close of the current candle of the bot's timeframe (running bots only).
    next_decision_at: datetime | None
    # Running, but the engine has not ticked for several intervals: no decision will come.
    engine_stale: bool
    markets: tuple[MarketActivity, ...]


async def bot_activity(app: App, user_id: int, bot_ref: str | int) -> BotActivity:
    """One of the user's bots, with what it decides on now (the bot's card, GET /bots/{id})."""
    bot = await show_bot(app, user_id, bot_ref)
    (activity,) = await _activities(app, [bot])
    return activity


async def bots_activity(app: App, user_id: int) -> list[BotActivity]:
    """Every bot of the user, with what it decides on now (/status)."""
    return await _activities(app, await list_bots(app, user_id))


def next_decision(timeframe: str, now_ms: int) -> datetime:
    """When the candle open at ``now_ms`` closes: the tick's next decision on it."""
    step = timeframe_ms(timeframe)
    return datetime.fromtimestamp((now_ms // step + 1) * step / 1000, UTC)


async def _activities(app: App, bots: list[BotSummary]) -> list[BotActivity]:
    now_ms = int(time.time() * 1000)
    now = datetime.fromtimestamp(now_ms / 1000, UTC)
    ids = [b.id for b in bots]
    async with app.database.sessions() as session:
        rows = await session.execute(
            select(Bot.id, Bot.started_at, Bot.user_id).where(Bot.id.in_(ids))
        )
        started, owners = {}, {}
        for bot_id, at, owner in rows:
            started[bot_id], owners[bot_id] = at, owner
        held: dict[tuple[int, str], Position] = {
            (p.bot_id, p.symbol): p
            for p in await session.scalars(select(Position).where(Position.bot_id.in_(ids)))
        }
        beats = [
            (runner, at)
            for runner, at in await session.execute(
                select(EngineHeartbeat.runner, EngineHeartbeat.last_tick_at)
            )
        ]
    # Markets worth a fetch: a running bot's (it decides there) or a held position's.
    needs: dict[MarketKey, int] = {}
    live: set[MarketKey] = set()
    for bot in bots:
        running = bot.status == BotStatus.RUNNING
        warmup = get_strategy(bot.strategy).warmup(bot.parameters) + 2  # as the tick asks
        for symbol in _symbols(bot, held):
            if not running and (bot.id, symbol) not in held:
                continue
            key = MarketKey(bot.exchange, symbol, bot.settings.timeframe)
            needs[key] = max(needs.get(key, 0), warmup)
            if bot.mode == BotMode.LIVE:
                live.add(key)
    fetched = await app.feed.fetch(needs, live, now_ms) if needs else None
    stale_after = timedelta(seconds=STALE_TICKS * app.settings.tick_seconds)
    result = []
    for bot in bots:
        running = bot.status == BotStatus.RUNNING
        markets = []
        for symbol in _symbols(bot, held):
            key = MarketKey(bot.exchange, symbol, bot.settings.timeframe)
            snapshot = None
            if fetched is not None:
                # A live bot decides on the exchange's candles only, never on the replay.
                found = fetched.exchange_only if bot.mode == BotMode.LIVE else fetched.snapshots
                snapshot = found.get(key)
            position = held.get((bot.id, symbol))
            deciding = running and symbol in bot.symbols
            markets.append(_market(bot, symbol, snapshot, position, deciding))
        last = None
        if running:
            since = started.get(bot.id)
            times = [at for runner, at in beats if evaluates(runner, owners[bot.id])]
            newest = max(times, default=None)
            last = newest if newest is not None and (since is None or newest >= since) else None
        result.append(
            BotActivity(
                bot=bot,
                last_evaluated_at=last,
                next_decision_at=next_decision(bot.settings.timeframe, now_ms) if running else None,
                engine_stale=running and (last is None or now - last > stale_after),
                markets=tuple(markets),
            )
        )
    return result


def _symbols(bot: BotSummary, held: Mapping[tuple[int, str], Position]) -> list[str]:
    """The bot's symbols, then any it still holds that it no longer trades."""
    holding = [symbol for bot_id, symbol in held if bot_id == bot.id]
    return list(dict.fromkeys([*bot.symbols, *sorted(holding)]))


def _market(
    bot: BotSummary,
    symbol: str,
    snapshot: MarketSnapshot | None,
    position: Position | None,
    running: bool,
) -> MarketActivity:
    waiting = next((o for o in bot.in_flight if o.symbol == symbol), None)
    price = Decimal(repr(snapshot.last_close)) if snapshot is not None else None
    held = None
    if position is not None:
        pnl, pct = unrealized(position.amount, position.cost, price)
        held = HeldPosition(position.amount, position.average_entry, price, pnl, pct)
    if snapshot is None:
        return MarketActivity(symbol, None, None, None, position=held, waiting_for=waiting)
    readings: tuple[Reading, ...] = ()
    if running and bot.strategy != "signal":
        state = PositionState()
        if position is not None:  # as the tick sees it (engine.tick.PositionRow.state)
            state = PositionState(
                float(position.amount), float(position.average_entry), position.entries
            )
        strategy = get_strategy(bot.strategy)
        view = strategy.view(snapshot.candles, bot.parameters, state)
        readings = readings_of(view, snapshot.last_close)
    closed_at = snapshot.last_time + timeframe_ms(bot.settings.timeframe)
    return MarketActivity(
        symbol=symbol,
        source=snapshot.source,
        candle_closed_at=datetime.fromtimestamp(closed_at / 1000, UTC),
        price=price,
        readings=readings,
        position=held,
        waiting_for=waiting,
    )


def _last(line: Line) -> Value | None:
    if not len(line.values) or not math.isfinite(float(line.values[-1])):
        return None  # not enough candles for it yet
    return Value(line.name, float(line.values[-1]), line.pane, line.args)


def _value(level: Level) -> Value:
    return Value(level.name, level.value, level.pane, level.args)


def readings_of(view: StrategyView, price: float) -> tuple[Reading, ...]:
    """What a strategy's view says at the last closed candle (close ``price``), as readings.

    RSI against the thresholds it crosses; the fast SMA above or below the slow one;
    DCA's next safety price and its take-profit price; the grid lines next below and
    above the price. Any other value is read alone.
    """
    lines = {line.name: value for line in view.lines if (value := _last(line)) is not None}
    # Too few candles for a line yet: said, rather than left out.
    readings = [
        Reading("warming_up", {"item": Value(line.name, math.nan, line.pane, line.args)})
        for line in view.lines
        if line.name not in lines
    ]
    levels: dict[str, list[Value]] = {}
    for level in view.levels:
        levels.setdefault(level.name, []).append(_value(level))
    if "rsi" in lines and "oversold" in levels and "overbought" in levels:
        band = {"line": lines.pop("rsi"), "buy": levels.pop("oversold")[0]}
        band["sell"] = levels.pop("overbought")[0]
        readings.append(Reading("crossing_band", band))
    if "sma_fast" in lines and "sma_slow" in lines:
        fast, slow = lines.pop("sma_fast"), lines.pop("sma_slow")
        side = "above" if fast.value > slow.value else "below" if fast.value < slow.value else "at"
        readings.append(Reading(side, {"first": fast, "second": slow}))
    if "safety" in levels:
        # The safety prices still to come, highest (the next one) first.
        readings.append(Reading("next_safety", {"level": max(levels.pop("safety"), key=_price)}))
    if "take_profit_price" in levels:
        readings.append(Reading("take_profit", {"level": levels.pop("take_profit_price")[0]}))
    if "grid_line" in levels:
        grid = levels.pop("grid_line")
        below = [v for v in grid if v.value < price]
        above = [v for v in grid if v.value > price]
        if below:
            readings.append(Reading("grid_below", {"level": max(below, key=_price)}))
        if above:
            readings.append(Reading("grid_above", {"level": min(above, key=_price)}))
    readings.extend(Reading("value", {"item": value}) for value in lines.values())
    readings.extend(Reading("value", {"item": v}) for values in levels.values() for v in values)
    return tuple(readings)


def _price(value: Value) -> float:
    return value.value
