"""follow_backtest: a chat follows a job to its end, or hands it over to the outbox."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from db.models import Backtest, Plan
from robotrader.app import App
from robotrader.use_cases.backtests import (
    BacktestJob,
    BacktestRequest,
    follow_backtest,
    start_backtest,
)
from tests.robotrader.test_backtests import user_on


async def _job(app: App) -> tuple[int, BacktestJob]:
    user_id = await user_on(app, Plan.PRO)
    request = BacktestRequest("sma_crossover", symbol="BTC/USDT", period="2d")
    return user_id, await start_backtest(app, user_id, request)


async def _notify_flag(app: App, job_id: str) -> bool:
    async with app.database.sessions() as session:
        return bool(await session.scalar(select(Backtest.notify_when_done).where(
            Backtest.id == job_id)))  # fmt: skip


async def test_followed_to_the_end_with_progress(app: App) -> None:
    user_id, job = await _job(app)
    seen: list[BacktestJob] = []

    async def progress(current: BacktestJob) -> None:
        seen.append(current)

    followed = await follow_backtest(app, user_id, job, on_progress=progress, wait_seconds=60)
    assert not followed.handed_over and followed.job.finished and followed.job.summary
    assert seen and all(not j.finished for j in seen)
    assert not await _notify_flag(app, job.id)


async def test_nobody_to_tell_or_a_shutdown_hands_over_to_the_outbox(app: App) -> None:
    user_id, job = await _job(app)
    followed = await follow_backtest(app, user_id, job)
    if followed.handed_over:  # unless it was that quick
        assert await _notify_flag(app, job.id)
    else:
        assert followed.job.finished

    user_id, job = await _job(app)
    stopping = asyncio.Event()
    stopping.set()
    calls: list[BacktestJob] = []

    async def progress(current: BacktestJob) -> None:
        calls.append(current)

    followed = await follow_backtest(app, user_id, job, on_progress=progress, stopping=stopping)
    if followed.handed_over:
        assert len(calls) == 1 and await _notify_flag(app, job.id)
    else:
        assert followed.job.finished
