"""Backtest jobs: claim a queued row, run it with progress written as it goes, store the result.

A job is a row of ``backtests`` (db.models.Backtest) that a use case inserted as
*queued*. Whoever runs it (a Celery worker, or a thread of the embedded mode, see
``engine.backtest.queue``) calls `run_backtest_job`:

1. the row is claimed (*queued* -> *running*) by one conditional update, so a task
   delivered twice (Redis redelivers unacknowledged tasks) runs once;
2. the candles are loaded (``HistoricalCandles``: the disk cache, the exchange, or
   the replay feed offline), the bot's own strategy and risk code run over them
   (``run_backtest``) and the chart is drawn: the CPU-bound parts in a thread, so
   the event loop keeps writing the stage and the progress about once a second.
   That write is the job's heartbeat: a running job silent for ``STALE_AFTER`` has
   lost its worker and is reported as interrupted;
3. the figures (``BacktestSummary``) and the PNG are stored with the status in one
   transaction; if nobody waits for the job in a chat any more (``notify_when_done``),
   the notification is written to the outbox in that same transaction.

A failure stores an error key the chat translates (``no_candles``, ``exchange_error``,
``amount_out_of_range``, ``internal``...), never an exception text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Backtest, BacktestStatus
from db.notifications import BacktestDoneNotice, BacktestFailedNotice
from db.outbox import add_notification
from db.session import Database
from db.types import utcnow
from engine.backtest.candles import HistoricalCandles
from engine.backtest.chart_text import ChartText
from engine.backtest.runner import AmountOutOfRange, BacktestResult, run_backtest
from engine.backtest.summary import BacktestSpec, BacktestSummary, Source
from engine.exchanges.errors import ExchangeError
from engine.strategies.base import Candles
from engine.strategies.registry import get_strategy

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0
STALE_AFTER = timedelta(seconds=60)  # a running job silent this long has lost its worker
QUEUE_TIMEOUT = timedelta(minutes=15)  # a job no worker picked up in this long is given up
MIN_CANDLES = 2

# Where each stage sits on the overall progress bar (0..1).
STAGES: dict[str, tuple[float, float]] = {
    "candles": (0.0, 0.3),
    "simulating": (0.3, 0.9),
    "chart": (0.9, 1.0),
}

Progress = Callable[[str, float], None]  # (stage, fraction of that stage done)


class JobFailed(Exception):
    """A backtest that cannot give a result; ``key`` is what the user is told."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class Execution:
    candles: Candles
    result: BacktestResult
    source: Source


async def execute(
    spec: BacktestSpec,
    history: HistoricalCandles,
    progress: Progress | None = None,
    *,
    offline: bool = False,
) -> Execution:
    """Load the candles of ``spec`` and run the backtest over them (the simulation in a thread).

    Used by the jobs and, as it is, by ``robotrader backtest``.
    """

    def report(stage: str) -> Callable[[float], None] | None:
        if progress is None:
            return None
        return lambda fraction: progress(stage, fraction)

    strategy = get_strategy(spec.strategy)
    try:
        loaded = await history.history(
            spec.exchange,
            spec.symbol,
            spec.timeframe,
            spec.start_ms,
            spec.end_ms,
            offline=offline or spec.offline,
            progress=report("candles"),
        )
    except ExchangeError:
        raise JobFailed("exchange_error") from None
    if len(loaded.candles) < MIN_CANDLES:
        raise JobFailed("no_candles")
    try:
        result = await asyncio.to_thread(
            run_backtest,
            loaded.candles,
            strategy,
            spec.parameters,
            capital=spec.capital,
            risk=spec.risk,
            progress=report("simulating"),
        )
    except AmountOutOfRange:
        raise JobFailed("amount_out_of_range") from None
    return Execution(loaded.candles, result, loaded.source)


class ProgressWriter:
    """The latest stage and progress of a job (set from any thread), written about once a
    second by `run`: the progress bar users see, and the job's heartbeat.
    """

    def __init__(self, database: Database, job_id: str, interval: float) -> None:
        self.database = database
        self.job_id = job_id
        self.interval = interval
        self._state: tuple[str, float] = ("candles", 0.0)  # one object: set atomically

    def report(self, stage: str, fraction: float) -> None:
        start, end = STAGES[stage]
        self._state = (stage, start + (end - start) * min(max(fraction, 0.0), 1.0))

    async def run(self, stop: asyncio.Event) -> None:
        while True:
            await self.write()
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
                return
            except TimeoutError:
                continue

    async def write(self) -> None:
        stage, progress = self._state
        try:
            async with self.database.transaction() as session:
                await session.execute(
                    update(Backtest)
                    .where(Backtest.id == self.job_id, Backtest.status == BacktestStatus.RUNNING)
                    .values(stage=stage, progress=progress, heartbeat_at=utcnow())
                )
        except Exception:  # a database blip costs one progress write, not the job
            log.warning("backtest.progress_write_failed job=%s", self.job_id, exc_info=True)


async def _claim(database: Database, job_id: str) -> BacktestSpec | None:
    now = utcnow()
    async with database.transaction() as session:
        claimed = await session.execute(
            update(Backtest)
            .where(Backtest.id == job_id, Backtest.status == BacktestStatus.QUEUED)
            .values(
                status=BacktestStatus.RUNNING,
                stage="candles",
                progress=0.0,
                started_at=now,
                heartbeat_at=now,
                attempts=Backtest.attempts + 1,
            )
        )
        if _rowcount(claimed) != 1:
            return None
        spec = await session.scalar(select(Backtest.spec).where(Backtest.id == job_id))
    return BacktestSpec.from_json(spec) if spec is not None else None


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def _finish(
    database: Database,
    job_id: str,
    spec: BacktestSpec,
    *,
    summary: BacktestSummary | None = None,
    png: bytes | None = None,
    error: str | None = None,
) -> bool:
    """Store the outcome (and its notification, if nobody waits in a chat); False if the job
    was no longer ours (given up as interrupted meanwhile, or deleted).
    """
    now = utcnow()
    values: dict[str, Any] = {"finished_at": now, "heartbeat_at": now}
    if summary is not None:
        values |= {
            "status": BacktestStatus.DONE,
            "stage": "done",
            "progress": 1.0,
            "summary": summary.to_json(),
            "chart_png": png,
            "error": None,
        }
    else:
        values |= {"status": BacktestStatus.FAILED, "stage": "failed", "error": error}
    async with database.transaction() as session:
        # The write comes first: it takes the row (PostgreSQL) or the database (SQLite), so
        # what is read next cannot change before this transaction commits.
        stored = await session.execute(
            update(Backtest)
            .where(Backtest.id == job_id, Backtest.status == BacktestStatus.RUNNING)
            .values(**values)
        )
        if _rowcount(stored) != 1:
            return False
        row = (
            await session.execute(
                select(Backtest.user_id, Backtest.notify_when_done).where(Backtest.id == job_id)
            )
        ).one()
        if row.notify_when_done:
            await _notify(session, row.user_id, job_id, spec, summary, error)
    return True


async def _notify(
    session: AsyncSession,
    user_id: int,
    job_id: str,
    spec: BacktestSpec,
    summary: BacktestSummary | None,
    error: str | None,
) -> None:
    notice: BacktestDoneNotice | BacktestFailedNotice
    if summary is not None:
        notice = BacktestDoneNotice(
            job=job_id, strategy=spec.strategy, symbol=spec.symbol, days=spec.days,
            bot=spec.bot or "", pnl_pct=summary.total_pnl_pct, trades=summary.trade_count,
        )  # fmt: skip
    else:
        notice = BacktestFailedNotice(
            job=job_id, strategy=spec.strategy, symbol=spec.symbol, days=spec.days,
            bot=spec.bot or "", error=error or "internal",
        )  # fmt: skip
    await add_notification(session, user_id=user_id, notice=notice, dedupe_key=f"backtest:{job_id}")


async def run_backtest_job(
    database: Database,
    history: HistoricalCandles,
    job_id: str,
    *,
    offline: bool = False,
    heartbeat: float = HEARTBEAT_SECONDS,
) -> str:
    """Run the queued job ``job_id`` to its end; its final status, or ``skipped`` when it was
    not queued (run already, running elsewhere, given up, or deleted).
    """
    spec = await _claim(database, job_id)
    if spec is None:
        log.info("backtest.skipped job=%s", job_id)
        return "skipped"
    started = time.monotonic()
    writer = ProgressWriter(database, job_id, heartbeat)
    stop = asyncio.Event()
    writing = asyncio.create_task(writer.run(stop))
    summary: BacktestSummary | None = None
    png: bytes | None = None
    error: str | None = None
    try:
        execution = await execute(spec, history, writer.report, offline=offline)
        writer.report("chart", 0.0)
        from engine.backtest.chart import render_chart  # matplotlib: loaded where charts are drawn

        done = BacktestSummary.of(spec, execution.result, execution.source, execution.candles)
        # A job queued without the chart's words (before they travelled with it) shows keys.
        text = spec.chart_text or ChartText()
        png = await asyncio.to_thread(
            render_chart, execution.candles, execution.result, done, text
        )
        summary = done
    except JobFailed as failed:
        error = failed.key
    except Exception:
        log.exception("backtest.failed job=%s", job_id)
        error = "internal"
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await writing
    if not await _finish(database, job_id, spec, summary=summary, png=png, error=error):
        log.info("backtest.abandoned job=%s", job_id)
        return "skipped"
    status = BacktestStatus.DONE if summary is not None else BacktestStatus.FAILED
    log.info(
        "backtest.%s job=%s strategy=%s symbol=%s candles=%s trades=%s error=%s seconds=%.2f",
        status, job_id, spec.strategy, spec.symbol,
        summary.candles if summary else "-", summary.trade_count if summary else "-",
        error or "-", time.monotonic() - started,
    )  # fmt: skip
    return str(status)


def stale_error(
    status: str, created_at: datetime, heartbeat_at: datetime | None, now: datetime
) -> str | None:
    """Why a job that still looks queued or running will never finish, or None if it may."""
    if status == BacktestStatus.RUNNING and (heartbeat_at or created_at) < now - STALE_AFTER:
        return "interrupted"
    if status == BacktestStatus.QUEUED and created_at < now - QUEUE_TIMEOUT:
        return "expired"
    return None


async def expire_stale_jobs(session: AsyncSession, user_id: int, now: datetime) -> None:
    """Mark the user's jobs that lost their worker (or never got one) as failed.

    Also the first statement of a transaction that must count the user's jobs: as a
    write, it makes concurrent starts of one user wait for each other on SQLite too.
    """
    await session.execute(
        update(Backtest)
        .where(
            Backtest.user_id == user_id,
            Backtest.status == BacktestStatus.RUNNING,
            Backtest.heartbeat_at < now - STALE_AFTER,
        )
        .values(status=BacktestStatus.FAILED, stage="failed", error="interrupted", finished_at=now)
    )
    await session.execute(
        update(Backtest)
        .where(
            Backtest.user_id == user_id,
            Backtest.status == BacktestStatus.QUEUED,
            Backtest.created_at < now - QUEUE_TIMEOUT,
        )
        .values(status=BacktestStatus.FAILED, stage="failed", error="expired", finished_at=now)
    )
