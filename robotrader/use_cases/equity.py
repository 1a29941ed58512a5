"""The equity curve: realised profit and loss over time, summed exactly (Decimal)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from db.models import Trade
from robotrader.app import App


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
