"""The daily summary: each user's realised PnL and open positions, at the hour they chose (UTC)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import String, cast, exists, func, literal, select

from db.models import Bot, Notification, Position, Trade, User
from db.notifications import DailySummaryNotice
from db.outbox import add_notification
from db.session import Database


async def write_daily_summaries(database: Database, now: datetime | None = None) -> int:
    """One summary per user with bots whose hour is now; safe to call any number of times.

    The dedupe key (user + date) makes repeated calls within the hour, from any
    number of workers, write each summary once.
    """
    now = now or datetime.now(UTC)
    day = now.date().isoformat()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    async with database.transaction() as session:
        users = (
            await session.scalars(
                select(User.id).where(
                    User.daily_summary_hour == now.hour,
                    exists().where(Bot.user_id == User.id),
                    ~exists().where(
                        Notification.dedupe_key
                        == literal("summary:") + cast(User.id, String) + literal(f":{day}")
                    ),
                )
            )
        ).all()
        if not users:
            return 0
        pnl: dict[int, list[Decimal]] = defaultdict(list)
        for user_id, value in await session.execute(
            select(Trade.user_id, Trade.pnl).where(
                Trade.user_id.in_(users), Trade.closed_at >= midnight
            )
        ):
            pnl[user_id].append(value)
        open_positions = dict(
            (
                await session.execute(
                    select(Position.user_id, func.count())
                    .where(Position.user_id.in_(users))
                    .group_by(Position.user_id)
                )
            ).all()
        )
        written = 0
        for user_id in users:
            written += await add_notification(
                session,
                user_id=user_id,
                notice=DailySummaryNotice(
                    date=day,
                    pnl=sum(pnl[user_id], Decimal(0)).quantize(Decimal("0.01")),
                    trades=len(pnl[user_id]),
                    open_positions=int(open_positions.get(user_id, 0)),
                ),
                dedupe_key=f"summary:{user_id}:{day}",
            )
        return written
