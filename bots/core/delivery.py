"""The outbox delivery loop every chat front end runs: claim under a lease, send, settle.

A platform subclasses `OutboxDelivery` and writes `send`: how one notification
reaches a chat, ending in exactly one of `accepted`, `retry_later`, `give_up`,
`unreachable` or `no_chat`. The loop here claims the platform's notifications under a lease,
sends them concurrently, and records each outcome the same way on every
platform (outbox, statistics, metrics). A notification is acknowledged only
after the platform accepted it: a process that dies in between sends it again
once the lease expires (at least once), and never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from robotrader.app import App
from robotrader.enums import Platform
from robotrader.metrics import count_notification
from robotrader.use_cases.notification_delivery import (
    ClaimedNotification,
    acknowledge_notification,
    claim_notifications,
    release_notification,
)
from robotrader.use_cases.reachability import chat_refused

log = logging.getLogger(__name__)


@dataclass
class DeliveryStats:
    sent: int = 0
    failed: int = 0
    unreachable: int = 0
    retried: int = 0
    latencies: list[float] = field(default_factory=list)  # created -> accepted, seconds


class OutboxDelivery(ABC):
    platform: ClassVar[Platform]

    def __init__(
        self,
        app: App,
        *,
        worker: str | None = None,
        batch: int = 100,
        concurrency: int = 25,
        lease: timedelta = timedelta(seconds=90),
        idle_seconds: float = 0.5,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.app = app
        self.worker = worker or f"{self.platform}@{socket.gethostname()}:{os.getpid()}"
        self.batch = batch
        self.lease = lease
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self.stats = DeliveryStats()

    @abstractmethod
    async def send(self, notification: ClaimedNotification) -> None:
        """Deliver one notification and settle it (`accepted`, `retry_later`, ...)."""

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop``; what is in flight is finished first."""
        in_flight: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            room = self.batch - len(in_flight)
            claimed = await self._claim(room) if room > 0 else []
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
        """Deliver everything pending now (tests and benches); returns how many were claimed."""
        total = 0
        while claimed := await self._claim(self.batch):
            await asyncio.gather(*(self._deliver(n) for n in claimed))
            total += len(claimed)
        return total

    async def _claim(self, limit: int) -> list[ClaimedNotification]:
        return await claim_notifications(
            self.app, self.platform, self.worker, limit=limit, lease=self.lease
        )

    async def _deliver(self, notification: ClaimedNotification) -> None:
        async with self._slots:
            try:
                await self.send(notification)
            except Exception:  # a bug here must not stop the loop: retried after the lease
                log.exception(
                    "delivery.error platform=%s id=%s", self.platform, notification.notification_id
                )

    # --- the outcomes of `send` ----------------------------------------------------------------

    async def accepted(self, notification: ClaimedNotification) -> None:
        """The platform took it: never sent again."""
        accepted_at = self.clock()
        await acknowledge_notification(self.app, notification.delivery_id)
        self.stats.sent += 1
        self.stats.latencies.append((accepted_at - notification.created_at).total_seconds())
        count_notification(self.platform, "sent")

    async def retry_later(
        self, notification: ClaimedNotification, error: str, seconds: float
    ) -> None:
        """Rate limited or the platform is unwell: released, claimable again in ``seconds``."""
        self.stats.retried += 1
        count_notification(self.platform, "retried")
        await release_notification(
            self.app,
            notification.delivery_id,
            error=error,
            retry_in=timedelta(seconds=seconds),
        )

    async def give_up(self, notification: ClaimedNotification, error: str) -> None:
        """The message itself is refused: retrying would fail the same way."""
        self.stats.failed += 1
        count_notification(self.platform, "failed")
        log.error(
            "delivery.refused platform=%s id=%s error=%s",
            self.platform,
            notification.notification_id,
            error,
        )
        await acknowledge_notification(self.app, notification.delivery_id, "failed")

    async def no_chat(self, notification: ClaimedNotification) -> None:
        """The user has no private chat on this platform yet: nothing to send it to."""
        await acknowledge_notification(self.app, notification.delivery_id, "no_chat")

    async def unreachable(self, notification: ClaimedNotification) -> None:
        """The user blocked the bot or closed their private chat: stop trying it.

        Their next message from a private chat makes it their notification chat again.
        """
        self.stats.unreachable += 1
        count_notification(self.platform, "unreachable")
        await chat_refused(self.app, self.platform, notification.user_id)
