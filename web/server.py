"""Serving the ASGI app with uvicorn inside our runtime (stops with the other services)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn

from robotrader.app import App
from web.app import create_app


class _Server(uvicorn.Server):
    """uvicorn without its signal handling: the runtime owns SIGINT/SIGTERM for every service."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def run_web(app: App, stop: asyncio.Event) -> None:
    config = uvicorn.Config(
        create_app(app),
        host=app.settings.web_host,
        port=app.settings.web_port,
        log_level="warning",
        lifespan="off",
        proxy_headers=True,
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    await serving
    stopping.cancel()
