"""Notifications within Discord's rate limits: paced by the headers, a 429 retried, none lost."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from sqlalchemy import select

from db import outbox
from db.models import ChatIdentity, Platform
from db.notifications import DailySummaryNotice
from tests.bots.discord.conftest import RunningBot, message_text
from tests.emulators.discord_api import DEFAULT_ROUTE_LIMITS

ROUTE = "/channels/{channel_id}/messages"


async def _user_id(bot: RunningBot, discord_user: int) -> int:
    async with bot.app.database.sessions() as session:
        identity = await session.scalar(
            select(ChatIdentity).where(ChatIdentity.platform_user_id == str(discord_user))
        )
    assert identity is not None and identity.chat_id is not None
    return identity.user_id


async def test_a_burst_is_paced_by_the_bucket_headers_and_a_429_is_waited_out(
    discord_bot: RunningBot,
) -> None:
    emulator = discord_bot.emulator
    user = discord_bot.member()
    await discord_bot.run(user, "ajuda")  # first contact: the DM channel becomes the chat
    user_id = await _user_id(discord_bot, user)
    default = DEFAULT_ROUTE_LIMITS[f"POST {ROUTE}"]
    emulator.set_route_limit("POST", ROUTE, 2, 0.3)
    try:
        emulator.inject_rate_limit("POST", ROUTE, retry_after=0.1)
        before = emulator.stats
        started = time.monotonic()
        async with discord_bot.app.database.transaction() as session:
            for number in range(6):
                await outbox.add_notification(
                    session,
                    user_id=user_id,
                    notice=DailySummaryNotice(
                        date="2026-12-05", pnl=Decimal(number), trades=number, open_positions=0
                    ),
                    dedupe_key=f"burst:{user_id}:{number}",
                )
        delivered = await emulator.wait_for_async(
            lambda: len(emulator.dm_messages(user)) == 6 and emulator.dm_messages(user), 15
        )
        elapsed = time.monotonic() - started
        after = emulator.stats
    finally:
        emulator.set_route_limit("POST", ROUTE, default.limit, default.per)
    summaries = [m for m in delivered if "Hoje" in message_text(m)]
    assert len(summaries) == 6
    assert after["rate_limited"] - before["rate_limited"] == 1  # only the injected 429
    assert elapsed >= 0.6  # two per 0.3 s, as the headers announced
    await asyncio.sleep(0.3)
    assert len(emulator.dm_messages(user)) == 6  # nothing sent twice
    for _ in range(100):  # each acknowledged once discord.py returns (it may wait a bucket out)
        if not await outbox.pending_count(discord_bot.app.database, Platform.DISCORD):
            break
        await asyncio.sleep(0.05)
    assert await outbox.pending_count(discord_bot.app.database, Platform.DISCORD) == 0
    assert len(emulator.dm_messages(user)) == 6
    assert discord_bot.service.delivery.stats.sent >= 6
