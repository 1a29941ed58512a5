"""Which long-running services a process runs, from the settings."""

from __future__ import annotations

import asyncio
import sys

from engine.context import EngineContext
from engine.runner import run_engine
from robotrader.app import App
from robotrader.engine_config import engine_config
from robotrader.runtime import Service


def engine_service(app: App) -> Service:
    """The in-process engine (the embedded default; with Redis, Celery workers tick instead)."""

    async def main(stop: asyncio.Event) -> None:
        context = EngineContext.build(engine_config(app.settings), app.database)
        try:
            await run_engine(context, stop)
        finally:
            await context.close(dispose_database=False)

    return Service("engine", main)


def telegram_service(app: App) -> Service:
    from bots.telegram.service import run_telegram

    async def main(stop: asyncio.Event) -> None:
        await run_telegram(app, stop)

    return Service("telegram", main)


def discord_service(app: App) -> Service:
    from bots.discord.service import run_discord

    async def main(stop: asyncio.Event) -> None:
        await run_discord(app, stop)

    return Service("discord", main)


def web_service(app: App) -> Service:
    """The web app and, beside it, the Stripe calls still to make (a durable cancel)."""
    from robotrader.use_cases.billing import billing_follow_ups
    from web.server import run_web

    async def main(stop: asyncio.Event) -> None:
        await asyncio.gather(run_web(app, stop), billing_follow_ups(app, stop))

    return Service("web", main)


def console_service(app: App) -> Service:
    from bots.console.console import run_console

    async def main(stop: asyncio.Event) -> None:
        await run_console(app, stop)

    return Service("console", main)


def embedded_services(app: App, *, interactive: bool | None = None) -> list[Service]:
    """Everything the embedded default runs in one process.

    The engine ticks here unless Celery workers do (Redis configured); every chat
    front end whose token is set runs; with none set, the console front end does
    (when a terminal is attached).
    """
    settings = app.settings
    services: list[Service] = [web_service(app)]
    if not settings.redis_url:
        services.append(engine_service(app))
    if settings.telegram_token is not None:
        services.append(telegram_service(app))
    if settings.discord_token is not None:
        services.append(discord_service(app))
    interactive = sys.stdin.isatty() if interactive is None else interactive
    if settings.telegram_token is None and settings.discord_token is None and interactive:
        services.append(console_service(app))
    return services
