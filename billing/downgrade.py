"""When a plan shrinks: pause (never delete) the bots over its limits, newest first."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.plans import PlanLimits
from db.models import Bot, BotStatus


async def bots_over_limits(
    session: AsyncSession, user_id: int, limits: PlanLimits, basic_strategies: frozenset[str]
) -> list[Bot]:
    """The bots that do not fit ``limits``, newest first (any status).

    Oldest bots are kept first: a user's longest-running setup survives a downgrade.
    """
    bots = (
        await session.scalars(
            select(Bot)
            .where(Bot.user_id == user_id, Bot.is_active)
            .order_by(Bot.created_at, Bot.id)
            .with_for_update()
        )
    ).all()
    kept: list[Bot] = []
    symbols: set[str] = set()
    over: list[Bot] = []
    for bot in bots:
        strategy_ok = limits.all_strategies or bot.strategy in basic_strategies
        new_symbols = symbols | set(bot.symbols)
        fits = (
            strategy_ok
            and len(kept) < limits.max_bots
            and (limits.max_symbols is None or len(new_symbols) <= limits.max_symbols)
        )
        if fits:
            kept.append(bot)
            symbols = new_symbols
        else:
            over.append(bot)
    return list(reversed(over))


async def pause_over_limits(
    session: AsyncSession, user_id: int, limits: PlanLimits, basic_strategies: frozenset[str]
) -> list[str]:
    """Pause the bots over the plan's limits; returns their names, newest first."""
    paused = []
    for bot in await bots_over_limits(session, user_id, limits, basic_strategies):
        if bot.status != BotStatus.RUNNING:
            continue
        bot.status = BotStatus.PAUSED
        bot.pause_reason = "plan_limit"
        paused.append(bot.name)
    return paused
