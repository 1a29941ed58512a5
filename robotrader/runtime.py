"""Run several long-lived async services in one process and stop them cleanly.

Ctrl-C (SIGINT) and `docker stop` (SIGTERM) set one stop event; every service
finishes its in-flight work and returns; the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

ServiceMain = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Service:
    name: str
    main: ServiceMain


async def run_services(services: list[Service], stop: asyncio.Event | None = None) -> None:
    """Run until a signal (or ``stop``) arrives, then wait for every service to return.

    A service that fails stops the others: a half-running product is worse than none.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks: dict[asyncio.Task[Any], Service] = {
        asyncio.create_task(svc.main(stop), name=svc.name): svc for svc in services
    }
    log.info("runtime.started services=%s", ",".join(s.name for s in services))
    failure: BaseException | None = None
    pending = set(tasks)
    stop_wait = asyncio.create_task(stop.wait())
    try:
        while not stop.is_set():
            done, _ = await asyncio.wait(pending | {stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stop_wait}:
                pending.discard(task)
                if not task.cancelled() and task.exception() is not None:
                    failure = task.exception()
                    log.error(
                        "runtime.service_failed service=%s", tasks[task].name, exc_info=failure
                    )
                    stop.set()
        log.info("runtime.stopping")
        if pending:
            _, still = await asyncio.wait(pending, timeout=30)
            for task in still:
                log.warning("runtime.cancel service=%s", tasks[task].name)
                task.cancel()
            await asyncio.gather(*still, return_exceptions=True)
    finally:
        stop_wait.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    if failure is not None:
        raise failure
    log.info("runtime.stopped")
