"""Backtest jobs: claimed once, progress written as they run, the result and chart stored."""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from db.models import Backtest, BacktestStatus, Notification
from db.session import Database
from db.types import utcnow
from engine.backtest import run_backtest
from engine.backtest.candles import HistoricalCandles
from engine.backtest.jobs import STALE_AFTER, expire_stale_jobs, run_backtest_job, stale_error
from engine.backtest.summary import BacktestSpec, BacktestSummary
from engine.exchanges.clients import ClientPool
from engine.market_data.replay import ReplayFeed
from engine.risk import RiskSettings
from engine.strategies.registry import get_strategy
from robotrader.app import App
from tests.engine.conftest import make_user

DAY = 86_400_000
T0 = 1_735_689_600_000  # 2025-01-01T00:00Z


def spec_of(days: int = 30, **changes: Any) -> BacktestSpec:
    values: dict[str, Any] = {
        "exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1m",
        "strategy": "sma_crossover", "parameters": {"fast": 9, "slow": 21},
        "capital": Decimal(1000), "start_ms": T0, "end_ms": T0 + days * DAY, "days": days,
        "risk": RiskSettings(stop_loss_pct=Decimal(2)), "offline": True,
    }  # fmt: skip
    values.update(changes)
    return BacktestSpec(**values)


async def queue_job(app: App, user_id: int, spec: BacktestSpec, **row: Any) -> str:
    job_id = uuid.uuid4().hex
    async with app.database.transaction() as session:
        session.add(
            Backtest(id=job_id, user_id=user_id, spec=spec.to_json(), created_at=utcnow(), **row)
        )
    return job_id


async def job_row(database: Database, job_id: str) -> Backtest:
    async with database.sessions() as session:
        row = await session.scalar(select(Backtest).where(Backtest.id == job_id))
        assert row is not None
        await session.refresh(row, ["chart_png"])
        return row


@pytest.fixture
def history(tmp_path: Path) -> Iterator[HistoricalCandles]:
    yield HistoricalCandles(ClientPool({}), tmp_path / "candles")


@pytest.fixture
def progress_writes(app: App) -> Iterator[list[tuple[str, float]]]:
    """Every (stage, progress) the job writes to its row, as the database receives them."""
    seen: list[tuple[str, float]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.startswith("UPDATE backtests SET stage=") and "heartbeat_at" in statement:
            values = list(parameters.values()) if isinstance(parameters, dict) else parameters
            seen.append((str(values[0]), float(values[1])))

    engine = app.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    yield seen
    event.remove(engine, "before_cursor_execute", capture)


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


async def test_a_job_runs_to_the_end_writing_its_progress(
    app: App, history: HistoricalCandles, progress_writes: list[tuple[str, float]]
) -> None:
    user = await make_user(app)
    spec = spec_of(days=60)
    job_id = await queue_job(app, user, spec)

    status = await run_backtest_job(app.database, history, job_id, heartbeat=0.01)

    assert status == "done"
    row = await job_row(app.database, job_id)
    assert (row.status, row.stage, row.progress, row.error) == ("done", "done", 1.0, None)
    assert row.started_at is not None and row.finished_at is not None and row.attempts == 1
    assert png_size(row.chart_png or b"") == (1280, 900)

    # The figures are the backtester's own over the same candles.
    candles = ReplayFeed().history("BTC/USDT", "1m", spec.start_ms, spec.end_ms)
    direct = run_backtest(
        candles, get_strategy("sma_crossover"), spec.parameters, capital=spec.capital,
        risk=spec.risk,
    )  # fmt: skip
    assert row.summary is not None
    summary = BacktestSummary.from_json(row.summary)
    assert summary.spec == spec and summary.source == "replay"
    assert summary.candles == len(candles) == 60 * 1440
    assert summary.trade_count == direct.trade_count > 0
    assert summary.total_pnl == direct.total_pnl
    assert summary.sharpe == direct.sharpe and summary.win_rate_pct == direct.win_rate_pct

    # Progress went out while it ran: from the first stage, only ever forward.
    assert progress_writes[0] == ("candles", 0.0)
    assert "chart" in {stage for stage, _ in progress_writes}
    fractions = [fraction for _, fraction in progress_writes]
    assert fractions == sorted(fractions) and len(progress_writes) >= 3


async def test_a_job_delivered_twice_runs_once(app: App, history: HistoricalCandles) -> None:
    user = await make_user(app)
    job_id = await queue_job(app, user, spec_of(days=2))
    assert await run_backtest_job(app.database, history, job_id) == "done"
    first = await job_row(app.database, job_id)
    assert await run_backtest_job(app.database, history, job_id) == "skipped"
    again = await job_row(app.database, job_id)
    assert again.attempts == 1 and again.finished_at == first.finished_at


async def test_a_period_without_candles_fails_with_a_reason(
    app: App, history: HistoricalCandles
) -> None:
    user = await make_user(app)
    job_id = await queue_job(app, user, spec_of(days=1, timeframe="1d"))  # one daily candle
    assert await run_backtest_job(app.database, history, job_id) == "failed"
    row = await job_row(app.database, job_id)
    assert (row.status, row.error) == ("failed", "no_candles")
    assert row.summary is None and row.chart_png is None


async def test_a_capital_beyond_what_a_backtest_counts_fails_with_a_reason(
    app: App, history: HistoricalCandles
) -> None:
    # 5,000,000 USDT of SHIB at ~0.00002 is ~2.5e11 SHIB: beyond int64 steps of 1e-8.
    user = await make_user(app)
    spec = spec_of(days=2, symbol="SHIB/USDT", capital=Decimal(5_000_000))
    job_id = await queue_job(app, user, spec)
    assert await run_backtest_job(app.database, history, job_id) == "failed"
    row = await job_row(app.database, job_id)
    assert (row.status, row.error) == ("failed", "amount_out_of_range")
    # A whale's capital on the same coin that fits is backtested.
    fits = await queue_job(app, user, spec_of(days=2, symbol="SHIB/USDT", capital=Decimal(10**6)))
    assert await run_backtest_job(app.database, history, fits) == "done"


async def test_nobody_waiting_means_the_outbox_says_it_is_done(
    app: App, history: HistoricalCandles
) -> None:
    user = await make_user(app)
    done = await queue_job(app, user, spec_of(days=2), notify_when_done=True)
    failed = await queue_job(app, user, spec_of(days=1, timeframe="1d"), notify_when_done=True)
    quiet = await queue_job(app, user, spec_of(days=2))
    for job_id in (done, failed, quiet):
        await run_backtest_job(app.database, history, job_id)
    async with app.database.sessions() as session:
        notes = {n.kind: n for n in await session.scalars(select(Notification))}
    assert set(notes) == {"backtest_done", "backtest_failed"}
    assert notes["backtest_done"].payload["job"] == done
    assert notes["backtest_done"].payload["trades"] > 0
    assert notes["backtest_failed"].payload == {
        "job": failed, "strategy": "sma_crossover", "symbol": "BTC/USDT", "days": 1, "bot": "",
        "error": "no_candles",
    }  # fmt: skip


async def test_a_job_whose_worker_went_silent_is_reported_interrupted(app: App) -> None:
    user = await make_user(app)
    now = utcnow()
    long_ago = now - STALE_AFTER - timedelta(seconds=1)
    silent = await queue_job(
        app, user, spec_of(), status=BacktestStatus.RUNNING, heartbeat_at=long_ago
    )
    alive = await queue_job(app, user, spec_of(), status=BacktestStatus.RUNNING, heartbeat_at=now)
    assert stale_error("running", long_ago, long_ago, now) == "interrupted"
    assert stale_error("queued", now - timedelta(hours=1), None, now) == "expired"
    assert stale_error("running", now, now, now) is None
    async with app.database.transaction() as session:
        await expire_stale_jobs(session, user, now)
    assert (await job_row(app.database, silent)).error == "interrupted"
    assert (await job_row(app.database, alive)).status == "running"
