"""Delivering the outbox to Telegram: claimed under a lease, acknowledged once Telegram accepted.

Sends run concurrently; the bot's rate limiter (rate_limiter.py) spaces them to
Telegram's limits, so a burst for two thousand users goes out at a steady ~28
messages a second without 429s. A notification is acknowledged only after the
Bot API accepted it: a crash in between means it is sent again after the lease
(at least once), never that it is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from telegram import Bot
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bots.core.notifications import render_notification
from bots.telegram.rate_limiter import retry_seconds
from bots.telegram.rendering import render_keyboard, render_text, split_message
from db import outbox
from db.models import Platform
from db.outbox import ClaimedNotification
from db.session import Database
from robotrader.metrics import count_notification

log = logging.getLogger(__name__)


CHANNEL = str(Platform.TELEGRAM)


@dataclass
class DeliveryStats:
    sent: int = 0
    failed: int = 0
    unreachable: int = 0
    retried: int = 0
    latencies: list[float] = field(default_factory=list)  # created -> accepted, seconds


class TelegramDelivery:
    def __init__(
        self,
        bot: Bot,
        database: Database,
        *,
        worker: str | None = None,
        batch: int = 120,
        concurrency: int = 60,
        lease: timedelta = timedelta(seconds=90),
        idle_seconds: float = 0.5,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.bot = bot
        self.database = database
        self.worker = worker or f"telegram@{socket.gethostname()}:{os.getpid()}"
        self.batch = batch
        self.lease = lease
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self.stats = DeliveryStats()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop``; what is in flight is finished first."""
        in_flight: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            room = self.batch - len(in_flight)
            claimed = (
                await outbox.claim(
                    self.database, Platform.TELEGRAM, self.worker, limit=room, lease=self.lease
                )
                if room > 0
                else []
            )
            for notification in claimed:
                task = asyncio.create_task(self._deliver(notification))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            if not claimed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.idle_seconds)
            else:
                await asyncio.sleep(0)
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def deliver_pending(self) -> int:
        """Deliver everything pending now (used by tests and benches); returns how many."""
        total = 0
        while True:
            claimed = await outbox.claim(
                self.database, Platform.TELEGRAM, self.worker, limit=self.batch, lease=self.lease
            )
            if not claimed:
                return total
            await asyncio.gather(*(self._deliver(n) for n in claimed))
            total += len(claimed)

    async def _deliver(self, notification: ClaimedNotification) -> None:
        async with self._slots:
            if notification.chat_id is None:
                await outbox.acknowledge(self.database, notification.delivery_id, "no_chat")
                return
            reply = render_notification(
                notification.kind, notification.payload, notification.language or "en"
            )
            text = render_text(reply)
            try:
                for chunk in split_message(text):
                    await self.bot.send_message(
                        notification.chat_id,
                        chunk,
                        parse_mode=ParseMode.HTML,
                        reply_markup=render_keyboard(reply),
                        disable_web_page_preview=True,
                    )
            except RetryAfter as exc:
                self.stats.retried += 1
                count_notification(CHANNEL, "retried")
                await outbox.release(
                    self.database,
                    notification.delivery_id,
                    error="429",
                    retry_in=timedelta(seconds=retry_seconds(exc)),
                )
                return
            except Forbidden:
                # Blocked by the user (or the account is gone): stop trying this chat.
                self.stats.unreachable += 1
                count_notification(CHANNEL, "unreachable")
                await outbox.mark_unreachable(
                    self.database, Platform.TELEGRAM, notification.user_id
                )
                return
            except BadRequest as exc:
                if "chat not found" in str(exc).lower():
                    self.stats.unreachable += 1
                    count_notification(CHANNEL, "unreachable")
                    await outbox.mark_unreachable(
                        self.database, Platform.TELEGRAM, notification.user_id
                    )
                    return
                # The message itself is wrong: retrying would fail the same way.
                self.stats.failed += 1
                count_notification(CHANNEL, "failed")
                log.error(
                    "telegram.notification_refused id=%s error=%s",
                    notification.notification_id,
                    exc,
                )
                await outbox.acknowledge(self.database, notification.delivery_id, "failed")
                return
            except (TimedOut, NetworkError) as exc:
                self.stats.retried += 1
                count_notification(CHANNEL, "retried")
                await outbox.release(
                    self.database,
                    notification.delivery_id,
                    error=type(exc).__name__,
                    retry_in=timedelta(seconds=5),
                )
                return
            accepted = self.clock()
            await outbox.acknowledge(self.database, notification.delivery_id)
            self.stats.sent += 1
            count_notification(CHANNEL, "sent")
            self.stats.latencies.append((accepted - notification.created_at).total_seconds())
