"""Daily summaries: written at the user's hour, once per day however often asked."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from db.models import Notification, User
from engine.daily_summary import write_daily_summaries
from engine.market_data.cache import MemoryCandleCache
from engine.market_data.feed import MarketDataFeed
from engine.tick import run_tick
from robotrader.app import App
from tests.engine.conftest import make_user, running_bot


async def test_summary_once_at_the_chosen_hour(app: App) -> None:
    user = await make_user(app)
    await make_user(app, name="no-bots")  # users without bots get no summary
    await running_bot(app, user)
    await run_tick(app.database, MarketDataFeed(app.pool, MemoryCandleCache(), mode="replay"))
    async with app.database.transaction() as session:
        row = await session.get(User, user)
        assert row is not None
        row.daily_summary_hour = 20
    at_eight = datetime(2026, 11, 25, 20, 5, tzinfo=UTC)
    assert (
        await write_daily_summaries(app.database, datetime(2026, 11, 25, 19, 59, tzinfo=UTC)) == 0
    )
    assert await write_daily_summaries(app.database, at_eight) == 1
    assert await write_daily_summaries(app.database, at_eight.replace(minute=30)) == 0
    async with app.database.sessions() as session:
        summary = await session.scalar(
            select(Notification).where(Notification.kind == "daily_summary")
        )
    assert summary is not None and summary.user_id == user
    assert summary.payload["open_positions"] == 1 and summary.payload["date"] == "2026-11-25"
