"""Backtests: ask for one (a bot's own settings, or a strategy with parameters), follow it, read it.

`start_backtest` validates the request, checks the plan's limits (the longest period,
and how many backtests may be queued or running at once), stores the job as
*queued* and hands it to ``app.backtests`` (a Celery worker, or a thread in the
embedded mode). The job writes its progress and result to its row
(engine.backtest.jobs); `get_backtest` reads them back. A chat that stops
waiting calls `notify_when_done`, and the engine then says it is done through
the notification outbox.

`backtest_spec` turns a strategy request into a spec without a user or a database:
``robotrader backtest`` uses it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select, update

from billing.plans import (
    LimitReached,
    check_backtest_allowed,
    limits_of,
    next_plan_with_more,
    strategy_allowed,
)
from db.models import Backtest, BacktestStatus, Bot, User
from db.types import utcnow
from engine.backtest.jobs import expire_stale_jobs, stale_error
from engine.backtest.summary import BacktestSpec, BacktestSummary
from engine.exchanges.catalog import EXCHANGES
from engine.exchanges.clients import ClientPool
from engine.market_data.timeframes import TIMEFRAME_MS
from engine.risk import RiskSettings
from engine.strategies.registry import STRATEGIES, get_strategy
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.i18n import chart_text
from robotrader.languages import DEFAULT_LANGUAGE
from robotrader.plans import plan_in_force
from robotrader.use_cases.bot_refs import parse_bot_ref
from robotrader.use_cases.bots import (
    check_strategy_in_plan,
    normalize_symbol,
    parse_capital,
    positive_amount,
    positive_pct,
    suggested_parameters,
    symbol_listed,
    validated_parameters,
)

DAY_MS = 86_400_000
PERIOD = re.compile(r"^(\d{1,5})\s*([dwy])$", re.IGNORECASE)
UNIT_DAYS = {"d": 1, "w": 7, "y": 365}
MAX_DAYS = 3650
# The periods offered as choices (Telegram's buttons, Discord's options): up to each
# plan's longest (billing/plans.py); any other period can still be typed.
BACKTEST_PERIODS = (7, 30, 90, 180, 365, 1095)
DEFAULT_DAYS = 30
DEFAULT_CAPITAL = Decimal(1000)
DEFAULT_TIMEFRAME = "1m"  # what a new bot trades on
DEFAULT_EXCHANGE = "binance"
KEEP_FINISHED = 20  # finished backtests kept per user (with their charts)
# Strategies a backtest cannot replay: their signals come from outside (webhooks).
NOT_BACKTESTABLE = frozenset({"signal"})
RISK_OPTIONS = {
    "stop_loss": "stop_loss_pct",
    "take_profit": "take_profit_pct",
    "max_position": "max_position",
    "daily_loss_limit": "daily_loss_limit_pct",
}
OPTIONS = frozenset({"capital", "timeframe", "tf", "exchange", *RISK_OPTIONS})
ACTIVE = (BacktestStatus.QUEUED, BacktestStatus.RUNNING)
FOLLOW_SECONDS = 300.0  # how long a chat follows a job; then the outbox says when it is done
FIRST_POLL_SECONDS = 0.3
POLL_SECONDS = 1.0


def is_period(text: str) -> bool:
    """Whether ``text`` is written as a period (``30d``, ``2w``, ``1y``)."""
    return PERIOD.match(text.strip()) is not None


@dataclass(frozen=True)
class ResearchWords:
    """The words of /backtest, /optimize or /backtest compare after what they name first."""

    symbol: str | None
    period: str | None
    options: dict[str, str]
    others: list[str]  # neither the pair, a period nor key=value


def research_words(words: Sequence[str]) -> ResearchWords:
    """A pair, a period and ``key=value`` options, in any order; the first other word is the
    pair, later ones are left in ``others`` for the command to take or refuse."""
    symbol: str | None = None
    period: str | None = None
    options: dict[str, str] = {}
    others: list[str] = []
    for word in words:
        if "=" in word:
            key, _, value = word.partition("=")
            options[key.strip().lower()] = value.strip()
        elif is_period(word):
            period = word
        elif symbol is None:
            symbol = word
        else:
            others.append(word)
    return ResearchWords(symbol, period, options, others)


def parse_period(value: str | int) -> int:
    """``30d`` / ``2w`` / ``1y`` (or a number of days) -> days; UserError otherwise."""
    if isinstance(value, int):
        days = value
    else:
        match = PERIOD.match(value.strip())
        if match is None:
            raise UserError("bad_backtest_period", value=str(value)[:20])
        days = int(match.group(1)) * UNIT_DAYS[match.group(2).lower()]
    if not 1 <= days <= MAX_DAYS:
        raise UserError("bad_backtest_period", value=str(value)[:20])
    return days


@dataclass(frozen=True)
class BacktestRequest:
    """What the user asked for.

    ``target`` is one of the user's bots (its name, or its id as an int) or a
    strategy name; a bot brings its strategy, parameters, capital, risk, exchange,
    timeframe and first symbol, each of which ``options`` may override. ``options``
    are the strategy's parameters plus ``capital``, ``timeframe`` (or ``tf``),
    ``exchange``, ``stop_loss``, ``take_profit``, ``max_position`` and
    ``daily_loss_limit``.
    """

    target: str | int
    symbol: str | None = None
    period: str | int | None = None
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BacktestJob:
    """A backtest as the user sees it: where it is, and its figures once done."""

    id: str
    status: BacktestStatus
    stage: str
    progress: float  # 0..1
    spec: BacktestSpec
    summary: BacktestSummary | None
    error: str | None  # why it failed (a catalog key part)
    created_at: datetime
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status in (BacktestStatus.DONE, BacktestStatus.FAILED)

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @classmethod
    def of(cls, row: Backtest, now: datetime | None = None) -> BacktestJob:
        status, stage, error = BacktestStatus(row.status), row.stage, row.error
        lost = stale_error(status, row.created_at, row.heartbeat_at, now or utcnow())
        if lost is not None:  # its worker is gone: it will never finish
            status, stage, error = BacktestStatus.FAILED, "failed", lost
        return cls(
            id=row.id,
            status=status,
            stage=stage,
            progress=float(row.progress or 0.0),
            spec=BacktestSpec.from_json(row.spec),
            summary=BacktestSummary.from_json(row.summary) if row.summary else None,
            error=error,
            created_at=row.created_at,
            finished_at=row.finished_at,
        )


@dataclass(frozen=True)
class BotChoice:
    id: int
    name: str
    strategy: str
    symbols: list[str]


@dataclass(frozen=True)
class BacktestChoices:
    """What the guided /backtest offers this user."""

    plan: str
    max_days: int
    bots: list[BotChoice]
    strategies: list[str]  # backtestable strategies allowed on the plan


def _option_decimal(options: Mapping[str, str], name: str) -> str | None:
    value = options.get(name)
    return None if value is None else str(value).replace(",", ".")


def risk_from_options(options: Mapping[str, str], base: RiskSettings) -> RiskSettings:
    values: dict[str, Any] = {
        attr: getattr(base, attr) for attr in RISK_OPTIONS.values()
    }
    for option, attr in RISK_OPTIONS.items():
        if option not in options:
            continue
        raw = _option_decimal(options, option)
        if attr == "max_position":
            values[attr] = positive_amount(raw, option)
        else:
            values[attr] = positive_pct(raw, option)
    return replace(base, **values)


def _strategy_parameters(options: Mapping[str, str]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k not in OPTIONS}


def _day_text(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def period_end(last_day: date, *, now_ms: int | None = None) -> int:
    """The end (ms, UTC) of a period whose last day is ``last_day``: the end of that day, or
    now when that day is today; UserError when it is still to come.
    """
    now = int(time.time() * 1000) if now_ms is None else now_ms
    end = int(datetime(last_day.year, last_day.month, last_day.day, tzinfo=UTC).timestamp() * 1000)
    end += DAY_MS
    if end - DAY_MS > now:
        raise UserError("backtest_end_in_future", end=last_day.isoformat())
    return min(end, now)


def backtest_spec(
    strategy: str,
    symbol: str,
    days: int,
    *,
    parameters: Mapping[str, Any] | None = None,
    exchange: str = DEFAULT_EXCHANGE,
    timeframe: str = DEFAULT_TIMEFRAME,
    capital: Decimal | str | int = DEFAULT_CAPITAL,
    risk: RiskSettings | None = None,
    end_ms: int | None = None,
    bot: str | None = None,
    offline: bool = False,
) -> BacktestSpec:
    """A validated spec for ``days`` days up to ``end_ms`` (default: now); UserError if not."""
    name = strategy.strip().lower()
    if name not in STRATEGIES:
        choices = ", ".join(s for s in STRATEGIES if s not in NOT_BACKTESTABLE)
        raise UserError("unknown_strategy", strategy=strategy[:32], choices=choices)
    if name in NOT_BACKTESTABLE:
        raise UserError("backtest_not_possible", strategy=name)
    exchange = exchange.strip().lower()
    if exchange not in EXCHANGES:
        raise UserError("unknown_exchange", exchange=exchange[:32], choices=", ".join(EXCHANGES))
    if timeframe not in TIMEFRAME_MS:
        raise UserError("bad_timeframe", choices=", ".join(TIMEFRAME_MS))
    values = validated_parameters(get_strategy(name), dict(parameters or {}))
    days = parse_period(days)
    step = TIMEFRAME_MS[timeframe]
    now = int(time.time() * 1000)
    if end_ms is not None and end_ms > now:
        # No candle of the future exists: a backtest ending there would quietly be shorter.
        raise UserError("backtest_end_in_future", end=_day_text(end_ms - 1))
    end = now if end_ms is None else end_ms
    end = end // step * step  # whole candles: the cache keys stay the same within a candle
    return BacktestSpec(
        exchange=exchange,
        symbol=normalize_symbol(symbol),
        timeframe=timeframe,
        strategy=name,
        parameters=values,
        capital=parse_capital(capital),
        start_ms=end - days * DAY_MS,
        end_ms=end,
        days=days,
        risk=risk or RiskSettings(),
        bot=bot,
        offline=offline,
    )


async def _bot(app: App, user_id: int, ref: str | int) -> Bot | None:
    try:
        condition = parse_bot_ref(ref).condition()
    except UserError:
        return None  # not a bot's id or name: maybe a strategy's
    async with app.database.sessions() as session:
        query = select(Bot).where(Bot.user_id == user_id, Bot.is_active, condition)
        return await session.scalar(query.limit(1))


async def resolve_spec(
    app: App, user_id: int, request: BacktestRequest, *, end_ms: int | None = None
) -> tuple[BacktestSpec, int | None]:
    """The spec of ``request`` for this user, and the bot it comes from (if any)."""
    options = {str(k).strip().lower(): str(v).strip() for k, v in request.options.items()}
    days = parse_period(request.period if request.period is not None else DEFAULT_DAYS)
    bot = await _bot(app, user_id, request.target)
    timeframe = options.get("timeframe") or options.get("tf")
    if bot is not None:
        symbol = request.symbol or bot.symbols[0]
        parameters = {**bot.parameters, **_strategy_parameters(options)}
        base_risk = RiskSettings(
            stop_loss_pct=bot.stop_loss_pct,
            take_profit_pct=bot.take_profit_pct,
            max_position=bot.max_position,
            daily_loss_limit_pct=bot.daily_loss_limit_pct,
        )
        spec = backtest_spec(
            bot.strategy, symbol, days, parameters=parameters,
            exchange=options.get("exchange") or bot.exchange,
            timeframe=timeframe or bot.timeframe,
            capital=_option_decimal(options, "capital") or bot.capital,
            risk=risk_from_options(options, base_risk), end_ms=end_ms, bot=bot.name,
            offline=app.settings.market_data == "replay",
        )  # fmt: skip
        return spec, bot.id
    strategy = await backtest_target(app, user_id, request.target)
    assert isinstance(strategy, str)  # not a bot: checked above
    if request.symbol is None:
        raise UserError("missing_argument", usage="/backtest <strategy> <symbol> <period>")
    parameters = _strategy_parameters(options)
    exchange = options.get("exchange") or DEFAULT_EXCHANGE
    symbol = normalize_symbol(request.symbol)
    parameters = await suggested_parameters(app, exchange.lower(), symbol, strategy, parameters)
    spec = backtest_spec(
        strategy, symbol, days, parameters=parameters, exchange=exchange,
        timeframe=timeframe or DEFAULT_TIMEFRAME,
        capital=_option_decimal(options, "capital") or DEFAULT_CAPITAL,
        risk=risk_from_options(options, RiskSettings()), end_ms=end_ms,
        offline=app.settings.market_data == "replay",
    )  # fmt: skip
    return spec, None


def _limit_error(exc: LimitReached) -> UserError:
    limits = limits_of(exc.plan)
    field_name = "max_backtest_days" if exc.limit == "backtest_days" else "max_concurrent_backtests"
    better = next_plan_with_more(limits, field_name)
    days = exc.limit == "backtest_days"
    # Keys written out (not composed): the test of web/errors.py reads them from the source.
    if better is None:
        return UserError(
            "backtest_period_limit_top" if days else "backtest_concurrency_limit_top",
            maximum=exc.maximum,
            current=exc.current,
        )
    return UserError(
        "backtest_period_limit" if days else "backtest_concurrency_limit",
        plan=str(exc.plan),
        maximum=exc.maximum,
        current=exc.current,
        next_plan=better.title,
        next_maximum=getattr(better, field_name),
    )


def check_period_in_plan(plan: str, days: int) -> None:
    """UserError (naming the plan that allows it) if ``days`` is longer than the plan backtests."""
    limits = limits_of(plan)
    if days > limits.max_backtest_days:
        raise _limit_error(
            LimitReached("backtest_days", limits.plan, limits.max_backtest_days, days)
        )


async def start_backtest(
    app: App,
    user_id: int,
    request: BacktestRequest,
    *,
    end_ms: int | None = None,
    language: str | None = None,
) -> BacktestJob:
    """Validate ``request``, check the plan's limits, queue the job and hand it to the engine.

    Limits: the period may not exceed the plan's ``max_backtest_days``, and at most
    ``max_concurrent_backtests`` of the user's backtests may be queued or running.
    Free-plan users backtest the strategies their plan includes. The chart is drawn in
    ``language`` (the chat's; by default the user's own setting, else English).
    """
    spec, bot_id = await resolve_spec(app, user_id, request, end_ms=end_ms)
    await check_symbol(app, spec)
    now = utcnow()
    async with app.database.transaction() as session:
        await expire_stale_jobs(session, user_id, now)  # a write first: see its docstring
        user = await session.get(User, user_id, with_for_update=True)
        assert user is not None
        plan = plan_in_force(app.settings, user.plan)
        check_strategy_in_plan(plan, spec.strategy)
        words = chart_text(language or user.language or DEFAULT_LANGUAGE)
        spec = replace(spec, chart_text=words)
        limits = limits_of(plan)
        active = await session.scalar(
            select(func.count())
            .select_from(Backtest)
            .where(Backtest.user_id == user_id, Backtest.status.in_(ACTIVE))
        )
        try:
            check_backtest_allowed(limits, days=spec.days, active=int(active or 0))
        except LimitReached as exc:
            raise _limit_error(exc) from None
        row = Backtest(
            id=uuid.uuid4().hex,
            user_id=user_id,
            bot_id=bot_id,
            spec=spec.to_json(),
            status=BacktestStatus.QUEUED,
            stage="queued",
            progress=0.0,
            created_at=now,
        )
        session.add(row)
        await _forget_old(session, user_id)
        await session.flush()
        job = BacktestJob.of(row, now)
    try:
        await app.backtests.submit(job.id)
    except Exception:
        async with app.database.transaction() as session:
            await session.execute(
                update(Backtest)
                .where(Backtest.id == job.id, Backtest.status == BacktestStatus.QUEUED)
                .values(status=BacktestStatus.FAILED, stage="failed", error="unavailable",
                        finished_at=utcnow())
            )  # fmt: skip
        raise UserError("backtest_unavailable") from None
    return job


async def _forget_old(session: Any, user_id: int) -> None:
    """Keep the user's latest finished backtests only (each holds a chart)."""
    keep = (
        select(Backtest.id)
        .where(Backtest.user_id == user_id, Backtest.status.not_in(ACTIVE))
        .order_by(Backtest.created_at.desc())
        .limit(KEEP_FINISHED)
    )
    kept = set((await session.scalars(keep)).all())
    old = select(Backtest.id).where(Backtest.user_id == user_id, Backtest.status.not_in(ACTIVE))
    gone = [job_id for job_id in (await session.scalars(old)).all() if job_id not in kept]
    if gone:
        await session.execute(delete(Backtest).where(Backtest.id.in_(gone)))


async def get_backtest(app: App, user_id: int, job_ref: str | None = None) -> BacktestJob:
    """One of the user's backtests: by id (or its first characters), else the latest."""
    async with app.database.sessions() as session:
        query = select(Backtest).where(Backtest.user_id == user_id)
        ref = (job_ref or "").strip().lower()
        if ref:
            if not re.fullmatch(r"[0-9a-f]{4,32}", ref):
                raise UserError("backtest_not_found", job=ref[:32])
            query = query.where(Backtest.id.startswith(ref))
        row = await session.scalar(query.order_by(Backtest.created_at.desc()).limit(1))
    if row is None:
        raise UserError("backtest_not_found", job=ref[:32] or "—")
    return BacktestJob.of(row)


async def backtest_chart(app: App, user_id: int, job_id: str) -> bytes | None:
    """The PNG of a finished backtest of the user, if it has one."""
    async with app.database.sessions() as session:
        png = await session.scalar(
            select(Backtest.chart_png).where(Backtest.id == job_id, Backtest.user_id == user_id)
        )
    return png


async def notify_when_done(app: App, user_id: int, job_id: str) -> bool:
    """Nobody waits in a chat any more: have the engine say when it is done (outbox).

    False when it finished already (then the caller shows the result itself).
    """
    async with app.database.transaction() as session:
        result = await session.execute(
            update(Backtest)
            .where(
                Backtest.id == job_id,
                Backtest.user_id == user_id,
                Backtest.status.in_(ACTIVE),
            )
            .values(notify_when_done=True)
        )
    return int(getattr(result, "rowcount", 0) or 0) == 1


@dataclass(frozen=True)
class FollowedBacktest:
    """Where following a job ended: finished, or handed over to the outbox."""

    job: BacktestJob
    handed_over: bool  # True: the engine will say when it is done (notification outbox)


async def _pause(seconds: float, stopping: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=seconds)


async def follow_backtest(
    app: App,
    user_id: int,
    job: BacktestJob,
    *,
    on_progress: Callable[[BacktestJob], Awaitable[None]] | None = None,
    stopping: asyncio.Event | None = None,
    wait_seconds: float = FOLLOW_SECONDS,
) -> FollowedBacktest:
    """Follow ``job`` until it finishes, telling ``on_progress`` each state it reads.

    Nobody to tell (no ``on_progress``), the caller ``stopping`` (a shutdown) or
    ``wait_seconds`` gone: the job is handed over to the outbox (`notify_when_done`)
    unless it finished meanwhile. The caller renders what it gets back.
    """
    if on_progress is None:
        if await notify_when_done(app, user_id, job.id):
            return FollowedBacktest(job, handed_over=True)
        return FollowedBacktest(await get_backtest(app, user_id, job.id), handed_over=False)
    stopping = stopping or asyncio.Event()
    deadline = time.monotonic() + wait_seconds
    delay = FIRST_POLL_SECONDS
    while not job.finished:
        await on_progress(job)
        if stopping.is_set() or time.monotonic() >= deadline:
            if await notify_when_done(app, user_id, job.id):
                return FollowedBacktest(job, handed_over=True)
        else:
            await _pause(delay, stopping)
            delay = POLL_SECONDS
        job = await get_backtest(app, user_id, job.id)
    return FollowedBacktest(job, handed_over=False)


async def backtest_choices(app: App, user_id: int) -> BacktestChoices:
    """What a guided /backtest offers: the user's bots, the strategies and the longest period."""
    async with app.database.sessions() as session:
        user = await session.get(User, user_id)
        assert user is not None
        bots = (
            await session.scalars(
                select(Bot).where(Bot.user_id == user_id, Bot.is_active).order_by(Bot.id)
            )
        ).all()
    plan = plan_in_force(app.settings, user.plan)
    limits = limits_of(plan)
    return BacktestChoices(
        plan=str(plan),
        max_days=limits.max_backtest_days,
        bots=[
            BotChoice(b.id, b.name, b.strategy, list(b.symbols))
            for b in bots
            if b.strategy not in NOT_BACKTESTABLE
        ],
        strategies=[
            name
            for name, strategy in STRATEGIES.items()
            if name not in NOT_BACKTESTABLE
            and strategy_allowed(limits, strategy_is_basic=strategy.info.basic)
        ],
    )


async def check_symbol(app: App, spec: BacktestSpec) -> None:
    """UserError unless the exchange lists the symbol (see `check_listed`)."""
    await check_listed(app.pool, spec)


async def check_listed(pool: ClientPool, spec: BacktestSpec) -> None:
    """UserError unless ``spec``'s exchange lists its symbol: by the exchange's markets, or
    offline (or unreachable) by the shipped catalogue. Synthetic data is no excuse to
    backtest a pair nobody trades.
    """
    if not await symbol_listed(pool, spec.exchange, spec.symbol, offline=spec.offline):
        raise UserError("unknown_symbol", symbol=spec.symbol, exchange=spec.exchange)


async def backtest_target(app: App, user_id: int, target: str | int) -> BotChoice | str:
    """What ``target`` names for this user: one of their bots, else a strategy's name."""
    bot = await _bot(app, user_id, target)
    if bot is not None:
        return BotChoice(bot.id, bot.name, bot.strategy, list(bot.symbols))
    name = str(target).strip().lower()
    if name in NOT_BACKTESTABLE:
        raise UserError("backtest_not_possible", strategy=name)
    if isinstance(target, int) or name not in STRATEGIES:
        raise UserError(
            "backtest_unknown_target",
            target=str(target)[:32],
            choices=", ".join(s for s in STRATEGIES if s not in NOT_BACKTESTABLE),
        )
    return name
