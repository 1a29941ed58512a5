"""The tick: every running bot evaluated once, market data and strategies computed once per market.

Phases (timed in TickReport.phases):
1. load     running bots of this shard, their positions, pending signals, today's PnL
2. fetch    one market-data fetch per (exchange, symbol, timeframe)
3. compute  each distinct (strategy, parameters) once per market
4. decide   risk exits, then the strategy's decision, per bot and symbol
5. write    paper orders filled and booked; live orders recorded as pending for placement;
            pauses, fall-back notices and the heartbeat, all in one transaction
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Text, and_, cast, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from db.models import (
    UNSETTLED_ORDER_STATUSES,
    Bot,
    BotMode,
    BotResult,
    BotSignal,
    BotStatus,
    EngineHeartbeat,
    Order,
    OrderSide,
    OrderType,
    Plan,
    Position,
    Trade,
    User,
)
from db.notifications import DataFallbackNotice, SignalExpiredNotice
from db.outbox import NewNotification, add_notifications
from db.session import Database
from db.types import utcnow
from engine.bookkeeping import (
    BotRef,
    Ledger,
    PositionKey,
    pause_bot,
    record_highest_prices,
    record_rejection,
    record_report,
)
from engine.client_order_ids import client_order_id
from engine.computed_signals import ComputedSignals
from engine.exchanges.errors import OrderRejected
from engine.exchanges.gateway import OrderRequest
from engine.exchanges.paper import FEE_RATE, SLIPPAGE, PaperAccounts, PaperGateway, split_symbol
from engine.gc_pause import automatic_gc_paused
from engine.market_data.feed import MarketDataFeed, MarketKey, MarketSnapshot
from engine.market_data.timeframes import TIMEFRAME_MS
from engine.risk import ExitState, RiskSettings, Target, daily_loss_breached, decide_exit
from engine.sharding import shard_filter
from engine.sizing import Budget, buy_quote, cost_rate, within_account
from engine.strategies.base import Intent, PositionState
from engine.strategies.registry import get_strategy

log = logging.getLogger(__name__)

# What a fill costs on top of its quote amount: the paper exchange's fee and slippage, and
# about what a taker pays on Binance and Bybit spot. Sizing keeps the spend within budget.
FILL_COST_RATE = cost_rate(FEE_RATE, SLIPPAGE)
# Strategies whose live orders are limit orders at the decision's price (see _new_order).
LIMIT_ORDER_STRATEGIES = frozenset({"grid"})
NO_EXIT_STATE = ExitState()  # shared by the positions that remember nothing yet
PLAN_PRIORITY = {Plan.FREE: 0, Plan.PRO: 1, Plan.PREMIUM: 2}
SIGNAL_CODES = {"buy": 1, "sell": -1, "close": -2}
_IN_CHUNK = 500  # ids per IN (...) list: far below SQLite's and asyncpg's bind-parameter caps
_WRITE_ATTEMPTS = 2
# A webhook alert says "now": one that reaches a tick later than this (the engine was
# down, or the bot paused with it pending) would trade at a price it was not meant for.
SIGNAL_MAX_AGE = timedelta(minutes=2)
# A live bot whose market has had no exchange data waits this long before it is paused:
# a blip (one failed request, an exchange restarting) must not stop a live bot until
# its owner wakes up. The feed retries an exchange a minute after a failure, so this
# is the failure and two retries.
LIVE_DATA_GRACE = timedelta(minutes=2)


@dataclass
class BotState:
    """A running bot as the tick sees it (plain values, no ORM identity map: fast for 10^5 rows)."""

    id: int
    user_id: int
    name: str
    exchange: str
    symbols: list[str]
    timeframe: str
    strategy: str
    parameters: dict[str, Any]
    capital: Decimal
    mode: BotMode
    risk: RiskSettings
    plan: Plan
    market_data_source: str | None
    positions: dict[str, PositionRow] = field(default_factory=dict)
    signal: tuple[int, str] | None = None  # pending webhook alert: (code, action)
    signal_ids: list[int] = field(default_factory=list)
    # Alerts that waited longer than SIGNAL_MAX_AGE: dropped unread, the owner told.
    stale_signals: list[StaleSignal] = field(default_factory=list)
    realized_today: Decimal = Decimal(0)
    # Every trade's PnL since the bot was made: its budget is capital plus this.
    realized_pnl: Decimal = Decimal(0)
    # json.dumps(parameters, sort_keys=True): which bots share one computation. load_bots
    # fills it once per distinct parameter set; empty means "work it out".
    params_key: str = field(default="", repr=False, compare=False)
    # Symbols with a live order the exchange has not settled yet: no new decision there.
    in_flight: dict[str, InFlightOrder] = field(default_factory=dict)
    # Symbol -> a new highest price since entry seen by this tick, to store with the position.
    highs: dict[str, Decimal] = field(default_factory=dict)

    @property
    def ref(self) -> BotRef:
        return BotRef(self.id, self.user_id, self.name, PLAN_PRIORITY.get(self.plan, 0))

    @property
    def budget(self) -> Budget:
        committed = sum((p.cost for p in self.positions.values()), Decimal(0))
        return Budget(self.capital, self.realized_pnl, committed)


@dataclass(frozen=True)
class InFlightOrder:
    id: int
    created_at: datetime


@dataclass(frozen=True)
class StaleSignal:
    id: int
    action: str
    received_at: datetime


@dataclass(frozen=True)
class PositionRow:
    amount: Decimal
    average_entry: Decimal
    cost: Decimal
    entries: int
    key: PositionKey | None = None  # None: not a stored row (a simulation)
    exits: ExitState = NO_EXIT_STATE  # what the exit rules remember

    def state(self) -> PositionState:
        return PositionState(float(self.amount), float(self.average_entry), self.entries)


@dataclass(frozen=True)
class Decision:
    bot: BotState
    symbol: str
    intent: Intent
    price: Decimal
    candle_time: int
    client_order_id: str
    amount: Decimal


@dataclass
class TickReport:
    bots: int = 0
    markets: int = 0
    computations: int = 0
    exchange_calls: int = 0
    decisions: int = 0
    orders_filled: int = 0
    orders_rejected: int = 0
    paused: int = 0
    waiting_for_data: int = 0  # live bots skipped, within LIVE_DATA_GRACE
    # (bot, symbol) pairs not decided on: a live order there is not settled yet.
    waiting_for_exchange: int = 0
    live_orders: list[int] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(self.phases.values())


class _Timer:
    def __init__(self, report: TickReport) -> None:
        self.report = report
        self.started = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.report.phases[phase] = self.report.phases.get(phase, 0.0) + now - self.started
        self.started = now


def _params_key(bot: BotState) -> str:
    if not bot.params_key:
        bot.params_key = json.dumps(bot.parameters, sort_keys=True)
    return bot.params_key


async def load_bots(
    session: AsyncSession, shard: int = 0, shards: int = 1, now: datetime | None = None
) -> list[BotState]:
    """Running bots of one shard with their positions, pending signals and today's realised PnL.

    An alert received more than SIGNAL_MAX_AGE before ``now`` is stale, not pending.
    """
    # Settings most bots share are read as text and turned into values once per distinct
    # text: symbols and parameters (JSON), capital and the risk settings (numbers). At
    # 10^5 bots, decoding every row's JSON and Decimals, and validating every row's
    # RiskSettings, was most of this phase. Plain Core rows: the ORM's per-row
    # machinery adds nothing to a select of columns.
    conn = await session.connection()
    result = await conn.execute(
        select(
            Bot.id, Bot.user_id, Bot.name, Bot.exchange, cast(Bot.symbols, Text), Bot.timeframe,
            Bot.strategy, cast(Bot.parameters, Text), cast(Bot.capital, Text), Bot.mode,
            cast(Bot.stop_loss_pct, Text), cast(Bot.take_profit_pct, Text),
            cast(Bot.max_position, Text), cast(Bot.daily_loss_limit_pct, Text),
            cast(Bot.trailing_stop_pct, Text), cast(Bot.trailing_arm_pct, Text),
            cast(Bot.take_profit_targets, Text), Bot.breakeven_after_target,
            Bot.market_data_source, User.plan, cast(BotResult.realized_pnl, Text),
        )
        .join(User, User.id == Bot.user_id)
        .outerjoin(BotResult, BotResult.bot_id == Bot.id)
        .where(Bot.status == BotStatus.RUNNING, shard_filter(shard, shards))
    )  # fmt: skip
    rows = result.all()  # fetched at once: row-by-row iteration is several times slower
    parsed: dict[str, Any] = {}
    params_keys: dict[str, str] = {}
    capitals: dict[str, Decimal] = {}
    # Keyed by text so equal Decimals written differently ("5" / "5.0") stay apart.
    risks: dict[tuple[str | None, ...], RiskSettings] = {}
    modes = {m.value: m for m in BotMode}
    plans = {p.value: p for p in Plan}
    bots: dict[int, BotState] = {}
    for (
        bot_id, user_id, name, exchange, symbols_json, timeframe, strategy, params_json,
        capital_text, mode, *risk_texts, source, plan, realized_text,
    ) in rows:  # fmt: skip
        symbols = parsed.get(symbols_json)
        if symbols is None:
            symbols = parsed[symbols_json] = json.loads(symbols_json)
        params = parsed.get(params_json)
        if params is None:
            params = parsed[params_json] = json.loads(params_json)
            params_keys[params_json] = json.dumps(params, sort_keys=True)
        capital = capitals.get(capital_text)
        if capital is None:
            capital = capitals[capital_text] = Decimal(capital_text)
        risk_key = tuple(risk_texts)
        risk = risks.get(risk_key)
        if risk is None:
            risk = risks[risk_key] = _risk_settings(risk_key)
        bots[bot_id] = BotState(
            id=bot_id, user_id=user_id, name=name, exchange=exchange, symbols=list(symbols),
            timeframe=timeframe, strategy=strategy, parameters=dict(params), capital=capital,
            mode=modes.get(mode) or BotMode(mode), risk=risk,
            plan=plans.get(plan) or Plan(plan), market_data_source=source,
            params_key=params_keys[params_json],
            realized_pnl=Decimal(realized_text) if realized_text else Decimal(0),
        )  # fmt: skip
    if not bots:
        return []
    running = and_(Bot.status == BotStatus.RUNNING, shard_filter(shard, shards))
    positions = await conn.execute(
        select(
            Position.bot_id, Position.symbol, Position.amount, Position.average_entry,
            Position.cost, Position.entries, Position.id, Position.opened_at,
            Position.highest_price, Position.targets_hit,
        ).join(Bot, Bot.id == Position.bot_id).where(running)
    )  # fmt: skip
    for p in positions.all():
        if p.bot_id in bots:
            bots[p.bot_id].positions[p.symbol] = PositionRow(
                p.amount, p.average_entry, p.cost, p.entries,
                PositionKey(p.id, p.opened_at),
                ExitState(p.highest_price, p.targets_hit)
                if p.highest_price is not None or p.targets_hit
                else NO_EXIT_STATE,
            )  # fmt: skip
    # Orders the exchange has not settled (pending: maybe sent; open: resting or partly
    # filled). Only live orders can be left so: paper ones settle inside the tick.
    # Read through the partial index of unsettled orders (a handful, however long the
    # history), not joined with the bots: the shard's bots are at hand.
    unsettled = await conn.execute(
        select(Order.bot_id, Order.symbol, Order.id, Order.created_at)
        .where(Order.status.in_(UNSETTLED_ORDER_STATUSES))
        .order_by(Order.id)
    )
    for o in unsettled.all():
        owner = bots.get(o.bot_id)
        if owner is not None and o.symbol not in owner.in_flight:
            owner.in_flight[o.symbol] = InFlightOrder(o.id, o.created_at)
    signals = await conn.execute(
        select(BotSignal.id, BotSignal.bot_id, BotSignal.action, BotSignal.received_at)
        .join(Bot, Bot.id == BotSignal.bot_id)
        .where(running, BotSignal.consumed_at.is_(None))
        .order_by(BotSignal.id)
    )
    oldest = now - SIGNAL_MAX_AGE if now is not None else None
    for s in signals.all():
        bot = bots.get(s.bot_id)
        if bot is None or s.action not in SIGNAL_CODES:
            continue
        if oldest is not None and s.received_at < oldest:
            bot.stale_signals.append(StaleSignal(s.id, s.action, s.received_at))
        else:
            bot.signal = (SIGNAL_CODES[s.action], s.action)  # the newest alert wins
            bot.signal_ids.append(s.id)
    if any(b.risk.daily_loss_limit_pct is not None for b in bots.values()):
        midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        today = and_(
            running,
            Bot.daily_loss_limit_pct.is_not(None),
            Trade.closed_at >= midnight,  # with the bot: ix_trades_bot_closed's range
        )
        if conn.dialect.name == "postgresql":
            pnl_rows = await conn.execute(
                select(Trade.bot_id, func.sum(Trade.pnl))
                .join(Bot, Bot.id == Trade.bot_id)
                .where(today)
                .group_by(Trade.bot_id)
            )
        else:  # SQLite keeps Money as text and would sum through floats: summed here
            pnl_rows = await conn.execute(
                select(Trade.bot_id, Trade.pnl).join(Bot, Bot.id == Trade.bot_id).where(today)
            )
        for bot_id, pnl in pnl_rows:
            if bot_id in bots:
                bots[bot_id].realized_today += pnl
    return list(bots.values())


def _risk_settings(texts: tuple[Any, ...]) -> RiskSettings:
    """RiskSettings from the bot columns load_bots reads, in RiskSettings' field order:
    six percentages and amounts as text, the targets as JSON text, breakeven a boolean.
    """
    stop, take, cap, daily, trail, arm = (None if t is None else Decimal(t) for t in texts[:6])
    targets_json, breakeven = texts[6:]
    targets = json.loads(targets_json) if targets_json else None  # JSON null when unset
    return RiskSettings(
        stop_loss_pct=stop, take_profit_pct=take, max_position=cap, daily_loss_limit_pct=daily,
        trailing_stop_pct=trail, trailing_arm_pct=arm,
        targets=tuple(Target(Decimal(profit), Decimal(share)) for profit, share in targets or ()),
        breakeven=bool(breakeven),
    )  # fmt: skip


def _dec(value: float) -> Decimal:
    return Decimal(repr(value))


def _unrealized(bot: BotState, snapshots: dict[MarketKey, MarketSnapshot]) -> Decimal:
    """Mark-to-market PnL of the bot's open positions at the last closes."""
    total = Decimal(0)
    for symbol, position in bot.positions.items():
        snapshot = snapshots.get(MarketKey(bot.exchange, symbol, bot.timeframe))
        if snapshot is not None:
            total += position.amount * _dec(snapshot.last_close) - position.cost
    return total


def decide_for_bot(
    bot: BotState, symbol: str, snapshot: MarketSnapshot, signal: int
) -> Decision | None:
    """Risk first (engine.risk.decide_exit), then the strategy.

    A new highest price since entry is noted in ``bot.highs`` (the tick stores it with
    the position); a target's sale is counted when it is booked, not here.
    """
    strategy = get_strategy(bot.strategy)
    raw_position = bot.positions.get(symbol)
    position = raw_position.state() if raw_position is not None else PositionState()
    price = snapshot.last_close
    exit_rule: str | None = None
    exit_fraction = Decimal(1)
    if raw_position is not None:
        remembered = raw_position.exits
        verdict = decide_exit(position, price, bot.risk, remembered)
        if verdict.state.highest_price != remembered.highest_price:
            assert verdict.state.highest_price is not None  # it only rises
            bot.highs[symbol] = verdict.state.highest_price
        exit_rule, exit_fraction = verdict.reason, verdict.fraction
    intent = (
        Intent("sell", float(exit_fraction), exit_rule)
        if exit_rule
        else strategy.decide(signal, price, position, bot.parameters)
    )
    if intent is None:
        return None
    price_dec = _dec(price)
    if exit_rule:
        assert raw_position is not None
        amount = raw_position.amount * exit_fraction
    elif intent.side == "buy":
        held = raw_position.amount * price_dec if raw_position is not None else Decimal(0)
        quote = buy_quote(
            bot.budget, symbols=len(bot.symbols), fraction=_dec(intent.fraction),
            position_value=held, risk=bot.risk, cost_rate=FILL_COST_RATE,
        )  # fmt: skip
        amount = quote / price_dec
    else:
        if raw_position is None:
            return None
        amount = raw_position.amount * _dec(min(intent.fraction, 1.0))
    if amount <= 0:
        return None
    # A webhook alert is its own decision (two alerts in one candle are two decisions);
    # everything else is decided once per closed candle.
    moment: int | str = snapshot.last_time
    if bot.strategy == "signal" and bot.signal_ids and not exit_rule:
        moment = f"signal{bot.signal_ids[-1]}"
    cid = client_order_id(bot.id, symbol, moment, intent.reason, position.entries)

    return Decision(bot, symbol, intent, price_dec, snapshot.last_time, cid, amount)


def _new_order(decision: Decision, now: datetime) -> Order:
    """The order of a decision: at market, except a live grid's, which rests at its level.

    A grid buys and sells at its lines: on a real exchange that is a limit order at
    the decision's price, which may fill in part, and is cancelled (its filled part
    booked) if the next candle closes before it fills.
    """
    bot = decision.bot
    resting = bot.mode == BotMode.LIVE and bot.strategy in LIMIT_ORDER_STRATEGIES
    return Order(
        bot_id=bot.id,
        user_id=bot.user_id,
        client_order_id=decision.client_order_id,
        mode=bot.mode,
        symbol=decision.symbol,
        side=OrderSide(decision.intent.side),
        type=OrderType.LIMIT if resting else OrderType.MARKET,
        amount=decision.amount,
        price=decision.price,
        reason=decision.intent.reason,
        candle_time=decision.candle_time,
        expires_at=now + timedelta(milliseconds=TIMEFRAME_MS[bot.timeframe]) if resting else None,
    )


# What an order row is made of, with the model's defaults, but its id and its timestamps
# (their defaults are made per row by the insert).
_ORDER_COLUMNS = [
    (
        column.key,
        column.default.arg if isinstance(column.default, ScalarElementColumnDefault) else None,
    )
    for column in Order.metadata.tables["orders"].columns
    if not column.primary_key and not (column.default is not None and column.default.is_callable)
]


async def _insert_orders(session: AsyncSession, orders: list[Order]) -> None:
    """Insert the tick's orders, in their final state, in one statement; each gets its id.

    Plain rows, not the session's unit of work: flushing 10^4 new Order objects cost
    more than everything else the write phase does. The objects stay out of the
    session; nothing reads them back in the tick's transaction.
    """
    if not orders:
        return
    rows = [
        {key: values.get(key, default) for key, default in _ORDER_COLUMNS}
        for values in (order.__dict__ for order in orders)
    ]
    table = Order.metadata.tables["orders"]
    ids = await session.scalars(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
    )
    for order, order_id in zip(orders, ids.all(), strict=True):
        order.id = order_id


async def _taken(session: AsyncSession, decisions: list[Decision]) -> set[str]:
    """Client order ids of these decisions that are already recorded (a retried tick)."""
    ids = [d.client_order_id for d in decisions]
    taken: set[str] = set()
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        taken.update(
            await session.scalars(
                select(Order.client_order_id).where(Order.client_order_id.in_(chunk))
            )
        )
    return taken


async def _record_decisions(
    session: AsyncSession, decisions: list[Decision], report: TickReport
) -> None:
    """Record every decision not taken yet: paper orders filled and booked, live ones pending.

    The paper accounts and positions these orders touch are locked first, then the
    decisions already recorded are looked up: a second run of the same shard waits at
    the locks until the first commits, and then finds its orders. Paper fills are
    booked in memory, so each order is inserted once, in its final state, and the
    whole tick's orders, fills, positions, balances, trades and messages take a
    statement per table. A live order that another run recorded between the lookup
    and the insert fails the unique client order id: the caller runs this again.
    """
    if not decisions:
        return
    paper = [d for d in decisions if d.bot.mode == BotMode.PAPER]
    accounts = await PaperAccounts.load(session, (d.bot.user_id for d in paper))
    ledger = await Ledger.load_for(
        session, ((d.bot.id, d.symbol) for d in paper), (d.bot.user_id for d in paper)
    )
    taken = await _taken(session, decisions)
    now = utcnow()
    orders = [(d, _new_order(d, now)) for d in decisions if d.client_order_id not in taken]
    for decision, order in orders:
        if decision.bot.mode != BotMode.PAPER:
            continue
        if order.side == OrderSide.BUY:
            # Never more than the paper account holds (its bots share it): shrink to it.
            _, quote = split_symbol(order.symbol)
            free = accounts.amount(decision.bot.user_id, quote)
            order.amount = min(
                order.amount,
                within_account(order.amount * decision.price, free, FILL_COST_RATE)
                / decision.price,
            )
        prices = {decision.symbol: decision.price}
        gateway = PaperGateway(session, decision.bot.user_id, prices, accounts)
        request = OrderRequest.of(order, reference_price=decision.price)
        try:
            fill = await gateway.place_order(request)
        except OrderRejected as exc:
            await record_rejection(session, order, decision.bot.ref, exc.reason, exc.detail)
            report.orders_rejected += 1
            continue
        await record_report(session, order, fill, decision.bot.ref, ledger)
        report.orders_filled += 1
    await _insert_orders(session, [order for _, order in orders])
    report.live_orders.extend(o.id for d, o in orders if d.bot.mode != BotMode.PAPER)
    await ledger.write(session)
    await accounts.write(session)


async def _note_sources(
    session: AsyncSession, bots: list[BotState], sources: dict[int, str], now: datetime
) -> None:
    """Remember where each bot's data came from; say so once when a paper bot falls back."""
    changed: dict[str, list[BotState]] = {}
    for bot in bots:
        source = sources.get(bot.id)
        if source is not None and bot.market_data_source != source:
            changed.setdefault(source, []).append(bot)
    if not changed:
        return
    for source, moved in changed.items():  # one UPDATE per source, not one per bot
        ids = [bot.id for bot in moved]
        for start in range(0, len(ids), _IN_CHUNK):
            await session.execute(
                update(Bot)
                .where(Bot.id.in_(ids[start : start + _IN_CHUNK]))
                .values(market_data_source=source)
            )
    notices = [
        NewNotification(
            user_id=bot.user_id,
            notice=DataFallbackNotice(bot_id=bot.id, bot=bot.name),
            priority=bot.ref.priority,
            dedupe_key=f"fallback:{bot.id}:{now.isoformat(timespec='minutes')}",
        )
        for bot in changed.get("replay", [])
    ]
    await add_notifications(session, notices)


async def _note_stale_signals(session: AsyncSession, bots: list[BotState], now: datetime) -> None:
    """Tell each owner which alert their bot dropped for arriving too late (the newest)."""
    notices = []
    for bot in bots:
        if not bot.stale_signals:
            continue
        latest = bot.stale_signals[-1]
        notices.append(
            NewNotification(
                user_id=bot.user_id,
                notice=SignalExpiredNotice(
                    bot_id=bot.id,
                    bot=bot.name,
                    action=latest.action,
                    received=latest.received_at.strftime("%H:%M"),
                    minutes=int((now - latest.received_at).total_seconds() // 60),
                    limit=int(SIGNAL_MAX_AGE.total_seconds() // 60),
                ),
                priority=bot.ref.priority,
                dedupe_key=f"signal_expired:{bot.id}:{latest.id}",
            )
        )
    await add_notifications(session, notices)


async def run_tick(
    database: Database,
    feed: MarketDataFeed,
    *,
    shard: int = 0,
    shards: int = 1,
    runner: str = "engine",
    now_ms: int | None = None,
    clock: Callable[[], float] = time.time,
    computed: ComputedSignals | None = None,
) -> TickReport:
    """Evaluate every running bot of one shard once. Safe to run twice for the same moment.

    ``computed``: signals the process's earlier shards computed on the same candles.
    """
    with automatic_gc_paused():
        return await _run_tick(
            database, feed, shard, shards, runner, now_ms, clock, computed or ComputedSignals()
        )


async def _run_tick(
    database: Database,
    feed: MarketDataFeed,
    shard: int,
    shards: int,
    runner: str,
    now_ms: int | None,
    clock: Callable[[], float],
    computed: ComputedSignals,
) -> TickReport:
    report = TickReport()
    timer = _Timer(report)
    now_ms = now_ms if now_ms is not None else int(clock() * 1000)
    now = datetime.fromtimestamp(now_ms / 1000, UTC)

    async with database.sessions() as session:
        bots = await load_bots(session, shard, shards, now)
    report.bots = len(bots)
    timer.lap("load")

    # Grouped by plain tuples (cheap to hash); MarketKeys are made once per market.
    groups: dict[tuple[str, str, str], list[BotState]] = {}
    wanted: dict[tuple[str, str, str], int] = {}
    live_markets: set[tuple[str, str, str]] = set()
    warmups: dict[tuple[str, str], int] = {}
    for bot in bots:
        shared = (bot.strategy, _params_key(bot))
        warmup = warmups.get(shared)
        if warmup is None:
            warmup = warmups[shared] = get_strategy(bot.strategy).warmup(bot.parameters) + 2
        live = bot.mode == BotMode.LIVE
        for symbol in bot.symbols:
            market = (bot.exchange, symbol, bot.timeframe)
            group = groups.get(market)
            if group is None:
                groups[market] = [bot]
                wanted[market] = warmup
            else:
                group.append(bot)
                if warmup > wanted[market]:
                    wanted[market] = warmup
            if live:
                live_markets.add(market)
    by_market = {MarketKey(*market): group for market, group in groups.items()}
    needs = {key: wanted[(key.exchange, key.symbol, key.timeframe)] for key in by_market}
    live_keys = {MarketKey(*market) for market in live_markets}
    fetched = await feed.fetch(needs, live_keys, now_ms)
    report.markets = len(needs)
    report.exchange_calls = fetched.exchange_calls
    timer.lap("fetch")

    # Per market: (strategy, parameters) -> the signal of the last closed candle.
    signals: dict[MarketKey, dict[tuple[str, str], int]] = {}
    for key, market_bots in by_market.items():
        snapshot = fetched.snapshots[key]
        candles = snapshot.candles
        market_signals = computed.of(key, snapshot)
        signals[key] = market_signals
        for bot in market_bots:
            if bot.strategy == "signal":
                continue
            slot = (bot.strategy, bot.params_key)
            if slot not in market_signals:
                series = get_strategy(bot.strategy).compute(candles, bot.parameters)
                market_signals[slot] = int(series[-1]) if len(series) else 0
                report.computations += 1
    timer.lap("compute")

    decisions: list[Decision] = []
    to_pause: dict[int, tuple[BotState, str]] = {}
    waiting: set[int] = set()  # live bots without market data, not paused yet
    settling: set[int] = set()  # bots with an order in flight: their alerts wait too
    grace_ms = LIVE_DATA_GRACE.total_seconds() * 1000
    sources: dict[int, str] = {}
    for key, market_bots in by_market.items():
        snapshot = fetched.snapshots[key]
        market_signals = signals[key]
        unavailable = key in fetched.errors
        for bot in market_bots:
            if bot.id in to_pause:
                continue
            if unavailable and bot.mode == BotMode.LIVE:
                if now_ms - fetched.unavailable_since[key] >= grace_ms:
                    to_pause[bot.id] = (bot, "market_data_unavailable")
                else:
                    waiting.add(bot.id)
                continue
            sources[bot.id] = snapshot.source if bot.mode == BotMode.PAPER else "exchange"
            # Without a daily limit the rule never fires: skip marking the positions to market.
            if bot.risk.daily_loss_limit_pct is not None and daily_loss_breached(
                bot.realized_today, _unrealized(bot, fetched.snapshots), bot.capital, bot.risk
            ):
                to_pause[bot.id] = (bot, "daily_loss_limit")
                continue
            if key.symbol in bot.in_flight:
                # One decision in flight: until the exchange settles this bot's order
                # here, its position is not known, and the same stop loss or buy
                # would fire again at every candle.
                report.waiting_for_exchange += 1
                settling.add(bot.id)
                continue
            if bot.strategy == "signal":
                signal = bot.signal[0] if bot.signal else 0
            else:
                signal = market_signals[(bot.strategy, bot.params_key)]
            decision = decide_for_bot(bot, key.symbol, snapshot, signal)
            if decision is not None:
                decisions.append(decision)
    waiting -= to_pause.keys()  # another of its markets paused it
    report.decisions = len(decisions)
    report.waiting_for_data = len(waiting)
    if waiting:
        log.warning("tick.live_bots_waiting_for_data bots=%s", len(waiting))
    timer.lap("decide")

    # A bot waiting for data on one market decides nothing on the others either: its
    # symbols share one capital, and its alerts wait for it.
    held = to_pause.keys() | waiting
    placing = [d for d in decisions if d.bot.id not in held]
    consumed = [
        i for bot in bots if bot.id not in held and bot.id not in settling for i in bot.signal_ids
    ]
    consumed += [stale.id for bot in bots for stale in bot.stale_signals]
    for attempt in range(1, _WRITE_ATTEMPTS + 1):
        report.orders_filled = report.orders_rejected = report.paused = 0
        report.live_orders.clear()
        try:
            async with database.transaction() as session:
                await _note_sources(session, bots, sources, now)
                await _note_stale_signals(session, bots, now)
                await record_highest_prices(session, _new_highs(bots))
                await _record_decisions(session, placing, report)
                for bot, reason in to_pause.values():
                    await pause_bot(session, bot.ref, reason)
                    report.paused += 1
                if consumed:
                    await session.execute(
                        update(BotSignal)
                        .where(BotSignal.id.in_(consumed))
                        .values(consumed_at=utcnow())
                    )
                await _heartbeat(session, runner, report)
            break
        except IntegrityError:
            # Another run of this shard recorded one of these decisions first: run the
            # write again, and it finds that decision taken.
            if attempt == _WRITE_ATTEMPTS:
                raise
            log.info("tick.write_raced shard=%s attempt=%s", shard, attempt)
    timer.lap("write")
    return report


def _new_highs(bots: list[BotState]) -> dict[PositionKey, Decimal]:
    """Position -> the new highest price since entry this tick saw (trailing stops, targets)."""
    highs: dict[PositionKey, Decimal] = {}
    for bot in bots:
        for symbol, price in bot.highs.items():
            position = bot.positions.get(symbol)
            if position is not None and position.key is not None:
                highs[position.key] = price
    return highs


async def _heartbeat(session: AsyncSession, runner: str, report: TickReport) -> None:
    row = await session.get(EngineHeartbeat, runner)
    if row is None:
        row = EngineHeartbeat(runner=runner, last_tick_at=utcnow())
        session.add(row)
    row.last_tick_at = utcnow()
    row.last_tick_seconds = report.seconds
    row.bots_evaluated = report.bots
