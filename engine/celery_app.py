"""The Celery engine: beat schedules a tick every few seconds; shards of bots run in parallel.

- ``engine.tick`` (beat, every ``tick_seconds``) enqueues one ``engine.tick_shard``
  per shard (``tick_shards``, fixed: engine.sharding), all for the same moment, on
  the ``ticks`` queue; any worker takes any shard.
- ``engine.tick_shard`` evaluates its shard and queues each live order it decided
  on the ``orders`` queue. Taken more than a tick after its moment, it does nothing:
  the next tick has enqueued that shard again (a worker killed mid-shard is
  recovered so, see engine.sharding).
- ``engine.place_order`` sends (or reconciles) one live order.
- ``engine.reconcile`` (beat, every tick) settles pending and open live orders (one
  worker at a time per order: each is claimed) and sells what liquidating bots hold.
- ``engine.daily_summaries`` (beat, every minute) writes the summaries due this hour, once each.
- ``engine.backtest`` (queue ``backtests``, sent by the chat when a user asks) runs one
  backtest job; the job row is claimed once, so a redelivered task does nothing.

Every task is idempotent (client order ids are deterministic and unique), so
``acks_late`` is safe: a task whose worker died is simply run again. Redis hands an
unacknowledged task to another worker after ``visibility_timeout``; a prefork
child killed under a live worker is requeued at once (``task_reject_on_worker_lost``).
Either way a shard's task comes back stale and is dropped, or runs again harmlessly.

The app is configured by whoever hosts the worker (``robotrader.worker``), which
calls `configure` with an EngineConfig: the engine itself reads no settings.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from celery import Celery

from engine.backtest.candles import HistoricalCandles
from engine.backtest.jobs import run_backtest_job
from engine.backtest.queue import BACKTEST_QUEUE, BACKTEST_TASK
from engine.context import EngineConfig, EngineContext
from engine.daily_summary import write_daily_summaries
from engine.heartbeats import shard_runner
from engine.live_orders import reconcile, settle_order
from engine.metrics import observe_tick
from engine.sharding import is_stale, shards_of_tick
from engine.tick import run_tick

log = logging.getLogger(__name__)

TICKS_QUEUE = "ticks"

app = Celery("robotrader")
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    accept_content=["json"],
    task_default_queue=TICKS_QUEUE,
    task_routes={
        "engine.tick": {"queue": TICKS_QUEUE},
        "engine.tick_shard": {"queue": TICKS_QUEUE},
        # Talking to exchanges about orders can take a request timeout per order: never
        # in the queue the ticks wait in.
        "engine.place_order": {"queue": "orders"},
        "engine.reconcile": {"queue": "orders"},
        BACKTEST_TASK: {"queue": BACKTEST_QUEUE},
    },
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


class _WorkerState:
    """One event loop and one EngineContext per worker process, made on first use."""

    config: EngineConfig | None = None
    loop: asyncio.AbstractEventLoop | None = None
    context: EngineContext | None = None

    def run(self, coro_fn: Any, *args: Any) -> Any:
        if self.config is None:
            raise RuntimeError(
                "engine.celery_app is not configured; start it via robotrader.worker"
            )
        if self.loop is None or self.loop.is_closed():
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
        if self.context is None:
            self.context = EngineContext.build(self.config)
        return self.loop.run_until_complete(coro_fn(self.context, *args))

    def shutdown(self) -> None:
        if self.loop is not None and self.context is not None:
            self.loop.run_until_complete(self.context.close())
        if self.loop is not None:
            self.loop.close()
        self.context = None
        self.loop = None


state = _WorkerState()


def configure(
    config: EngineConfig,
    broker_url: str,
    *,
    namespace: str = "robotrader",
    visibility_timeout: int = 120,
) -> Celery:
    """Point the app at its broker and give its tasks their configuration.

    ``visibility_timeout``: a task whose worker died (acks_late) goes to another
    worker after this many seconds; ticks are short, so a couple of minutes.
    """
    state.config = config
    app.conf.update(
        broker_url=broker_url,
        broker_transport_options={
            "global_keyprefix": f"{namespace}:",
            "visibility_timeout": visibility_timeout,
        },
        result_backend=None,
        beat_schedule={
            "tick": {"task": "engine.tick", "schedule": config.tick_seconds},
            # Every tick: an order in flight is settled as soon as the exchange answers.
            "reconcile": {"task": "engine.reconcile", "schedule": config.tick_seconds},
            "daily-summaries": {"task": "engine.daily_summaries", "schedule": 60.0},
        },
    )
    return app


@app.task(name="engine.tick", ignore_result=True)
def tick() -> int:
    """Enqueue every shard of the bots for one moment (the shards are fixed: engine.sharding)."""
    assert state.config is not None, "engine.celery_app is not configured"
    shards = state.config.tick_shards
    now_ms = int(time.time() * 1000)
    for shard in shards_of_tick(now_ms, state.config.tick_seconds, shards):
        tick_shard.delay(shard, shards, now_ms)
    return shards


async def _tick_shard(context: EngineContext, shard: int, shards: int, now_ms: int) -> list[int]:
    report = await run_tick(
        context.database, context.feed, shard=shard, shards=shards,
        runner=shard_runner(shard, shards), now_ms=now_ms, computed=context.computed,
    )  # fmt: skip
    observe_tick(report)
    return report.live_orders


@app.task(name="engine.tick_shard", ignore_result=True)
def tick_shard(shard: int, shards: int, now_ms: int) -> int:
    """Evaluate one shard at ``now_ms``; nothing if a tick has passed since (it is stale)."""
    if state.config is not None and is_stale(
        now_ms, int(time.time() * 1000), state.config.tick_seconds
    ):
        log.info("tick.shard_stale shard=%s shards=%s moment=%s", shard, shards, now_ms)
        return -1
    live_orders: list[int] = state.run(_tick_shard, shard, shards, now_ms)
    for order_id in live_orders:
        place_order.delay(order_id)
    return len(live_orders)


async def _place(context: EngineContext, order_id: int) -> str:
    return await settle_order(context.live, order_id)


@app.task(name="engine.place_order", ignore_result=True)
def place_order(order_id: int) -> str:
    result: str = state.run(_place, order_id)
    observe_tick.order(result)
    return result


async def _summaries(context: EngineContext) -> int:
    return await write_daily_summaries(context.database)


@app.task(name="engine.daily_summaries", ignore_result=True)
def daily_summaries() -> int:
    written: int = state.run(_summaries)
    return written


async def _reconcile(context: EngineContext) -> dict[str, int]:
    return await reconcile(context.live)


@app.task(name="engine.reconcile", ignore_result=True)
def reconcile_orders() -> dict[str, int]:
    outcomes: dict[str, int] = state.run(_reconcile)
    return outcomes


async def _backtest(context: EngineContext, job_id: str) -> str:
    history = HistoricalCandles(
        context.pool,
        context.config.backtest_cache_dir,
        max_bytes=context.config.backtest_cache_max_bytes,
    )
    return await run_backtest_job(
        context.database, history, job_id, offline=context.config.market_data == "replay"
    )


# A backtest is bounded by the plan's longest period; the limits only stop a runaway one.
@app.task(name=BACKTEST_TASK, ignore_result=True, soft_time_limit=600, time_limit=660)
def backtest(job_id: str) -> str:
    status: str = state.run(_backtest, job_id)
    return status
