"""The Telegram front end as a long-running service: polling, replies and notification delivery."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram.ext import Application, ApplicationBuilder

from bots.core.core import ChatCore
from bots.telegram.delivery import TelegramDelivery
from bots.telegram.handlers import publish_commands, register_handlers
from bots.telegram.rate_limiter import TelegramRateLimiter
from robotrader.app import App
from robotrader.logging_setup import redact

log = logging.getLogger(__name__)


def file_base_url(api_url: str) -> str:
    """``https://api.telegram.org/bot`` -> ``https://api.telegram.org/file/bot``."""
    base = api_url.rstrip("/")
    return base[: -len("/bot")] + "/file/bot" if base.endswith("/bot") else base + "/file/bot"


def build_application(app: App) -> Application[Any, Any, Any, Any, Any, Any]:
    token = app.settings.telegram_token
    if token is None:
        raise RuntimeError("ROBOTRADER_TELEGRAM_TOKEN is not set")
    redact(token.get_secret_value())
    application = (
        ApplicationBuilder()
        .token(token.get_secret_value())
        .base_url(app.settings.telegram_api_url)
        .base_file_url(file_base_url(app.settings.telegram_api_url))
        .rate_limiter(TelegramRateLimiter())
        .concurrent_updates(True)
        .build()
    )
    register_handlers(application, ChatCore(app))
    return application


async def run_telegram(app: App, stop: asyncio.Event) -> None:
    """Answer users and deliver notifications until ``stop``; then finish what is in flight."""
    application = build_application(app)
    async with application:
        await publish_commands(application)
        await application.start()
        updater = application.updater
        assert updater is not None
        await updater.start_polling(poll_interval=0.0, timeout=10, drop_pending_updates=False)
        log.info("telegram.started bot=%s", application.bot.username)
        try:
            await TelegramDelivery(application.bot, app.database).run(stop)
        finally:
            await updater.stop()
            await application.stop()
    log.info("telegram.stopped")
