"""Delivering the outbox to Discord (the loop itself: bots.core.delivery).

Each notification about the user's bots goes to the channel they picked with
/notify channel, else (and billing always) to their DM channel (the chat the core
recorded). A picked channel Discord
refuses for good (deleted: 10003; access lost: 50001, 50013) is dropped: that
notification and the next go to the DM, and the user is told once, by DM.

discord.py paces every request by the ``X-RateLimit-*`` headers of its bucket
and waits out a 429's ``retry_after`` before trying again; on top of that the
sends here stay under Discord's global 50 requests a second, which discord.py
only learns about from a 429.

A user whose DMs are closed (403, code 50007) is marked unreachable on Discord
and told once, ephemerally, at their next interaction in a server.

Trades of members who share them with a community are then posted in that
community's channel: pair, side and PnL %, never an amount.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
import discord

from bots.core.delivery import DeliveryStats, OutboxDelivery, Outcome
from bots.core.digest import Outgoing
from bots.core.replies import Reply
from bots.discord.community import channel_mention, trade_post
from bots.discord.rendering import render_embeds
from robotrader import languages
from robotrader.app import App
from robotrader.enums import Platform
from robotrader.i18n import Translator
from robotrader.notifications import NotificationKind
from robotrader.use_cases.community import share_targets
from robotrader.use_cases.notification_channel import goes_to_channel, notification_channel_lost

if TYPE_CHECKING:
    from bots.discord.client import DiscordFrontEnd

log = logging.getLogger(__name__)

CANNOT_MESSAGE_USER = 50007
# A picked channel refused for good: Unknown Channel, Missing Access, Missing Permissions.
CHANNEL_GONE = frozenset({10003, 50001, 50013})
MAX_MESSAGE = 2000  # characters of a message's text; a digest is cut to fit
TRADE_KINDS = frozenset({NotificationKind.TRADE_OPENED, NotificationKind.TRADE_CLOSED})


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
class DiscordStats(DeliveryStats):
    community_posts: int = 0
    channels_gone: int = 0  # picked channels refused for good (back to DMs)


class DiscordDelivery(OutboxDelivery):
    platform: ClassVar[Platform] = Platform.DISCORD
    stats: DiscordStats

    def __init__(
        self, client: DiscordFrontEnd, app: App, *, pacer: Pacer | None = None, **options: Any
    ) -> None:
        super().__init__(app, **options)
        self.client = client
        self.pacer = pacer or Pacer()
        self.stats = DiscordStats()

    def fits(self, reply: Reply) -> bool:
        """One embed of at most 2,000 characters: what a message's text may hold on Discord."""
        embeds = render_embeds(reply)
        return len(embeds) == 1 and len(embeds[0]) <= MAX_MESSAGE

    async def send(self, message: Outgoing) -> Outcome:
        language = message.language
        picked = message.first.notify_channel_id
        if picked is not None and picked.isdigit() and goes_to_channel(message.kind):
            refused = await self._send(message, picked, discord.ChannelType.text)
            if isinstance(refused, Outcome):
                return refused
            if refused.code not in CHANNEL_GONE:
                return await self.give_up(message, f"channel {picked}: {refused.code}")
            # Deleted, or the bot lost access: this one and the next go to the DM.
            await self._channel_gone(message, picked, refused, language)
        chat = message.chat_id
        if chat is None or not chat.isdigit():
            return await self.no_chat(message)
        refused = await self._send(message, chat, discord.ChannelType.private)
        if isinstance(refused, Outcome):
            return refused
        if isinstance(refused, discord.Forbidden):
            if refused.code != CANNOT_MESSAGE_USER:
                log.warning("discord.notification_forbidden id=%s code=%s", chat, refused.code)
            self.client.dms_closed(chat, language)  # before the user can see it in the database
            outcome = await self.unreachable(message)
            await self._post_to_communities(message)  # the trades happened all the same
            return outcome
        if isinstance(refused, discord.NotFound):
            # The DM channel is gone (the account was deleted): stop trying it.
            return await self.unreachable(message)
        return await self.give_up(message, f"dm {chat}: {refused.code}")

    async def _send(
        self, message: Outgoing, chat: str, kind: discord.ChannelType
    ) -> discord.HTTPException | Outcome:
        """Send once. An outcome when that settled it: accepted (then acknowledged) or to
        be retried later (released). Otherwise Discord's refusal, for the caller to judge.
        """
        channel = self.client.get_partial_messageable(int(chat), type=kind)
        try:
            await self.pacer.wait()
            await self.client.send_reply(channel, message.reply)
        except discord.RateLimited as exc:
            return await self.retry_later(message, "429", exc.retry_after)
        except discord.HTTPException as exc:
            if exc.status == 429 or exc.status >= 500:
                return await self.retry_later(message, str(exc.status), 5)
            return exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return await self.retry_later(message, type(exc).__name__, 5)
        outcome = await self.accepted(message)
        await self._post_to_communities(message)
        return outcome

    async def _channel_gone(
        self,
        message: Outgoing,
        channel: str,
        refused: discord.HTTPException,
        language: str,
    ) -> None:
        """Back to DMs; the one delivery that cleared the choice tells the user, by DM."""
        log.info(
            "discord.notify_channel_gone user=%s channel=%s code=%s",
            message.user_id,
            channel,
            refused.code,
        )
        cleared = await notification_channel_lost(
            self.app, Platform.DISCORD, message.user_id, channel
        )
        if not cleared:
            return
        self.stats.channels_gone += 1
        chat = message.chat_id
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
                        message.user_id, type(exc).__name__)  # fmt: skip

    async def _post_to_communities(self, message: Outgoing) -> None:
        """Best effort, at most once: after the acknowledgement, never repeated by a retry."""
        trades = [n for n in message.notifications if n.kind in TRADE_KINDS]
        if not trades:
            return
        for target in await share_targets(self.app, Platform.DISCORD, message.user_id):
            guild = self.client.get_guild(int(target.community_id))
            if guild is None:
                continue  # the bot is no longer in that server
            language = languages.from_client(str(guild.preferred_locale))
            channel = self.client.get_partial_messageable(
                int(target.channel_id), guild_id=guild.id, type=discord.ChannelType.text
            )
            for notification in trades:
                text = trade_post(
                    notification.kind, notification.payload, target.platform_user_id, language
                )
                if text is None:
                    continue
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
                    break
                self.stats.community_posts += 1
