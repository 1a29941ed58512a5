"""The in-process runner: the same tick as the Celery tasks, on an asyncio timer.

Used by `robotrader run` when no broker is configured (the embedded default).
Talking to the exchange about live orders runs beside the tick, as Celery's
``orders`` queue does: a slow order answer (a request can take the client's whole
timeout) never holds up the next tick. Every tick also starts a reconciliation
(unless one is still running), so an order in flight is settled as soon as the
exchange answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from engine.context import EngineContext
from engine.daily_summary import write_daily_summaries
from engine.live_orders import LiveContext, reconcile, settle_order
from engine.metrics import observe_tick
from engine.tick import run_tick

log = logging.getLogger(__name__)


class OrderDesk:
    """Live-order work running beside the tick: placements and one reconciliation at a time."""

    def __init__(self, live: LiveContext) -> None:
        self.live = live
        self._tasks: set[asyncio.Task[object]] = set()
        self._reconciling: asyncio.Task[object] | None = None

    def place(self, order_id: int) -> None:
        self._track(asyncio.create_task(self._place(order_id)))

    def reconcile(self) -> None:
        if self._reconciling is None or self._reconciling.done():
            self._reconciling = asyncio.create_task(self._reconcile())
            self._track(self._reconciling)

    async def drain(self) -> None:
        """Let the work in flight finish (an order being sent is never abandoned midway)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _track(self, task: asyncio.Task[object]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _place(self, order_id: int) -> None:
        try:
            observe_tick.order(await settle_order(self.live, order_id))
        except Exception:
            log.exception("engine.place_failed order=%s", order_id)

    async def _reconcile(self) -> None:
        try:
            outcomes = await reconcile(self.live)
            if outcomes:
                log.info("engine.reconciled %s", outcomes)
        except Exception:
            log.exception("engine.reconcile_failed")


async def run_engine(context: EngineContext, stop: asyncio.Event) -> None:
    """Tick every ``tick_seconds`` until ``stop``; the tick and the orders in flight finish."""
    desk = OrderDesk(context.live)
    desk.reconcile()  # what a previous run left in flight
    summary_minute = -1
    try:
        while not stop.is_set():
            started = time.monotonic()
            try:
                minute = int(time.time() // 60)
                if minute != summary_minute:
                    summary_minute = minute
                    await write_daily_summaries(context.database)
                report = await run_tick(
                    context.database, context.feed, runner="embedded", computed=context.computed
                )
                for order_id in report.live_orders:
                    desk.place(order_id)
                desk.reconcile()
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
    finally:
        await desk.drain()
