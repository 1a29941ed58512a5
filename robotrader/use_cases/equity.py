"""Equity: the user's realised PnL over time (summed exactly, Decimal), and one bot's chart."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from db.models import Trade
from db.types import utcnow
from engine.backtest.chart import TradeMark, render_equity_chart
from robotrader.app import App
from robotrader.use_cases.bots import show_bot
from robotrader.use_cases.portfolio import positions


@dataclass(frozen=True)
class EquityPoint:
    at: datetime
    value: Decimal  # cumulative realised PnL up to and including ``at``


async def equity_curve(app: App, user_id: int, *, max_points: int = 400) -> list[EquityPoint]:
    """Cumulative realised PnL after each closed trade, oldest first, starting from zero.

    Long histories are thinned to ``max_points`` (every point kept is exact; the
    last one is always the current total).
    """
    async with app.database.sessions() as session:
        rows = (
            await session.execute(
                select(Trade.closed_at, Trade.pnl)
                .where(Trade.user_id == user_id)
                .order_by(Trade.closed_at, Trade.id)
            )
        ).all()
    if not rows:
        return []
    total = Decimal(0)
    points = [EquityPoint(rows[0].closed_at, total)]
    for closed_at, pnl in rows:
        total += pnl
        points.append(EquityPoint(closed_at, total))
    if len(points) > max_points:
        step = len(points) / (max_points - 1)
        kept = [points[int(i * step)] for i in range(max_points - 1)]
        points = [*kept, points[-1]]
    return points


@dataclass(frozen=True)
class BotEquityChart:
    """One bot's equity (capital + realised PnL after each closed trade, and what is open now)."""

    bot: str
    mode: str
    capital: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal | None  # of its open positions, marked now; None when flat
    trades: int
    png: bytes | None  # None: nothing to draw yet (no closed trade, nothing open)


async def bot_equity_chart(app: App, user_id: int, bot_ref: str | int) -> BotEquityChart:
    """A PNG of one of the user's bots: its equity after each closed trade (won or lost
    marked), the open positions' unrealised PnL as the last point. Drawn in a thread.
    """
    bot = await show_bot(app, user_id, bot_ref)
    async with app.database.sessions() as session:
        rows = (
            await session.execute(
                select(Trade.closed_at, Trade.pnl)
                .where(Trade.bot_id == bot.id)
                .order_by(Trade.closed_at, Trade.id)
            )
        ).all()
    held = [p for p in await positions(app, user_id) if p.bot_id == bot.id]
    unrealized = sum((p.unrealized_pnl or Decimal(0) for p in held), Decimal(0)) if held else None
    realized = sum((pnl for _, pnl in rows), Decimal(0))
    if not rows and not held:
        return BotEquityChart(bot.name, str(bot.mode), bot.capital, realized, None, 0, None)
    start = min([bot.created_at, *(closed_at for closed_at, _ in rows[:1])])
    times: list[datetime] = [start]
    equity: list[Decimal] = [bot.capital]
    total = bot.capital
    for closed_at, pnl in rows:
        total += pnl
        times.append(closed_at)
        equity.append(total)
    if unrealized is not None:
        times.append(max(utcnow(), times[-1]))
        equity.append(total + unrealized)
    marks = [TradeMark(closed_at, pnl) for closed_at, pnl in rows]
    png = await asyncio.to_thread(render_equity_chart, times, equity, marks)
    return BotEquityChart(
        bot.name, str(bot.mode), bot.capital, realized, unrealized, len(rows), png
    )
