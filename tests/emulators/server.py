"""Run an aiohttp application on 127.0.0.1 in a thread of its own.

Emulators must keep answering while a test blocks (a synchronous Celery call,
a subprocess wait), so each one runs its own event loop in a daemon thread.
Only loopback addresses are ever bound.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, Self, TypeVar

from aiohttp import web

T = TypeVar("T")


class ThreadedServer:
    """An aiohttp app served on 127.0.0.1:<port> from a background thread.

    Subclasses build their routes in `build_app`. Use as a context manager or
    call `start()` / `stop()`; `base_url` is known once started.
    """

    host = "127.0.0.1"

    def __init__(self, port: int = 0) -> None:
        self._requested_port = port
        self.port: int = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- to override -------------------------------------------------------
    def build_app(self) -> web.Application:
        raise NotImplementedError

    # -- lifecycle -----------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "server not started"
        return self._loop

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._serve, name=type(self).__name__, daemon=True)
        self._thread.start()
        self._ready.wait(timeout=10)
        if self._error is not None:
            raise RuntimeError(f"{type(self).__name__} failed to start") from self._error
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        loop = self._loop
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        try:
            fut.result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any, timeout: float = 30) -> T:
        """Run a coroutine function on the server's loop from another thread."""
        fut: Future[T] = asyncio.run_coroutine_threadsafe(fn(*args), self.loop)  # type: ignore[arg-type]
        return fut.result(timeout=timeout)

    # -- internals -----------------------------------------------------------
    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.close()

    async def _startup(self) -> None:
        app = self.build_app()
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._requested_port)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1])

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
