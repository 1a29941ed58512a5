"""Bots: create, list, show, start, stop, delete, switch paper/live, kill switch."""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing.plans import (
    LimitReached,
    PlanLimits,
    check_bot_allowed,
    limits_of,
    next_plan_with_more,
    strategy_allowed,
)
from db.models import (
    UNSETTLED_ORDER_STATUSES,
    AuditEntry,
    Bot,
    BotMode,
    BotSignal,
    BotStatus,
    CredentialStatus,
    ExchangeCredential,
    Order,
    OrderStatus,
    Plan,
    Position,
    User,
)
from db.notifications import KillSwitchNotice
from db.outbox import add_notification
from db.types import utcnow
from engine.exchanges.catalog import EXCHANGES, exchange_spec
from engine.exchanges.clients import ClientPool
from engine.exchanges.listings import listed_offline
from engine.live_orders import reconcile, unsettled_orders
from engine.market_data.feed import MarketKey
from engine.panic import close_paper_positions, open_markets
from engine.strategies.base import ParameterError, Strategy
from engine.strategies.registry import STRATEGIES, UnknownStrategy, get_strategy
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.plans import limits_in_force
from robotrader.use_cases.billing import bot_fits_plan
from robotrader.use_cases.bot_refs import check_bot_name, parse_bot_ref
from robotrader.use_cases.bot_settings import BotSettings, settings_of, store
from robotrader.use_cases.usage import plan_usage, user_symbols

log = logging.getLogger(__name__)

SYMBOL = re.compile(r"^[A-Z0-9]{1,15}/[A-Z0-9]{2,10}$")
NAME = re.compile(r"^[\w\-. ]{1,32}$", re.UNICODE)
MAX_SYMBOLS_PER_BOT = 10
MIN_CAPITAL = Decimal(10)
MAX_CAPITAL = Decimal(10_000_000)
# Parameters whose default only makes sense around the live price (a grid's range):
# strategy -> parameter -> factor of the last price. Set together or not at all.
PRICE_RELATIVE_DEFAULTS: dict[str, dict[str, Decimal]] = {
    "grid": {"lower": Decimal("0.9"), "upper": Decimal("1.1")},
}


@dataclass(frozen=True)
class BotSpec:
    """What the user asked for; validated by `create_bot`."""

    exchange: str
    symbols: list[str]
    strategy: str
    capital: Decimal | str | int
    parameters: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    settings: BotSettings = field(default_factory=BotSettings)


@dataclass(frozen=True)
class OrderInFlight:
    """A live order the exchange has not settled yet: the bot waits for it on that symbol."""

    id: int
    symbol: str
    side: str
    status: OrderStatus
    created_at: datetime


@dataclass(frozen=True)
class BotSummary:
    id: int
    name: str
    exchange: str
    symbols: list[str]
    strategy: str
    parameters: dict[str, Any]
    capital: Decimal
    mode: BotMode
    status: BotStatus
    pause_reason: str | None
    market_data_source: str | None
    created_at: datetime
    signal_secret: str | None
    settings: BotSettings  # timeframe, stops, exits, limits
    # Orders waiting for the exchange (pending, in flight or partly filled), oldest first.
    in_flight: tuple[OrderInFlight, ...] = ()

    @classmethod
    def of(cls, bot: Bot, in_flight: tuple[OrderInFlight, ...] = ()) -> BotSummary:
        return cls(
            id=bot.id, name=bot.name, exchange=bot.exchange, symbols=list(bot.symbols),
            strategy=bot.strategy, parameters=dict(bot.parameters),
            capital=bot.capital, mode=BotMode(bot.mode), status=BotStatus(bot.status),
            pause_reason=bot.pause_reason, market_data_source=bot.market_data_source,
            created_at=bot.created_at, signal_secret=bot.signal_secret,
            settings=settings_of(bot), in_flight=in_flight,
        )  # fmt: skip


async def _in_flight(
    session: AsyncSession, bot_ids: list[int]
) -> dict[int, tuple[OrderInFlight, ...]]:
    if not bot_ids:
        return {}
    rows = await session.execute(
        select(Order.bot_id, Order.id, Order.symbol, Order.side, Order.status, Order.created_at)
        .where(Order.bot_id.in_(bot_ids), Order.status.in_(UNSETTLED_ORDER_STATUSES))
        .order_by(Order.id)
    )
    found: dict[int, list[OrderInFlight]] = {}
    for r in rows:
        found.setdefault(r.bot_id, []).append(
            OrderInFlight(r.id, r.symbol, str(r.side), OrderStatus(r.status), r.created_at)
        )
    return {bot_id: tuple(orders) for bot_id, orders in found.items()}


def validated_parameters(strategy: Strategy, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The strategy's parameters, defaults filled in; UserError naming what is wrong."""
    try:
        return strategy.validate(parameters)
    except ParameterError as exc:
        raise UserError("bad_parameter", problem=exc.problem, **exc.args_) from None


def normalize_symbol(raw: str) -> str:
    """``btc/usdt``, ``BTC-USDT``, ``btcusdt`` -> ``BTC/USDT`` (USDT/USDC/BTC/ETH/BRL quotes)."""
    text = raw.strip().upper().replace("-", "/").replace("_", "/")
    if "/" not in text:
        for quote in ("USDT", "USDC", "FDUSD", "BRL", "BTC", "ETH", "EUR"):
            if text.endswith(quote) and len(text) > len(quote):
                text = f"{text[: -len(quote)]}/{quote}"
                break
    if not SYMBOL.match(text):
        raise UserError("bad_symbol", symbol=raw.strip()[:32])
    return text


def positive_pct(value: Any, name: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise UserError("bad_number", name=name, value=str(value)[:20]) from None
    if not Decimal(0) < number <= Decimal(100):
        raise UserError("bad_percent", name=name)
    return number


def positive_amount(value: Any, name: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value).replace(",", "."))
    except InvalidOperation:
        raise UserError("bad_number", name=name, value=str(value)[:20]) from None
    if not number.is_finite() or number <= 0:
        raise UserError("bad_number", name=name, value=str(value)[:20])
    return number


def parse_capital(value: Decimal | str | int) -> Decimal:
    try:
        capital = Decimal(str(value).replace(",", ".").strip())
    except InvalidOperation:
        raise UserError("bad_number", name="capital", value=str(value)[:20]) from None
    if not capital.is_finite() or not MIN_CAPITAL <= capital <= MAX_CAPITAL:
        raise UserError("bad_capital", minimum=str(MIN_CAPITAL), maximum=str(MAX_CAPITAL))
    return capital


async def known_symbol(app: App, exchange: str, symbol: str) -> bool:
    """Whether the exchange lists ``symbol``; offline, the shipped catalogue decides."""
    return await symbol_listed(
        app.pool, exchange, symbol, offline=app.settings.market_data == "replay"
    )


async def symbol_listed(pool: ClientPool, exchange: str, symbol: str, *, offline: bool) -> bool:
    """Whether ``exchange`` lists ``symbol``: its markets, else (``offline``, or the exchange
    unreachable) the shipped catalogue of listings.
    """
    if not offline:
        try:
            markets = await pool.markets(exchange)
        except Exception:  # offline: the shipped catalogue below
            log.info("bots.markets_unavailable exchange=%s", exchange)
        else:
            return symbol in markets
    return listed_offline(exchange, symbol)


@dataclass(frozen=True)
class StrategyChoice:
    """A strategy as a new bot's owner may pick it: locked when the plan lacks it."""

    name: str
    locked: bool
    unlocked_by: Plan | None  # the cheapest plan that includes it, when locked


def strategy_choices(plan: Plan | str) -> list[StrategyChoice]:
    """Every strategy, and which of them ``plan`` locks (the chat shows them with a lock)."""
    limits = limits_of(plan)
    better = next_plan_with_more(limits, "all_strategies")
    choices = []
    for name, strategy in STRATEGIES.items():
        locked = not strategy_allowed(limits, strategy_is_basic=strategy.info.basic)
        choices.append(StrategyChoice(name, locked, better.plan if locked and better else None))
    return choices


def check_strategy_in_plan(plan: Plan | str, strategy: str) -> None:
    """UserError if ``plan`` lacks ``strategy``: said at once, before a dialog's other steps
    (`create_bot` checks it again, with the rest of the plan's limits)."""
    limits = limits_of(plan)
    if not strategy_allowed(limits, strategy_is_basic=get_strategy(strategy).info.basic):
        raise _strategy_error(limits)


async def _last_price(app: App, exchange: str, symbol: str) -> Decimal | None:
    key = MarketKey(exchange, symbol, "1m")
    fetched = await app.feed.fetch({key: 2}, set(), int(time.time() * 1000))
    snapshot = fetched.snapshots.get(key)
    return None if snapshot is None else Decimal(repr(snapshot.last_close))


async def suggested_parameters(
    app: App, exchange: str, symbol: str, strategy: str, given: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The parameters a new bot or backtest of ``strategy`` on ``symbol`` starts from.

    ``given`` first, then the strategy's defaults, except those that only make sense
    around the live price (a grid's range, ±10 %): those come from the last price
    unless ``given`` sets any of them (no price: the static defaults). The chat's
    /newbot, the REST API and /backtest all ask here.
    """
    given = dict(given or {})
    parameters: dict[str, Any] = {**get_strategy(strategy).defaults(), **given}
    relative = PRICE_RELATIVE_DEFAULTS.get(strategy, {})
    if not relative or set(relative) & set(given):
        return parameters
    price = await _last_price(app, exchange, symbol)
    if price is None:
        return parameters
    cent = Decimal("0.01")
    for name, factor in relative.items():
        parameters[name] = float((price * factor).quantize(cent, ROUND_HALF_UP))
    return parameters


async def _owned_bot(session: AsyncSession, user_id: int, bot_ref: str | int) -> Bot:
    """The user's bot by id or name; NotFound otherwise (never reveals other users' bots)."""
    query = select(Bot).where(
        Bot.user_id == user_id, Bot.is_active, parse_bot_ref(bot_ref).condition()
    )
    bot = await session.scalar(query.with_for_update())
    if bot is None:
        raise UserError("bot_not_found", bot=str(bot_ref).strip()[:32])
    return bot


# What a LimitReached of bots, symbols or exchanges counts, as a PlanLimits field.
LIMIT_FIELDS = {"bots": "max_bots", "symbols": "max_symbols", "exchanges": "max_exchanges"}


def limit_error(exc: LimitReached) -> UserError:
    """The refusal of a plan limit, naming the cheapest plan that allows more (if any)."""
    limits = limits_of(exc.plan)
    if exc.limit == "strategy":
        return _strategy_error(limits)
    better = next_plan_with_more(limits, LIMIT_FIELDS[exc.limit])
    if better is None:
        return UserError(
            "limit_reached", limit=exc.limit, plan=str(exc.plan), maximum=exc.maximum,
            current=exc.current,
        )  # fmt: skip
    return UserError(
        "limit_reached_upgrade", limit=exc.limit, plan=str(exc.plan), maximum=exc.maximum,
        current=exc.current, next_plan=better.title,
    )  # fmt: skip


def _strategy_error(limits: PlanLimits) -> UserError:
    better = next_plan_with_more(limits, "all_strategies")
    return UserError(
        "strategy_not_in_plan", plan=str(limits.plan), next_plan=better.title if better else "—"
    )


async def check_room_for_bot(app: App, user_id: int) -> None:
    """UserError when the user's plan has no bot left: said at once, as /newbot starts."""
    async with app.database.sessions() as session:
        user = await session.get(User, user_id)
        assert user is not None
        usage = await plan_usage(session, user_id)
    limits = limits_of(user.plan)
    if usage.bots + 1 > limits.max_bots:
        raise limit_error(LimitReached("bots", limits.plan, limits.max_bots, usage.bots))


async def check_pairs_in_plan(
    app: App, user_id: int, chosen: Collection[str], adding: Iterable[str]
) -> None:
    """UserError when adding pairs ``adding`` to a new bot on ``chosen`` goes over the plan.

    Said as each pair is picked, with the count in use. Pairs count once across the
    user's bots: one that another bot trades already is free (as `create_bot` counts).
    """
    async with app.database.sessions() as session:
        user = await session.get(User, user_id)
        assert user is not None
        in_use = await user_symbols(session, user_id) | set(chosen)
    limits = limits_of(user.plan)
    for pair in adding:
        if pair in in_use or limits.max_symbols is None:
            continue
        if len(in_use) >= limits.max_symbols:
            raise limit_error(LimitReached("symbols", limits.plan, limits.max_symbols, len(in_use)))
        in_use.add(pair)


async def create_bot(app: App, user_id: int, spec: BotSpec) -> BotSummary:
    """Validate a bot against its strategy, the exchange and the user's plan; store it stopped.

    New bots trade on paper: going live is a separate, confirmed step.
    """
    exchange = exchange_spec(spec.exchange)
    if exchange is None:
        raise UserError(
            "unknown_exchange", exchange=spec.exchange[:32], choices=", ".join(EXCHANGES)
        )
    symbols = list(dict.fromkeys(normalize_symbol(s) for s in spec.symbols if s.strip()))
    if not symbols:
        raise UserError("no_symbols")
    if len(symbols) > MAX_SYMBOLS_PER_BOT:
        raise UserError("too_many_symbols", maximum=MAX_SYMBOLS_PER_BOT)
    settings = spec.settings.check()
    try:
        strategy = get_strategy(spec.strategy)
    except UnknownStrategy:
        raise UserError(
            "unknown_strategy", strategy=spec.strategy[:32], choices=", ".join(STRATEGIES)
        ) from None
    validated_parameters(strategy, spec.parameters)
    capital = parse_capital(spec.capital)
    name = (spec.name or "").strip()
    if name and not NAME.match(name):
        raise UserError("bad_bot_name")
    check_bot_name(name)
    for symbol in symbols:
        if not await known_symbol(app, exchange.id, symbol):
            raise UserError("unknown_symbol", symbol=symbol, exchange=exchange.title)
    suggested = await suggested_parameters(
        app, exchange.id, symbols[0], strategy.info.name, spec.parameters
    )
    parameters = validated_parameters(strategy, suggested)
    async with app.database.transaction() as session:
        user = await session.get(User, user_id, with_for_update=True)
        assert user is not None
        usage = await plan_usage(session, user_id)
        new_symbols = len(set(symbols) - await user_symbols(session, user_id))
        try:
            check_bot_allowed(
                limits_in_force(app.settings, user.plan), usage, new_symbols=new_symbols,
                strategy_is_basic=strategy.info.basic,
            )  # fmt: skip
        except LimitReached as exc:
            raise limit_error(exc) from None
        if not name:
            name = f"{strategy.info.name}-{usage.bots + 1}"
        taken = await session.scalar(
            select(Bot.id).where(
                Bot.user_id == user_id,
                Bot.is_active,
                func.lower(Bot.name) == name.lower(),
            )
        )
        if taken is not None:
            raise UserError("bot_name_taken", name=name)
        bot = Bot(
            user_id=user_id, name=name, exchange=exchange.id, symbols=symbols,
            strategy=strategy.info.name, parameters=parameters,
            capital=capital, mode=BotMode.PAPER, status=BotStatus.STOPPED,
            signal_secret=secrets.token_urlsafe(24) if strategy.info.name == "signal" else None,
        )  # fmt: skip
        store(bot, settings)
        session.add(bot)
        await session.flush()
        session.add(AuditEntry(user_id=user_id, platform="api", action="bot.create",
                               detail={"bot_id": bot.id}))  # fmt: skip
        return BotSummary.of(bot)


async def list_bots(app: App, user_id: int) -> list[BotSummary]:
    """The user's bots (not the deleted ones), each with its orders waiting for the exchange."""
    async with app.database.sessions() as session:
        bots = (
            await session.scalars(
                select(Bot).where(Bot.user_id == user_id, Bot.is_active).order_by(Bot.id)
            )
        ).all()
        waiting = await _in_flight(session, [b.id for b in bots])
        return [BotSummary.of(b, waiting.get(b.id, ())) for b in bots]


async def show_bot(app: App, user_id: int, bot_ref: str | int) -> BotSummary:
    async with app.database.transaction() as session:
        bot = await _owned_bot(session, user_id, bot_ref)
        waiting = await _in_flight(session, [bot.id])
        return BotSummary.of(bot, waiting.get(bot.id, ()))


async def start_bot(app: App, user_id: int, bot_ref: str | int) -> BotSummary:
    """Run a stopped or paused bot; a live bot needs a working key for its exchange."""
    async with app.database.transaction() as session:
        bot = await _owned_bot(session, user_id, bot_ref)
        if not await bot_fits_plan(session, app.settings, user_id, bot.id):
            raise UserError("bot_over_plan", bot=bot.name)
        if bot.mode == BotMode.LIVE:
            await _require_credential(session, user_id, bot)
        if bot.status != BotStatus.RUNNING:
            bot.status = BotStatus.RUNNING
            bot.pause_reason = None
            bot.started_at = utcnow()
            # Alerts left from before the stop speak of another market: never act on them.
            await session.execute(
                update(BotSignal)
                .where(BotSignal.bot_id == bot.id, BotSignal.consumed_at.is_(None))
                .values(consumed_at=bot.started_at)
            )
        return BotSummary.of(bot)


async def stop_bot(app: App, user_id: int, bot_ref: str | int) -> BotSummary:
    """Stop deciding; orders already sent are settled by the engine (a resting one cancelled)."""
    async with app.database.transaction() as session:
        bot = await _owned_bot(session, user_id, bot_ref)
        bot.status = BotStatus.STOPPED
        bot.pause_reason = None
        waiting = await _in_flight(session, [bot.id])
        return BotSummary.of(bot, waiting.get(bot.id, ()))


async def delete_bot(app: App, user_id: int, bot_ref: str | int) -> BotSummary:
    """Delete a bot: it is archived, its orders, fills and trades kept (they still count).

    Refused while it runs, while a live order of it waits for the exchange (a fill
    arriving later must find its bot), and while it holds positions.
    """
    async with app.database.transaction() as session:
        bot = await _owned_bot(session, user_id, bot_ref)
        if bot.status == BotStatus.RUNNING:
            raise UserError("stop_bot_first", bot=bot.name)
        waiting = await _in_flight(session, [bot.id])
        if waiting:
            raise UserError("bot_orders_in_flight", bot=bot.name, orders=len(waiting[bot.id]))
        if await _has_positions(session, bot.id):
            raise UserError("close_positions_first", bot=bot.name)
        bot.archived_at = utcnow()
        bot.signal_secret = None  # its webhook URL stops working with it
        session.add(AuditEntry(user_id=user_id, platform="api", action="bot.delete",
                               detail={"bot_id": bot.id}))  # fmt: skip
        return BotSummary.of(bot)


async def _has_positions(session: AsyncSession, bot_id: int) -> bool:
    return (
        await session.scalar(select(Position.id).where(Position.bot_id == bot_id).limit(1))
    ) is not None


async def _require_credential(session: AsyncSession, user_id: int, bot: Bot) -> ExchangeCredential:
    credential = await session.scalar(
        select(ExchangeCredential)
        .where(
            ExchangeCredential.user_id == user_id,
            ExchangeCredential.exchange == bot.exchange,
            ExchangeCredential.status == CredentialStatus.ACTIVE,
        )
        .order_by(ExchangeCredential.created_at.desc())
    )
    if credential is None:
        raise UserError("connect_exchange_first", exchange=bot.exchange)
    bot.credential_id = credential.id
    return credential


async def set_mode(
    app: App, user_id: int, bot_ref: str | int, mode: BotMode, *, confirmed: bool
) -> BotSummary:
    """Switch a bot between paper and live. Going live needs ``confirmed`` and a connected key.

    A bot holding positions cannot switch: paper holdings do not exist on the exchange.
    """
    async with app.database.transaction() as session:
        bot = await _owned_bot(session, user_id, bot_ref)
        if bot.mode == mode:
            return BotSummary.of(bot)
        if mode == BotMode.LIVE and not confirmed:
            raise UserError("confirm_live", bot=bot.name)
        if await _has_positions(session, bot.id):
            raise UserError("close_positions_first", bot=bot.name)
        if mode == BotMode.LIVE:
            await _require_credential(session, user_id, bot)
        bot.mode = mode
        session.add(AuditEntry(user_id=user_id, platform="api", action=f"bot.mode.{mode}",
                               detail={"bot_id": bot.id}))  # fmt: skip
        return BotSummary.of(bot)


@dataclass(frozen=True)
class KillSwitchResult:
    """What the kill switch did now, and what still waits for the exchange."""

    bots_stopped: int
    orders_canceled: int  # never sent (cancelled here) or cancelled on the exchange, confirmed
    positions_sold: int  # sold now, paper and live
    waiting: int  # live orders the exchange has not settled yet (sold once they are)


async def kill_switch(app: App, user_id: int, *, close_positions: bool) -> KillSwitchResult:
    """Stop every bot of the user now; optionally sell every open position at market.

    Idempotent, however often and from wherever it is pressed: the user's row is
    locked first, panic sells take their ids from the positions they sell, and
    one process at a time talks to the exchange about an order. An order never
    sent is cancelled here; one already sent is never marked cancelled on our own
    word: a resting one is cancelled on the exchange and the cancellation
    confirmed, one in flight is awaited and its fill booked, then what remains
    is sold. What the exchange has not answered yet, the engine finishes.
    """
    prices: dict[tuple[str, str], Decimal] = {}
    if close_positions:
        async with app.database.sessions() as session:
            markets = await open_markets(session, user_id)
        if markets:
            keys = {MarketKey(e, s, tf): 2 for e, s, tf in markets}
            fetched = await app.feed.fetch(keys, set(), int(time.time() * 1000))
            prices = {
                (k.exchange, k.symbol): Decimal(repr(snap.last_close))
                for k, snap in fetched.snapshots.items()
            }
    now = utcnow()
    async with app.database.transaction() as session:
        await session.get(User, user_id, with_for_update=True)  # one press at a time
        stopped = await session.execute(
            update(Bot)
            .where(
                Bot.user_id == user_id,
                Bot.status != BotStatus.STOPPED,
                Bot.is_active,
            )
            .values(status=BotStatus.STOPPED, pause_reason=None)
        )
        never_sent = await session.execute(
            update(Order)
            .where(
                Order.user_id == user_id,
                Order.status == OrderStatus.PENDING,
                Order.submit_attempts == 0,
                Order.reason != "panic",  # another press's sell, about to be sent
                (Order.claimed_until.is_(None)) | (Order.claimed_until < now),
            )
            .values(status=OrderStatus.CANCELED, error="kill switch: never sent")
        )
        paper_sold = 0
        if close_positions:
            paper_sold = await close_paper_positions(session, user_id, prices)
            await session.execute(
                update(Bot)
                .where(
                    Bot.user_id == user_id,
                    Bot.mode == BotMode.LIVE,
                    Bot.liquidating_since.is_(None),
                )
                .values(liquidating_since=now)
            )
    # Stopped (and liquidating) bots' orders: open ones are cancelled on the exchange,
    # those in flight settled; then the live positions are sold.
    before = await _panic_fills(app, user_id)
    outcomes = await reconcile(app.live, user_id)
    result = KillSwitchResult(
        bots_stopped=_rowcount(stopped),
        orders_canceled=_rowcount(never_sent) + outcomes.get("canceled", 0),
        positions_sold=paper_sold + await _panic_fills(app, user_id) - before,
        waiting=len(await unsettled_orders(app.database, user_id)),
    )
    async with app.database.transaction() as session:
        await add_notification(
            session,
            user_id=user_id,
            notice=KillSwitchNotice(
                bots=result.bots_stopped, sold=result.positions_sold, waiting=result.waiting
            ),
            dedupe_key=f"panic:{user_id}:{now.isoformat()}",
        )
    return result


async def _panic_fills(app: App, user_id: int) -> int:
    """Live panic sells that have filled (compared before and after a press)."""
    async with app.database.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Order)
            .where(
                Order.user_id == user_id,
                Order.reason == "panic",
                Order.mode == BotMode.LIVE,
                Order.status == OrderStatus.FILLED,
            )
        )
        return int(count or 0)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
