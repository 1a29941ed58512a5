"""What /backtest compare and /optimize share: the candles of a spec, and CPU work off the loop.

Both run here, in the process that asked (a chat front end, or ``robotrader
compare`` / ``robotrader optimize``), not as a queued job: the candles are fetched
once (the disk cache, the exchange, or the replay feed offline) and the
simulations run in a thread while the event loop reports their progress.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from engine.backtest import AmountOutOfRange
from engine.backtest.candles import CandleHistory, HistoricalCandles
from engine.backtest.summary import BacktestSpec
from engine.exchanges.errors import ExchangeError
from robotrader.app import App
from robotrader.errors import UserError

MIN_CANDLES = 10
POLL_SECONDS = 1.0

T = TypeVar("T")
# (stage, fraction of that stage done): awaited about once a second while work runs.
ProgressReport = Callable[[str, float], Awaitable[None]]


def history_of(app: App) -> HistoricalCandles:
    """The process's candle history (the same disk cache the backtest jobs use)."""
    settings = app.settings
    return HistoricalCandles(
        app.pool, settings.data_dir / "candles", max_bytes=settings.candle_cache_bytes
    )


async def load_candles(
    history: HistoricalCandles, spec: BacktestSpec, report: ProgressReport | None = None
) -> CandleHistory:
    """The candles of ``spec``'s market and period; UserError when there are (almost) none."""

    async def fetch(progress: Callable[[float], None]) -> CandleHistory:
        return await history.history(
            spec.exchange, spec.symbol, spec.timeframe, spec.start_ms, spec.end_ms,
            offline=spec.offline, progress=progress,
        )  # fmt: skip

    where = {"symbol": spec.symbol, "exchange": spec.exchange, "timeframe": spec.timeframe}
    try:
        loaded = await _reported(fetch, report, "candles")
    except ExchangeError:
        raise UserError("research_history_unavailable", **where) from None
    if len(loaded.candles) < MIN_CANDLES:
        raise UserError("research_no_candles", **where)
    return loaded


async def run_reported(
    work: Callable[[Callable[[float], None]], T], report: ProgressReport | None, stage: str
) -> T:
    """``work(progress)`` in a thread; ``report(stage, fraction)`` about once a second."""

    async def threaded(progress: Callable[[float], None]) -> T:
        return await asyncio.to_thread(work, progress)

    try:
        return await _reported(threaded, report, stage)
    except AmountOutOfRange:
        raise UserError("research_amount_out_of_range") from None


async def _reported(
    work: Callable[[Callable[[float], None]], Awaitable[T]],
    report: ProgressReport | None,
    stage: str,
) -> T:
    state = [0.0]  # one float, set from the worker thread

    def progress(fraction: float) -> None:
        state[0] = min(max(fraction, 0.0), 1.0)

    task = asyncio.ensure_future(work(progress))
    if report is None:
        return await task
    while not task.done():
        await report(stage, state[0])
        await asyncio.wait({task}, timeout=POLL_SECONDS)
    return task.result()
