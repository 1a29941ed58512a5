"""Delivering the outbox to Discord: claimed under a lease, acknowledged once Discord accepted.

Each notification about the user's bots goes to the channel they picked with
/notify channel, else (and billing always) to their DM channel (the chat the core
recorded). A picked channel Discord
refuses for good (deleted: 10003; access lost: 50001, 50013) is dropped: that
notification and the next go to the DM, and the user is told once, by DM.

discord.py paces every request by the ``X-RateLimit-*`` headers of its bucket
and waits out a 429's ``retry_after`` before trying again; on top of that the
sends here stay under Discord's global 50 requests a second, which discord.py
only learns about from a 429. A notification is acknowledged only after Discord
accepted it: a crash in between sends it again after the lease, never loses it.

A user whose DMs are closed (403, code 50007) is marked unreachable on Discord
and told once, ephemerally, at their next interaction in a server.

Trades of members who share them with a community are then posted in that
community's channel: pair, side and PnL %, never an amount.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import aiohttp
import discord

from bots.core.notifications import render_notification
from bots.core.replies import Reply
from bots.discord.community import channel_mention, trade_post
from db import outbox
from db.models import Platform
from db.outbox import ClaimedNotification
from robotrader.app import App
from robotrader.i18n import DEFAULT_LANGUAGE, Translator
from robotrader.use_cases.accounts import language_from_client
from robotrader.use_cases.community import share_targets
from robotrader.use_cases.notification_channel import goes_to_channel, notification_channel_lost
from robotrader.use_cases.reachability import chat_refused

if TYPE_CHECKING:
    from bots.discord.client import DiscordFrontEnd

log = logging.getLogger(__name__)

CANNOT_MESSAGE_USER = 50007
# A picked channel refused for good: Unknown Channel, Missing Access, Missing Permissions.
CHANNEL_GONE = frozenset({10003, 50001, 50013})
TRADE_KINDS = frozenset({"trade_opened", "trade_closed"})


class Pacer:
    """At most ``limit`` sends in any ``period`` seconds (Discord's global limit, with margin)."""

    def __init__(self, limit: int = 45, period: float = 1.0) -> None:
        self.limit = limit
        self.period = period
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._sent and self._sent[0] <= now - self.period:
                    self._sent.popleft()
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return
                await asyncio.sleep(self._sent[0] + self.period - now)


@dataclass
class DeliveryStats:
    sent: int = 0
    failed: int = 0
    unreachable: int = 0
    retried: int = 0
    community_posts: int = 0
    channels_gone: int = 0  # picked channels refused for good (back to DMs)
    latencies: list[float] = field(default_factory=list)  # created -> accepted, seconds


class DiscordDelivery:
    def __init__(
        self,
        client: DiscordFrontEnd,
        app: App,
        *,
        worker: str | None = None,
        batch: int = 100,
        concurrency: int = 25,
        lease: timedelta = timedelta(seconds=90),
        idle_seconds: float = 0.5,
        pacer: Pacer | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.app = app
        self.worker = worker or f"discord@{socket.gethostname()}:{os.getpid()}"
        self.batch = batch
        self.lease = lease
        self.idle_seconds = idle_seconds
        self.pacer = pacer or Pacer()
        self.clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self.stats = DeliveryStats()

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
        return await outbox.claim(
            self.app.database, Platform.DISCORD, self.worker, limit=limit, lease=self.lease
        )

    async def _deliver(self, notification: ClaimedNotification) -> None:
        async with self._slots:
            try:
                await self._deliver_one(notification)
            except Exception:  # a bug here must not stop the loop: retry after the lease
                log.exception("discord.delivery_error id=%s", notification.notification_id)

    async def _deliver_one(self, notification: ClaimedNotification) -> None:
        language = notification.language or DEFAULT_LANGUAGE
        reply = render_notification(notification.kind, notification.payload, language)
        picked = notification.notify_channel_id
        if picked is not None and picked.isdigit() and goes_to_channel(notification.kind):
            refused = await self._send(notification, picked, discord.ChannelType.text, reply)
            if refused is None:
                return
            if refused.code not in CHANNEL_GONE:
                await self._give_up(notification, picked, refused)
                return
            # Deleted, or the bot lost access: this one and the next go to the DM.
            await self._channel_gone(notification, picked, refused, language)
        chat = notification.chat_id
        if chat is None or not chat.isdigit():
            await outbox.acknowledge(self.app.database, notification.delivery_id, "no_chat")
            return
        refused = await self._send(notification, chat, discord.ChannelType.private, reply)
        if refused is None:
            return
        if isinstance(refused, discord.Forbidden):
            if refused.code != CANNOT_MESSAGE_USER:
                log.warning("discord.notification_forbidden id=%s code=%s", chat, refused.code)
            self.stats.unreachable += 1
            self.client.dms_closed(chat, language)  # before the user can see it in the database
            await chat_refused(self.app, Platform.DISCORD, notification.user_id)
            await self._post_to_communities(notification)  # the trade happened all the same
        elif isinstance(refused, discord.NotFound):
            # The DM channel is gone (the account was deleted): stop trying it.
            self.stats.unreachable += 1
            await chat_refused(self.app, Platform.DISCORD, notification.user_id)
        else:
            await self._give_up(notification, chat, refused)

    async def _send(
        self,
        notification: ClaimedNotification,
        chat: str,
        kind: discord.ChannelType,
        reply: Reply,
    ) -> discord.HTTPException | None:
        """Send once. None when that settled it: accepted (then acknowledged) or to be
        retried later (released). Otherwise Discord's refusal, for the caller to judge.
        """
        channel = self.client.get_partial_messageable(int(chat), type=kind)
        try:
            await self.pacer.wait()
            await self.client.send_reply(channel, reply)
        except discord.RateLimited as exc:
            await self._release(notification, "429", exc.retry_after)
            return None
        except discord.HTTPException as exc:
            if exc.status == 429 or exc.status >= 500:
                await self._release(notification, str(exc.status), 5)
                return None
            return exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            await self._release(notification, type(exc).__name__, 5)
            return None
        accepted = self.clock()
        await outbox.acknowledge(self.app.database, notification.delivery_id)
        self.stats.sent += 1
        self.stats.latencies.append((accepted - notification.created_at).total_seconds())
        await self._post_to_communities(notification)
        return None

    async def _give_up(
        self, notification: ClaimedNotification, chat: str, refused: discord.HTTPException
    ) -> None:
        """The message itself is wrong: retrying would fail the same way."""
        self.stats.failed += 1
        log.error("discord.notification_refused id=%s code=%s", chat, refused.code)
        await outbox.acknowledge(self.app.database, notification.delivery_id, "failed")

    async def _channel_gone(
        self,
        notification: ClaimedNotification,
        channel: str,
        refused: discord.HTTPException,
        language: str,
    ) -> None:
        """Back to DMs; the one delivery that cleared the choice tells the user, by DM."""
        log.info(
            "discord.notify_channel_gone user=%s channel=%s code=%s",
            notification.user_id,
            channel,
            refused.code,
        )
        cleared = await notification_channel_lost(
            self.app, Platform.DISCORD, notification.user_id, channel
        )
        if not cleared:
            return
        self.stats.channels_gone += 1
        chat = notification.chat_id
        if chat is None or not chat.isdigit():
            return
        t = Translator(language)
        notice = Reply.text(t("notify_channel.lost", channel=channel_mention(channel)))
        dm = self.client.get_partial_messageable(int(chat), type=discord.ChannelType.private)
        try:
            await self.pacer.wait()
            await self.client.send_reply(dm, notice)
        except (discord.HTTPException, discord.RateLimited, aiohttp.ClientError, OSError) as exc:
            # The notification itself still goes to the DM, where a closed DM is handled.
            log.warning("discord.notify_channel_notice_failed user=%s error=%s",
                        notification.user_id, type(exc).__name__)  # fmt: skip

    async def _release(self, notification: ClaimedNotification, error: str, seconds: float) -> None:
        self.stats.retried += 1
        await outbox.release(
            self.app.database,
            notification.delivery_id,
            error=error,
            retry_in=timedelta(seconds=seconds),
        )

    async def _post_to_communities(self, notification: ClaimedNotification) -> None:
        """Best effort, at most once: after the acknowledgement, never repeated by a retry."""
        if notification.kind not in TRADE_KINDS:
            return
        for target in await share_targets(self.app, Platform.DISCORD, notification.user_id):
            guild = self.client.get_guild(int(target.community_id))
            if guild is None:
                continue  # the bot is no longer in that server
            language = language_from_client(str(guild.preferred_locale))
            text = trade_post(
                notification.kind, notification.payload, target.platform_user_id, language
            )
            if text is None:
                continue
            channel = self.client.get_partial_messageable(
                int(target.channel_id), guild_id=guild.id, type=discord.ChannelType.text
            )
            try:
                await self.pacer.wait()
                await channel.send(text)
            except discord.HTTPException as exc:
                log.warning(
                    "discord.community_post_failed guild=%s channel=%s code=%s",
                    guild.id,
                    target.channel_id,
                    exc.code,
                )
                continue
            self.stats.community_posts += 1
