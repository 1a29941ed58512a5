"""Which services `robotrader run` starts, from the settings."""

from __future__ import annotations

import asyncio

from engine.context import EngineContext
from engine.runner import run_engine
from robotrader.engine_config import engine_config
from robotrader.runtime import Service
from robotrader.settings import Settings


def engine_service(settings: Settings) -> Service:
    """The in-process engine (the embedded default; with Redis, Celery workers tick instead)."""

    async def main(stop: asyncio.Event) -> None:
        context = EngineContext.build(engine_config(settings))
        try:
            await run_engine(context, stop)
        finally:
            await context.close()

    return Service("engine", main)


def embedded_services(settings: Settings) -> list[Service]:
    """Everything the embedded default runs in one process."""
    services: list[Service] = []
    if not settings.redis_url:
        services.append(engine_service(settings))
    return services
