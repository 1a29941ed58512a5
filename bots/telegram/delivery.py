"""Delivering the outbox to Telegram (the loop itself: bots.core.delivery).

Sends run concurrently; the bot's rate limiter (rate_limiter.py) spaces them to
Telegram's limits, so a burst for two thousand users goes out at a steady ~28
messages a second without 429s.
"""

from __future__ import annotations

from typing import Any, ClassVar

from telegram import Bot
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bots.core.delivery import OutboxDelivery
from bots.core.notifications import render_notification
from bots.telegram.rate_limiter import retry_seconds
from bots.telegram.rendering import render_keyboard, render_messages
from robotrader.app import App
from robotrader.enums import Platform
from robotrader.use_cases.notification_delivery import ClaimedNotification


class TelegramDelivery(OutboxDelivery):
    platform: ClassVar[Platform] = Platform.TELEGRAM

    def __init__(self, bot: Bot, app: App, **options: Any) -> None:
        options.setdefault("batch", 120)
        options.setdefault("concurrency", 60)
        super().__init__(app, **options)
        self.bot = bot

    async def send(self, notification: ClaimedNotification) -> None:
        if notification.chat_id is None:
            await self.no_chat(notification)
            return
        reply = render_notification(
            notification.kind, notification.payload, notification.language or "en"
        )
        try:
            chunks = render_messages(reply)
            for i, chunk in enumerate(chunks):
                await self.bot.send_message(
                    notification.chat_id,
                    chunk,
                    parse_mode=ParseMode.HTML,
                    # The buttons go under the last part, once.
                    reply_markup=render_keyboard(reply) if i == len(chunks) - 1 else None,
                    disable_web_page_preview=True,
                )
        except RetryAfter as exc:
            await self.retry_later(notification, "429", retry_seconds(exc))
        except Forbidden:  # blocked by the user, or the account is gone
            await self.unreachable(notification)
        except BadRequest as exc:
            if "chat not found" in str(exc).lower():
                await self.unreachable(notification)
            else:
                await self.give_up(notification, str(exc))
        except (TimedOut, NetworkError) as exc:
            await self.retry_later(notification, type(exc).__name__, 5)
        else:
            await self.accepted(notification)
