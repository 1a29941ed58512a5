"""/backtest compare: several strategies or parameter sets on one pair and period, side by side.

``/backtest compare BTC/USDT 90d rsi sma_crossover sma_crossover:fast=5,slow=30``: each
contender is a strategy's name, with ``:name=value,name=value`` for other parameters
than its defaults; ``key=value`` words without a colon (``capital=500``, ``tf=5m``,
``exchange=bybit``, ``stop_loss=2``...) apply to every contender. The candles are
fetched once; each contender runs with the same capital and risk rules; the answer is
their figures and one chart of their equity curves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from db.models import User
from engine.backtest.candles import HistoricalCandles
from engine.backtest.compare import ComparedRun, compare
from engine.backtest.summary import BacktestSpec, Source
from engine.risk import RiskSettings
from engine.strategies.registry import get_strategy
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.i18n import chart_text
from robotrader.languages import DEFAULT_LANGUAGE
from robotrader.plans import plan_in_force
from robotrader.use_cases.backtests import (
    DEFAULT_CAPITAL,
    DEFAULT_DAYS,
    DEFAULT_EXCHANGE,
    DEFAULT_TIMEFRAME,
    backtest_spec,
    check_period_in_plan,
    check_symbol,
    parse_period,
    risk_from_options,
)
from robotrader.use_cases.bots import check_strategy_in_plan
from robotrader.use_cases.research_runs import (
    ProgressReport,
    history_of,
    load_candles,
    run_reported,
)

MIN_CONTENDERS, MAX_CONTENDERS = 2, 6


@dataclass(frozen=True)
class CompareRequest:
    symbol: str
    period: str | int | None
    contenders: Sequence[str]  # "rsi", "sma_crossover:fast=5,slow=30"
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Comparison:
    specs: tuple[BacktestSpec, ...]  # one per contender, same market, period, capital, risk
    runs: tuple[ComparedRun, ...]
    png: bytes
    source: Source
    candles: int
    first_candle_ms: int
    last_candle_ms: int


def _contender(word: str) -> tuple[str, dict[str, str]]:
    name, _, rest = word.partition(":")
    params: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError("compare_bad_contender", value=word[:40])
        params[key.strip().lower()] = value.strip()
    return name.strip().lower(), params


def comparison_specs(
    symbol: str,
    days: int,
    contenders: Sequence[str],
    *,
    options: Mapping[str, str] | None = None,
    end_ms: int | None = None,
    offline: bool = False,
) -> tuple[BacktestSpec, ...]:
    """One validated spec per contender, all on the same market and period; UserError if not."""
    if not MIN_CONTENDERS <= len(contenders) <= MAX_CONTENDERS:
        raise UserError(
            "compare_contenders", count=len(contenders), minimum=MIN_CONTENDERS,
            maximum=MAX_CONTENDERS,
        )  # fmt: skip
    options = {str(k).strip().lower(): str(v).strip() for k, v in (options or {}).items()}
    risk = risk_from_options(options, RiskSettings())
    specs = []
    for word in contenders:
        name, params = _contender(word)
        spec = backtest_spec(
            name, symbol, days, parameters=params,
            exchange=options.get("exchange") or DEFAULT_EXCHANGE,
            timeframe=options.get("timeframe") or options.get("tf") or DEFAULT_TIMEFRAME,
            capital=(options.get("capital") or str(DEFAULT_CAPITAL)).replace(",", "."),
            risk=risk, end_ms=end_ms, offline=offline,
        )  # fmt: skip
        specs.append(spec)
    return tuple(specs)


async def run_comparison(
    history: HistoricalCandles,
    specs: Sequence[BacktestSpec],
    report: ProgressReport | None = None,
    *,
    language: str = DEFAULT_LANGUAGE,
) -> Comparison:
    """Fetch the candles once, run every contender on them, draw their equity curves."""
    first = specs[0]
    loaded = await load_candles(history, first, report)
    candles = loaded.candles

    def work(progress: Callable[[float], None]) -> tuple[list[ComparedRun], bytes]:
        from engine.backtest.compare_chart import render_comparison_chart  # matplotlib

        runs = compare(
            candles, [(get_strategy(s.strategy), s.parameters) for s in specs],
            capital=first.capital, risk=first.risk, progress=progress,
        )  # fmt: skip
        return runs, render_comparison_chart(candles, runs, chart_text(language))

    runs, png = await run_reported(work, report, "simulating")
    return Comparison(
        specs=tuple(specs),
        runs=tuple(runs),
        png=png,
        source=loaded.source,
        candles=len(candles),
        first_candle_ms=int(candles.time[0]),
        last_candle_ms=int(candles.time[-1]),
    )


async def compare_for_user(
    app: App,
    user_id: int,
    request: CompareRequest,
    report: ProgressReport | None = None,
    *,
    language: str = DEFAULT_LANGUAGE,
) -> Comparison:
    """/backtest compare for this user: the plan's period and strategies, then the runs.

    ``language`` is the chat's: the chart's words are in the language of the reply.
    """
    days = parse_period(request.period if request.period is not None else DEFAULT_DAYS)
    specs = comparison_specs(
        request.symbol, days, request.contenders, options=request.options,
        offline=app.settings.market_data == "replay",
    )  # fmt: skip
    async with app.database.sessions() as session:
        user = await session.get(User, user_id)
        assert user is not None
        plan = str(plan_in_force(app.settings, user.plan))
    for spec in specs:
        check_strategy_in_plan(plan, spec.strategy)
    check_period_in_plan(plan, days)
    await check_symbol(app, specs[0])
    return await run_comparison(history_of(app), specs, report, language=language)
