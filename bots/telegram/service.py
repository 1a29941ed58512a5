"""The Telegram front end as a long-running service: updates, replies and notification delivery.

Updates arrive by long polling, or, when PUBLIC_URL is set, by webhook: Telegram
posts them to web/'s ``/telegram/webhook`` in this same process, which hands them
to the receiver registered here on ``App.update_receivers``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram import Update
from telegram.ext import Application, ApplicationBuilder

from bots.core.core import ChatCore
from bots.telegram.delivery import TelegramDelivery
from bots.telegram.handlers import CORE_KEY, publish_commands, register_handlers
from bots.telegram.rate_limiter import TelegramRateLimiter
from robotrader.app import App
from robotrader.logging_setup import redact
from robotrader.settings import Settings
from robotrader.update_receivers import InvalidUpdate, UpdateReceiver

WEBHOOK_PATH = "/telegram/webhook"

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


def webhook_url(settings: Settings) -> str | None:
    """Where Telegram posts updates in webhook mode; None: long polling."""
    if not settings.public_url:
        return None
    return settings.public_url.rstrip("/") + WEBHOOK_PATH


def update_receiver(application: Application[Any, Any, Any, Any, Any, Any]) -> UpdateReceiver:
    """The callable web/ awaits with each webhook update (decoded JSON)."""

    async def receive(data: dict[str, Any]) -> None:
        try:
            update = Update.de_json(data, application.bot)
        except Exception as exc:  # whatever de_json trips on, it is not an update
            raise InvalidUpdate(str(type(exc).__name__)) from None
        await application.update_queue.put(update)

    return receive


async def run_telegram(app: App, stop: asyncio.Event) -> None:
    """Answer users and deliver notifications until ``stop``; then finish what is in flight."""
    webhook = webhook_url(app.settings)
    secret = app.settings.telegram_webhook_secret
    if webhook and secret is None:
        raise RuntimeError(
            "webhook mode (ROBOTRADER_PUBLIC_URL is set) needs ROBOTRADER_TELEGRAM_WEBHOOK_SECRET"
        )
    application = build_application(app)
    async with application:
        await publish_commands(application)
        await application.start()
        updater = application.updater
        assert updater is not None
        if webhook and secret is not None:
            redact(secret.get_secret_value())
            app.update_receivers.register("telegram", update_receiver(application))
            await application.bot.set_webhook(
                url=webhook,
                secret_token=secret.get_secret_value(),
            )
            log.info("telegram.started mode=webhook url=%s", webhook)
        else:
            await updater.start_polling(poll_interval=0.0, timeout=10, drop_pending_updates=False)
            log.info("telegram.started mode=polling bot=%s", application.bot.username)
        try:
            await TelegramDelivery(application.bot, app).run(stop)
        finally:
            # Handlers still following a backtest hand it to the outbox, so stop() returns.
            application.bot_data[CORE_KEY].shutdown()
            if webhook:
                # The webhook stays set: Telegram keeps new updates until we are back.
                app.update_receivers.unregister("telegram")
            else:
                await updater.stop()
            await application.stop()
    log.info("telegram.stopped")
