"""How much of their plan a user uses (for limit checks and /plan)."""

from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.plans import Usage
from db.models import Bot, ExchangeCredential


async def plan_usage(session: AsyncSession, user_id: int) -> Usage:
    exchanges = await session.scalar(
        select(func.count(func.distinct(ExchangeCredential.exchange))).where(
            ExchangeCredential.user_id == user_id
        )
    )
    symbol_lists = (await session.scalars(_active_symbols(user_id))).all()
    symbols = {s for symbols in symbol_lists for s in symbols}
    return Usage(exchanges=int(exchanges or 0), symbols=len(symbols), bots=len(symbol_lists))


async def user_symbols(session: AsyncSession, user_id: int) -> set[str]:
    lists = (await session.scalars(_active_symbols(user_id))).all()
    return {s for symbols in lists for s in symbols}


def _active_symbols(user_id: int) -> Select[list[str]]:
    """Each bot's symbols; a deleted bot counts against no plan."""
    return select(Bot.symbols).where(Bot.user_id == user_id, Bot.is_active)
