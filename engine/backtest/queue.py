"""How a queued backtest job reaches what runs it: a Celery worker, or a thread in this process.

- With a broker (production): `CeleryBacktestQueue` sends the ``engine.backtest`` task
  to the ``backtests`` queue; a worker consuming that queue runs the job
  (``engine.celery_app``).
- Embedded (no Redis): `ThreadBacktestQueue` runs each job in a thread of its own,
  with its own event loop, database engine and exchange clients, so the job never
  runs on the event loop of the process that asked for it (a chat front end).
  At most ``workers`` jobs run at once; the others wait for a slot.

Either way the job row is the only thing shared: the caller polls it for progress.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from db.session import Database
from engine.backtest.candles import DEFAULT_MAX_BYTES, HistoricalCandles
from engine.backtest.jobs import run_backtest_job
from engine.exchanges.clients import ClientPool

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)

BACKTEST_TASK = "engine.backtest"
BACKTEST_QUEUE = "backtests"


class BacktestQueue(Protocol):
    async def submit(self, job_id: str) -> None:
        """Hand the (committed, queued) job over to be run; raises if it cannot be."""

    async def close(self) -> None:
        """Stop taking jobs; let the ones running here finish (within reason)."""


class CeleryBacktestQueue:
    """Sends each job to the ``backtests`` queue of the Celery workers."""

    def __init__(self, broker_url: str, *, namespace: str = "robotrader") -> None:
        self.broker_url = broker_url
        self.namespace = namespace
        self._celery: Celery | None = None

    def _producer(self) -> Celery:
        if self._celery is None:
            from celery import Celery

            # Only sends: the same broker and key prefix as the workers (engine.celery_app).
            celery = Celery("robotrader-producer", set_as_current=False)
            celery.conf.update(
                broker_url=self.broker_url,
                broker_transport_options={"global_keyprefix": f"{self.namespace}:"},
                task_serializer="json",
                broker_connection_retry_on_startup=True,
            )
            self._celery = celery
        return self._celery

    async def submit(self, job_id: str) -> None:
        producer = self._producer()
        # kombu publishes with blocking sockets: off the event loop.
        await asyncio.to_thread(
            producer.send_task,
            BACKTEST_TASK,
            args=[job_id],
            queue=BACKTEST_QUEUE,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
        )

    async def close(self) -> None:
        if self._celery is not None:
            await asyncio.to_thread(self._celery.close)
            self._celery = None


class ThreadBacktestQueue:
    """Runs each job in a thread with its own event loop (the embedded mode)."""

    def __init__(
        self,
        *,
        database_url: str,
        exchange_api_urls: dict[str, str],
        cache_dir: Path,
        cache_max_bytes: int = DEFAULT_MAX_BYTES,
        offline: bool = False,
        workers: int = 2,
        heartbeat: float | None = None,
    ) -> None:
        self.database_url = database_url
        self.exchange_api_urls = dict(exchange_api_urls)
        self.cache_dir = cache_dir
        self.cache_max_bytes = cache_max_bytes
        self.offline = offline
        self.heartbeat = heartbeat
        self._slots = threading.BoundedSemaphore(workers)
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._closed = False

    async def submit(self, job_id: str) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the backtest queue is closed")
            # Daemon: a process that exits without closing its App is not held up by a job
            # (the job then stops mid-way, and is reported as interrupted).
            thread = threading.Thread(
                target=self._run, args=(job_id,), name=f"backtest-{job_id[:8]}", daemon=True
            )
            self._threads.add(thread)
        thread.start()

    def _run(self, job_id: str) -> None:
        try:
            with self._slots:
                asyncio.run(self._job(job_id))
        except Exception:
            log.exception("backtest.thread_failed job=%s", job_id)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    async def _job(self, job_id: str) -> None:
        database = Database(self.database_url, pool_size=2)
        pool = ClientPool(self.exchange_api_urls)
        options: dict[str, Any] = {"offline": self.offline}
        if self.heartbeat is not None:
            options["heartbeat"] = self.heartbeat
        try:
            await run_backtest_job(
                database,
                HistoricalCandles(pool, self.cache_dir, max_bytes=self.cache_max_bytes),
                job_id,
                **options,
            )
        finally:
            await pool.close()
            await database.dispose()

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._threads)

    async def close(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109 - joins threads
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        deadline = time.monotonic() + timeout
        for thread in threads:
            await asyncio.to_thread(thread.join, max(0.0, deadline - time.monotonic()))
