"""The plan table (the product roadmap's): what each plan allows. Checked in the use cases."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from db.models import Plan


@dataclass(frozen=True)
class PlanLimits:
    plan: Plan
    title: str
    price_usd_month: Decimal
    max_exchanges: int | None  # None: unlimited
    max_symbols: int | None  # distinct symbols across all the user's bots
    max_bots: int
    all_strategies: bool  # False: basic strategies only
    rest_api: bool
    priority: int  # notification priority
    max_backtest_days: int
    max_concurrent_backtests: int
    max_optimize_sets: int  # parameter sets one /optimize may try


PLANS: dict[Plan, PlanLimits] = {
    Plan.FREE: PlanLimits(
        Plan.FREE, "Free", Decimal(0), max_exchanges=1, max_symbols=3, max_bots=1,
        all_strategies=False, rest_api=False, priority=0, max_backtest_days=30,
        max_concurrent_backtests=1, max_optimize_sets=20,
    ),
    Plan.PRO: PlanLimits(
        Plan.PRO, "Pro", Decimal(29), max_exchanges=3, max_symbols=20, max_bots=5,
        all_strategies=True, rest_api=False, priority=1, max_backtest_days=365,
        max_concurrent_backtests=2, max_optimize_sets=200,
    ),
    Plan.PREMIUM: PlanLimits(
        Plan.PREMIUM, "Premium", Decimal(99), max_exchanges=None, max_symbols=None, max_bots=50,
        all_strategies=True, rest_api=True, priority=2, max_backtest_days=3 * 365,
        max_concurrent_backtests=4, max_optimize_sets=1000,
    ),
}  # fmt: skip


def limits_of(plan: Plan | str) -> PlanLimits:
    return PLANS[Plan(plan)]


@dataclass(frozen=True)
class Usage:
    exchanges: int
    symbols: int
    bots: int


class LimitReached(Exception):
    """A plan limit would be exceeded: which one, the plan's maximum and the current usage."""

    def __init__(self, limit: str, plan: Plan, maximum: int, current: int) -> None:
        super().__init__(f"{limit} limit of the {plan} plan: {current}/{maximum}")
        self.limit = limit  # bots | symbols | exchanges | strategy
        self.plan = plan
        self.maximum = maximum
        self.current = current


def strategy_allowed(limits: PlanLimits, *, strategy_is_basic: bool) -> bool:
    """Whether the plan includes a strategy (basic ones are in every plan)."""
    return strategy_is_basic or limits.all_strategies


def check_bot_allowed(
    limits: PlanLimits, usage: Usage, *, new_symbols: int, strategy_is_basic: bool
) -> None:
    """Raise LimitReached if a new bot (adding ``new_symbols`` distinct symbols) breaks a limit."""
    if not strategy_allowed(limits, strategy_is_basic=strategy_is_basic):
        raise LimitReached("strategy", limits.plan, 0, 0)
    if usage.bots + 1 > limits.max_bots:
        raise LimitReached("bots", limits.plan, limits.max_bots, usage.bots)
    if limits.max_symbols is not None and usage.symbols + new_symbols > limits.max_symbols:
        raise LimitReached("symbols", limits.plan, limits.max_symbols, usage.symbols)


def check_exchange_allowed(limits: PlanLimits, usage: Usage, *, is_new_exchange: bool) -> None:
    if (
        is_new_exchange
        and limits.max_exchanges is not None
        and usage.exchanges + 1 > limits.max_exchanges
    ):
        raise LimitReached("exchanges", limits.plan, limits.max_exchanges, usage.exchanges)


def check_backtest_allowed(limits: PlanLimits, *, days: int, active: int) -> None:
    """Raise LimitReached if a backtest of ``days`` days, with ``active`` of the user's backtests
    queued or running already, is more than the plan allows.
    """
    if days > limits.max_backtest_days:
        raise LimitReached("backtest_days", limits.plan, limits.max_backtest_days, days)
    if active + 1 > limits.max_concurrent_backtests:
        raise LimitReached("backtests", limits.plan, limits.max_concurrent_backtests, active)


def next_plan_with_more(limits: PlanLimits, limit: str) -> PlanLimits | None:
    """The cheapest plan that allows more of ``limit`` (a PlanLimits field name), if any.

    ``None`` is unlimited: more than any number, and nothing is more than it.
    """
    mine = getattr(limits, limit)
    better = [
        p
        for p in PLANS.values()
        if mine is not None and (getattr(p, limit) is None or getattr(p, limit) > mine)
    ]
    return min(better, key=lambda p: p.price_usd_month) if better else None
