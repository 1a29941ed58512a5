"""Delivering the outbox to Telegram (the loop itself: bots.core.delivery).

Sends run concurrently, a chat at a time; the bot's rate limiter (rate_limiter.py)
spaces them to Telegram's limits, so a burst for two thousand users goes out at a
steady ~28 messages a second without 429s, each user's fills in one digest. With
paid broadcasts on (``telegram_paid_broadcast``), notifications are sent with
``allow_paid_broadcast`` and the limiter lets up to ~1,000 a second through.
"""

from __future__ import annotations

from typing import Any, ClassVar

from telegram import Bot
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bots.core.delivery import OutboxDelivery, Outcome
from bots.core.digest import Outgoing
from bots.core.replies import Reply
from bots.telegram.rate_limiter import retry_seconds
from bots.telegram.rendering import render_keyboard, render_messages
from robotrader.app import App
from robotrader.enums import Platform


class TelegramDelivery(OutboxDelivery):
    platform: ClassVar[Platform] = Platform.TELEGRAM

    def __init__(
        self, bot: Bot, app: App, *, paid_broadcast: bool | None = None, **options: Any
    ) -> None:
        # About two seconds of sends claimed ahead: a chat claimed later gets more in its digest.
        options.setdefault("batch", 60)
        options.setdefault("concurrency", 60)
        super().__init__(app, **options)
        self.bot = bot
        if paid_broadcast is None:
            paid_broadcast = app.settings.telegram_paid_broadcast
        # None leaves the parameter out of the request (Telegram's default: not paid).
        self.paid_broadcast: bool | None = True if paid_broadcast else None

    def fits(self, reply: Reply) -> bool:
        return len(render_messages(reply)) == 1

    async def send(self, message: Outgoing) -> Outcome:
        if message.chat_id is None:
            return await self.no_chat(message)
        reply = message.reply
        try:
            chunks = render_messages(reply)
            for i, chunk in enumerate(chunks):
                await self.bot.send_message(
                    message.chat_id,
                    chunk,
                    parse_mode=ParseMode.HTML,
                    # The buttons go under the last part, once.
                    reply_markup=render_keyboard(reply) if i == len(chunks) - 1 else None,
                    disable_web_page_preview=True,
                    allow_paid_broadcast=self.paid_broadcast,
                )
        except RetryAfter as exc:
            return await self.retry_later(message, "429", retry_seconds(exc))
        except Forbidden:  # blocked by the user, or the account is gone
            return await self.unreachable(message)
        except BadRequest as exc:
            if "chat not found" in str(exc).lower():
                return await self.unreachable(message)
            return await self.give_up(message, str(exc))
        except (TimedOut, NetworkError) as exc:
            return await self.retry_later(message, type(exc).__name__, 5)
        return await self.accepted(message)
