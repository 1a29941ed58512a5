"""Equity as a step line: the user's realised PnL over time, and one bot's equity chart.

Equity changes when a trade closes, not in between, so it is drawn as steps: the
value of a point holds until the next point. Both curves start when the bot (or the
user's first bot) was created and end now, whatever was traded: with no trade a flat
line, with one a flat line, a step at its close and a flat line to now. One rule
(`equity_steps`) makes both the dashboard's curve and ``/chart``'s PNG.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select

from db.models import Bot, Trade, User
from db.types import utcnow
from engine.backtest.chart import TradeMark, render_equity_chart
from robotrader import formatting
from robotrader.app import App
from robotrader.i18n import chart_text, translate
from robotrader.languages import DEFAULT_LANGUAGE
from robotrader.use_cases.bots import show_bot
from robotrader.use_cases.portfolio import positions


@dataclass(frozen=True)
class EquityPoint:
    at: datetime
    value: Decimal  # from ``at`` until the next point


def equity_steps(
    start: datetime,
    base: Decimal,
    closes: Sequence[tuple[datetime, Decimal]],
    now: datetime,
    unrealized: Decimal | None = None,
) -> list[EquityPoint]:
    """``base`` from ``start``, plus each close's PnL from its time on (``closes`` oldest
    first), up to ``now``; the last point adds ``unrealized`` (what is open, marked now).

    Summed exactly (Decimal). The first point is at ``start`` (or the first close, if
    earlier), the last at ``now`` (or the last close, if later): two points at least.
    """
    first = min([start, *(at for at, _ in closes[:1])])
    points = [EquityPoint(first, base)]
    total = base
    for at, pnl in closes:
        total += pnl
        points.append(EquityPoint(at, total))
    points.append(EquityPoint(max(now, points[-1].at), total + (unrealized or Decimal(0))))
    return points


@dataclass(frozen=True)
class EquityCurve:
    points: list[EquityPoint]  # steps (see equity_steps), two at least
    trades: int  # closed trades summed in it


async def equity_curve(app: App, user_id: int, *, max_points: int = 400) -> EquityCurve:
    """The user's cumulative realised PnL as steps, from their first bot's creation to now.

    Long histories are thinned to ``max_points`` (every point kept is exact; the
    first and the last, now's total, always are).
    """
    async with app.database.sessions() as session:
        rows = (
            await session.execute(
                select(Trade.closed_at, Trade.pnl)
                .where(Trade.user_id == user_id)
                .order_by(Trade.closed_at, Trade.id)
            )
        ).all()
        first_bot = await session.scalar(
            select(func.min(Bot.created_at)).where(Bot.user_id == user_id)
        )
        joined = await session.scalar(select(User.created_at).where(User.id == user_id))
    start = first_bot or joined or utcnow()
    points = equity_steps(start, Decimal(0), [(at, pnl) for at, pnl in rows], utcnow())
    if len(points) > max_points:
        step = (len(points) - 1) / (max_points - 1)
        points = [points[round(i * step)] for i in range(max_points)]
    return EquityCurve(points, len(rows))


@dataclass(frozen=True)
class BotEquityChart:
    """One bot's equity (capital + realised PnL after each closed trade, and what is open now)."""

    bot: str
    mode: str
    capital: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal | None  # of its open positions, marked now; None when flat
    trades: int
    points: list[EquityPoint]  # the step line drawn
    png: bytes


async def bot_equity_chart(
    app: App, user_id: int, bot_ref: str | int, *, language: str = DEFAULT_LANGUAGE
) -> BotEquityChart:
    """A PNG of one of the user's bots, in ``language``: its equity as steps from its
    creation to now (won and lost trades marked, the open positions' unrealised PnL in
    the last point; with no trade yet, a flat line that says so). Drawn in a thread.
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
    closes = [(closed_at, pnl) for closed_at, pnl in rows]
    realized = sum((pnl for _, pnl in closes), Decimal(0))
    points = equity_steps(bot.created_at, bot.capital, closes, utcnow(), unrealized)
    title = translate(
        language,
        "chart.bot_title",
        bot=bot.name,
        equity=formatting.money(points[-1].value, language),
        start=formatting.day(points[0].at, language),
    )
    marks = [TradeMark(closed_at, pnl) for closed_at, pnl in closes]
    png = await asyncio.to_thread(
        render_equity_chart, points, marks, title=title, text=chart_text(language)
    )
    return BotEquityChart(
        bot.name, str(bot.mode), bot.capital, realized, unrealized, len(rows), points, png
    )
