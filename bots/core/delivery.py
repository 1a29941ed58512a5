"""The outbox delivery loop every chat front end runs: claim under a lease, send, settle.

A platform subclasses `OutboxDelivery` and writes `send`: how one message reaches a
chat, ending in exactly one of `accepted`, `retry_later`, `give_up`, `unreachable`
or `no_chat`, and `fits`: whether a reply goes as one message there. The loop here
claims the platform's notifications a chat at a time under a lease (every one due
for that chat), turns them into messages (billing, errors, pauses... each alone and
first; fills summarised in a digest: bots/core/digest.py), sends each chat's
messages in order while other chats' go concurrently, and records each outcome the
same way on every platform (outbox, statistics, metrics). A message's notifications
are acknowledged only after the platform accepted it: a process that dies in between
sends them again once the lease expires (at least once), and never loses one. A
message that fails leaves its notifications, and the chat's later ones, due.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from bots.core.digest import Outgoing, chat_messages
from bots.core.replies import Reply
from robotrader.app import App
from robotrader.enums import Platform
from robotrader.metrics import count_notification
from robotrader.use_cases.notification_delivery import (
    ClaimedNotification,
    acknowledge_notifications,
    claim_notifications,
    release_notifications,
)
from robotrader.use_cases.notification_digest import ChatDue, plan_chats
from robotrader.use_cases.reachability import chat_refused

log = logging.getLogger(__name__)


@dataclass
class DeliveryStats:
    sent: int = 0  # notifications
    messages: int = 0  # messages accepted (a digest holds many notifications)
    failed: int = 0
    unreachable: int = 0
    retried: int = 0
    latencies: list[float] = field(default_factory=list)  # created -> accepted, seconds


@dataclass(frozen=True)
class Outcome:
    """How a message went: whether the chat takes the next one, else when to retry the rest."""

    go_on: bool
    retry_in: float = 0.0


GO_ON = Outcome(True)


def _forget(in_flight: dict[int, asyncio.Task[None]], user_id: int, _: asyncio.Task[None]) -> None:
    in_flight.pop(user_id, None)


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
    async def send(self, message: Outgoing) -> Outcome:
        """Deliver one message and settle what it holds (`accepted`, `retry_later`, ...)."""

    @abstractmethod
    def fits(self, reply: Reply) -> bool:
        """Whether ``reply`` goes as one message here (a digest is cut until it does)."""

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop``; what is in flight is finished first.

        ``batch`` chats at most are in flight; a chat being sent to is not claimed again
        until its messages are settled, so what it got meanwhile goes in its next digest.
        A chat with only fills due waits a moment for more (``digest_hold_ms``).
        """
        in_flight: dict[int, asyncio.Task[None]] = {}
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                room = self.batch - len(in_flight)
                # Claim a few chats at a time, not one each time one is done: each claim
                # costs the database a few statements whether it brings one chat or many.
                if room < max(1, self.batch // 4) and in_flight:
                    await asyncio.wait(
                        [stopping, *in_flight.values()], return_when=asyncio.FIRST_COMPLETED
                    )
                    continue
                claimed = await self._claim(room, skip_users=in_flight.keys())
                for chat in plan_chats(claimed):
                    task = asyncio.create_task(self._deliver(chat))
                    in_flight[chat.user_id] = task
                    task.add_done_callback(functools.partial(_forget, in_flight, chat.user_id))
                if not claimed:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(stopping), self.idle_seconds)
                else:
                    await asyncio.sleep(0)
        finally:
            stopping.cancel()
        if in_flight:
            await asyncio.gather(*in_flight.values(), return_exceptions=True)

    async def deliver_pending(self) -> int:
        """Deliver everything pending now, nothing waits for more (the console, tests).

        Returns how many were claimed.
        """
        total = 0
        while claimed := await self._claim(self.batch, wait_for_more=False):
            await asyncio.gather(*(self._deliver(chat) for chat in plan_chats(claimed)))
            total += len(claimed)
        return total

    async def _claim(
        self, limit: int, skip_users: Collection[int] = (), *, wait_for_more: bool = True
    ) -> list[ClaimedNotification]:
        return await claim_notifications(
            self.app,
            self.platform,
            self.worker,
            limit=limit,
            lease=self.lease,
            skip_users=list(skip_users),
            wait_for_more=wait_for_more,
        )

    async def _deliver(self, chat: ChatDue) -> None:
        """One chat's messages in order; the first that fails leaves it and the rest due."""
        async with self._slots:
            messages = chat_messages(chat, self.fits)
            for index, message in enumerate(messages):
                try:
                    outcome = await self.send(message)
                except Exception:  # a bug here must not stop the loop: retried after the lease
                    log.exception(
                        "delivery.error platform=%s ids=%s",
                        self.platform,
                        [n.notification_id for n in message.notifications],
                    )
                    return
                if outcome.go_on:
                    continue
                rest = [n for later in messages[index + 1 :] for n in later.notifications]
                if rest:  # behind the failed one: they keep their order when retried
                    await release_notifications(
                        self.app,
                        [n.delivery_id for n in rest],
                        error="behind a message not sent",
                        retry_in=timedelta(seconds=outcome.retry_in),
                    )
                return

    # --- the outcomes of `send` ----------------------------------------------------------------

    def _count(self, message: Outgoing, result: str) -> None:
        for _ in message.notifications:
            count_notification(self.platform, result)

    async def accepted(self, message: Outgoing) -> Outcome:
        """The platform took it: what it holds is never sent again."""
        accepted_at = self.clock()
        await acknowledge_notifications(self.app, [n.delivery_id for n in message.notifications])
        self.stats.messages += 1
        self.stats.sent += len(message.notifications)
        self.stats.latencies.extend(
            (accepted_at - n.created_at).total_seconds() for n in message.notifications
        )
        self._count(message, "sent")
        return GO_ON

    async def retry_later(self, message: Outgoing, error: str, seconds: float) -> Outcome:
        """Rate limited or the platform is unwell: released, claimable again in ``seconds``."""
        self.stats.retried += len(message.notifications)
        self._count(message, "retried")
        await release_notifications(
            self.app,
            [n.delivery_id for n in message.notifications],
            error=error,
            retry_in=timedelta(seconds=seconds),
        )
        return Outcome(False, seconds)

    async def give_up(self, message: Outgoing, error: str) -> Outcome:
        """The message itself is refused: retrying would fail the same way."""
        self.stats.failed += len(message.notifications)
        self._count(message, "failed")
        log.error(
            "delivery.refused platform=%s ids=%s error=%s",
            self.platform,
            [n.notification_id for n in message.notifications],
            error,
        )
        ids = [n.delivery_id for n in message.notifications]
        await acknowledge_notifications(self.app, ids, "failed")
        return GO_ON

    async def no_chat(self, message: Outgoing) -> Outcome:
        """The user has no private chat on this platform yet: nothing to send it to."""
        ids = [n.delivery_id for n in message.notifications]
        await acknowledge_notifications(self.app, ids, "no_chat")
        return GO_ON

    async def unreachable(self, message: Outgoing) -> Outcome:
        """The user blocked the bot or closed their private chat: stop trying it.

        Every notification pending for them there is closed. Their next message from a
        private chat makes it their notification chat again.
        """
        self.stats.unreachable += len(message.notifications)
        self._count(message, "unreachable")
        await chat_refused(self.app, self.platform, message.user_id)
        return Outcome(False)
