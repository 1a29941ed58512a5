"""/optimize: search a strategy's parameters on one pair and period, judged out-of-sample.

``/optimize sma_crossover BTC/USDT 90d`` searches every parameter over its declared
range; ``fast=9`` fixes one, ``fast=5..30`` narrows one, ``split=60`` makes the first
60 % in-sample (default 70), ``values=5`` takes up to 5 values per parameter (default
8); ``capital``, ``tf``, ``exchange``, ``stop_loss``, ``take_profit``... as /backtest.

Rules (engine.backtest.optimize does the math):

- the plan bounds the search: ``max_optimize_sets`` sets (Free 20, Pro 200, Premium
  1000) and the period to ``max_backtest_days``; a grid too big for the plan is cut
  to fewer values per parameter, and the result says so with the plan that searches
  more (``OptimizationReport.more_with``);
- parameters that only make sense around the live price (a grid's range) are not
  searched unless given as a range: they start from the price, as /newbot does;
- the strategy must be in the user's plan and backtestable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from billing.plans import PlanLimits, limits_of, next_plan_with_more
from db.models import User
from engine.backtest.candles import HistoricalCandles
from engine.backtest.optimize import (
    DEFAULT_IN_SAMPLE,
    DEFAULT_VALUES,
    Optimization,
    ParameterGrid,
    optimize,
    parameter_grid,
)
from engine.backtest.summary import BacktestSpec, Source
from engine.risk import RiskSettings
from engine.strategies.base import ParameterError, ParamValue
from engine.strategies.registry import get_strategy
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.plans import plan_in_force
from robotrader.use_cases.backtests import (
    DEFAULT_CAPITAL,
    DEFAULT_DAYS,
    DEFAULT_EXCHANGE,
    DEFAULT_TIMEFRAME,
    OPTIONS,
    backtest_spec,
    check_period_in_plan,
    check_symbol,
    parse_period,
    risk_from_options,
)
from robotrader.use_cases.bots import (
    PRICE_RELATIVE_DEFAULTS,
    check_strategy_in_plan,
    normalize_symbol,
    suggested_parameters,
)
from robotrader.use_cases.research_runs import (
    ProgressReport,
    history_of,
    load_candles,
    run_reported,
)

SEARCH_OPTIONS = frozenset({"split", "values"})
RANGE_SEPARATOR = ".."
MIN_SPLIT, MAX_SPLIT = 50, 90  # in-sample percent
MAX_VALUES = 20


@dataclass(frozen=True)
class OptimizeRequest:
    """What the user typed: ``strategy``, ``symbol``, ``period`` and ``key=value`` options."""

    strategy: str
    symbol: str | None = None
    period: str | int | None = None
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OptimizationSetup:
    """A validated search: the market and period (``spec``), the grid, the split."""

    spec: BacktestSpec  # parameters: the fixed ones (and defaults) of the searched strategy
    grid: ParameterGrid
    in_sample_share: float
    plan: str | None  # the user's plan; None on the command line (no plans there)
    more_with: PlanLimits | None  # the cheapest plan that searches more sets, if cut


@dataclass(frozen=True)
class OptimizationReport:
    setup: OptimizationSetup
    result: Optimization
    source: Source
    candles: int
    first_candle_ms: int
    last_candle_ms: int


def _number(param_kind: type, raw: str, name: str) -> Any:
    try:
        return param_kind(Decimal(raw.replace(",", ".").strip()))
    except (InvalidOperation, ValueError):
        raise UserError("bad_parameter", problem="not_a_number", name=name) from None


def _search_options(
    strategy: str, options: Mapping[str, str]
) -> tuple[dict[str, ParamValue], dict[str, tuple[ParamValue, ParamValue]], float, int]:
    """Fixed values, ranges, the in-sample share and values per parameter, validated."""
    params = {p.name: p for p in get_strategy(strategy).info.params}
    fixed: dict[str, ParamValue] = {}
    ranges: dict[str, tuple[ParamValue, ParamValue]] = {}
    for name, raw in options.items():
        if name in OPTIONS or name in SEARCH_OPTIONS:
            continue
        param = params.get(name)
        if param is None:
            raise UserError(
                "bad_parameter", problem="unknown", names=name[:32], known=", ".join(params) or "—"
            )
        try:
            if RANGE_SEPARATOR in raw:
                low, _, high = raw.partition(RANGE_SEPARATOR)
                low_value = param.validate(_number(param.kind, low, name))
                high_value = param.validate(_number(param.kind, high, name))
                if low_value > high_value:
                    raise UserError("optimize_bad_range", name=name, value=raw[:32])
                ranges[name] = (low_value, high_value)
            else:
                fixed[name] = param.validate(_number(param.kind, raw, name))
        except ParameterError as exc:
            raise UserError("bad_parameter", problem=exc.problem, **exc.args_) from None
    split = options.get("split", str(round(DEFAULT_IN_SAMPLE * 100)))
    values = options.get("values", str(DEFAULT_VALUES))
    if not split.strip().isdigit() or not MIN_SPLIT <= int(split) <= MAX_SPLIT:
        raise UserError(
            "optimize_bad_split", value=split[:20], minimum=MIN_SPLIT, maximum=MAX_SPLIT
        )
    if not values.strip().isdigit() or not 2 <= int(values) <= MAX_VALUES:
        raise UserError("optimize_bad_values", value=values[:20], maximum=MAX_VALUES)
    return fixed, ranges, int(split) / 100, int(values)


def optimization_setup(
    strategy: str,
    symbol: str,
    days: int,
    *,
    options: Mapping[str, str] | None = None,
    limit: int,
    start_from: Mapping[str, ParamValue] | None = None,
    end_ms: int | None = None,
    offline: bool = False,
    plan: str | None = None,
    limits: PlanLimits | None = None,
) -> OptimizationSetup:
    """A validated search of ``strategy`` on ``symbol`` over ``days`` days, at most ``limit`` sets.

    ``start_from`` holds the values of the parameters that are not searched unless asked
    (a grid's range, from the live price); ``limits`` (the user's plan) names the plan
    that allows more when the grid is cut. UserError on anything wrong.
    """
    options = {str(k).strip().lower(): str(v).strip() for k, v in (options or {}).items()}
    spec = backtest_spec(
        strategy, symbol, days, exchange=options.get("exchange") or DEFAULT_EXCHANGE,
        timeframe=options.get("timeframe") or options.get("tf") or DEFAULT_TIMEFRAME,
        capital=(options.get("capital") or str(DEFAULT_CAPITAL)).replace(",", "."),
        risk=risk_from_options(options, RiskSettings()), end_ms=end_ms, offline=offline,
    )  # fmt: skip
    fixed, ranges, share, values = _search_options(spec.strategy, options)
    for name, value in (start_from or {}).items():
        if name not in ranges:
            fixed.setdefault(name, value)
    engine_strategy = get_strategy(spec.strategy)
    grid = parameter_grid(engine_strategy, limit=limit, fixed=fixed, ranges=ranges, values=values)
    if not grid.sets:
        raise UserError("optimize_no_sets", strategy=spec.strategy)
    more_with = None
    if grid.truncated and limits is not None:
        more_with = next_plan_with_more(limits, "max_optimize_sets")
    spec = BacktestSpec(**{**spec.__dict__, "parameters": {**spec.parameters, **fixed}})
    return OptimizationSetup(spec, grid, share, plan, more_with)


async def run_optimization(
    history: HistoricalCandles, setup: OptimizationSetup, report: ProgressReport | None = None
) -> OptimizationReport:
    """Fetch the candles once and run the search in a thread (``report`` gets its progress)."""
    loaded = await load_candles(history, setup.spec, report)
    candles = loaded.candles
    strategy = get_strategy(setup.spec.strategy)

    def search(progress: Callable[[float], None]) -> Optimization:
        return optimize(
            candles, strategy, setup.grid.sets, capital=setup.spec.capital,
            risk=setup.spec.risk, in_sample_share=setup.in_sample_share, progress=progress,
        )  # fmt: skip

    result = await run_reported(search, report, "searching")
    return OptimizationReport(
        setup=setup,
        result=result,
        source=loaded.source,
        candles=len(candles),
        first_candle_ms=int(candles.time[0]),
        last_candle_ms=int(candles.time[-1]),
    )


async def optimize_for_user(
    app: App, user_id: int, request: OptimizeRequest, report: ProgressReport | None = None
) -> OptimizationReport:
    """/optimize for this user: the plan's limits (period, sets, strategy), then the search."""
    if request.symbol is None:
        raise UserError("missing_argument", usage="/optimize <strategy> <symbol> <period>")
    days = parse_period(request.period if request.period is not None else DEFAULT_DAYS)
    async with app.database.sessions() as session:
        user = await session.get(User, user_id)
        assert user is not None
        plan = str(plan_in_force(app.settings, user.plan))
    limits = limits_of(plan)
    name = request.strategy.strip().lower()
    options = {str(k).strip().lower(): str(v).strip() for k, v in request.options.items()}
    exchange = (options.get("exchange") or DEFAULT_EXCHANGE).lower()
    start_from: dict[str, ParamValue] = {}
    if name in PRICE_RELATIVE_DEFAULTS:
        symbol = normalize_symbol(request.symbol)
        suggested = await suggested_parameters(app, exchange, symbol, name)
        start_from = {k: suggested[k] for k in PRICE_RELATIVE_DEFAULTS[name]}
    setup = optimization_setup(
        name, request.symbol, days, options=options, limit=limits.max_optimize_sets,
        start_from=start_from, offline=app.settings.market_data == "replay", plan=plan,
        limits=limits,
    )  # fmt: skip
    check_strategy_in_plan(plan, setup.spec.strategy)
    check_period_in_plan(plan, days)
    await check_symbol(app, setup.spec)
    return await run_optimization(history_of(app), setup, report)
