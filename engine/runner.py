"""The in-process runner: the same tick as the Celery tasks, on an asyncio timer.

Used by `robotrader run` when no broker is configured (the embedded default).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from engine.context import EngineContext
from engine.daily_summary import write_daily_summaries
from engine.live_orders import place_live_order, reconcile
from engine.metrics import observe_tick
from engine.tick import run_tick

log = logging.getLogger(__name__)

RECONCILE_EVERY_TICKS = 12


async def run_engine(context: EngineContext, stop: asyncio.Event) -> None:
    """Tick every ``tick_seconds`` until ``stop``; the tick in flight always finishes."""
    outcomes = await reconcile(context.live)
    if outcomes:
        log.info("engine.reconciled %s", outcomes)
    ticks = 0
    summary_minute = -1
    while not stop.is_set():
        started = time.monotonic()
        try:
            minute = int(time.time() // 60)
            if minute != summary_minute:
                summary_minute = minute
                await write_daily_summaries(context.database)
            report = await run_tick(context.database, context.feed, runner="embedded")
            for order_id in report.live_orders:
                result = await place_live_order(context.live, order_id)
                observe_tick.order(result)
            ticks += 1
            if ticks % RECONCILE_EVERY_TICKS == 0:
                await reconcile(context.live)
            observe_tick(report)
            if report.decisions or report.paused:
                log.info(
                    "engine.tick bots=%d markets=%d decisions=%d filled=%d rejected=%d "
                    "paused=%d seconds=%.3f",
                    report.bots, report.markets, report.decisions, report.orders_filled,
                    report.orders_rejected, report.paused, report.seconds,
                )  # fmt: skip
        except Exception:
            # One bad tick (database blip, a bug on one market) must not stop the engine;
            # the next tick starts from the database again.
            log.exception("engine.tick_failed")
        elapsed = time.monotonic() - started
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                stop.wait(), timeout=max(0.0, context.config.tick_seconds - elapsed)
            )
