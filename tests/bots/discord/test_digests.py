"""Digests through the real Discord front end: many fills due for a user go as one message.

The Discord emulator enforces its rate limits and message sizes; a digest stays
within Discord's 2,000 characters of a message, cut between rows when longer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from db import outbox
from db.models import ChatIdentity, NotificationDelivery, Platform
from db.notifications import Notice, PaymentFailedNotice
from tests.bots.discord.conftest import RunningBot, message_text
from tests.bots.telegram.test_digests import _rows_of, fills

ROUTE = "/channels/{channel_id}/messages"


async def _user_id(bot: RunningBot, discord_user: int) -> int:
    async with bot.app.database.sessions() as session:
        identity = await session.scalar(
            select(ChatIdentity).where(ChatIdentity.platform_user_id == str(discord_user))
        )
    assert identity is not None and identity.chat_id is not None
    return identity.user_id


async def _notify(bot: RunningBot, user_id: int, notices: list[Notice], tag: str) -> None:
    async with bot.app.database.transaction() as session:
        for n, notice in enumerate(notices):
            await outbox.add_notification(
                session, user_id=user_id, notice=notice, dedupe_key=f"{tag}:{user_id}:{n}"
            )


async def _delivered(bot: RunningBot, timeout: float = 30) -> None:  # noqa: ASYNC109
    deadline = asyncio.get_running_loop().time() + timeout
    while await outbox.pending_count(bot.app.database, Platform.DISCORD):
        assert asyncio.get_running_loop().time() < deadline, "deliveries still pending"
        await asyncio.sleep(0.1)


def _embed_length(message: dict[str, Any]) -> int:
    return sum(
        len(embed.get("title") or "") + len(embed.get("description") or "")
        for embed in message.get("embeds") or []
    )


async def test_fifty_fills_go_as_digests_after_the_billing_notice_in_portuguese(
    discord_bot: RunningBot,
) -> None:
    user = discord_bot.member(locale="pt-BR")
    await discord_bot.run(user, "ajuda")  # first contact: the DM channel becomes the chat
    user_id = await _user_id(discord_bot, user)
    before = len(discord_bot.emulator.dm_messages(user))
    trades = fills(50)
    billing = PaymentFailedNotice(portal_url="https://billing.example/portal")
    await _notify(discord_bot, user_id, [*trades[:10], billing, *trades[10:]], "dfifty")
    await _delivered(discord_bot)

    messages = discord_bot.emulator.dm_messages(user)[before:]
    texts = [message_text(m) for m in messages]
    assert "ETH/USDT" not in texts[0] and "portal" in texts[0], "billing first, alone"
    digests = messages[1:]
    # 50 rows do not fit in 2,000 characters: cut between rows, each part within the limit.
    assert 2 <= len(digests) <= 4
    assert all(_embed_length(m) <= 2000 and len(m["embeds"]) == 1 for m in digests)
    assert message_text(digests[0]).startswith("🧾 50 operações")
    assert message_text(digests[1]).startswith("🧾 Operações, continuação (2)")
    for notice in trades:
        shown = sum(_rows_of(message_text(m), notice, "pt-BR") for m in digests)
        assert shown == 1, notice
    async with discord_bot.app.database.sessions() as session:
        outcomes = (
            await session.scalars(
                select(NotificationDelivery.outcome).where(NotificationDelivery.user_id == user_id)
            )
        ).all()
    assert outcomes == ["sent"] * 51


async def test_a_digest_refused_once_stays_due_and_goes_once_on_retry(
    discord_bot: RunningBot,
) -> None:
    user = discord_bot.member(locale="en-US")
    await discord_bot.run(user, "help")
    user_id = await _user_id(discord_bot, user)
    before = len(discord_bot.emulator.dm_messages(user))
    trades = fills(8)
    # Without a Via header discord.py takes a 429 for a Cloudflare ban and gives up at once.
    discord_bot.emulator.inject_rate_limit("POST", ROUTE, retry_after=0.2, via=False)
    await _notify(discord_bot, user_id, list(trades), "drefused")
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        async with discord_bot.app.database.sessions() as session:
            errors = set(
                await session.scalars(
                    select(NotificationDelivery.last_error).where(
                        NotificationDelivery.user_id == user_id
                    )
                )
            )
        if errors == {"429"}:
            break
        assert asyncio.get_running_loop().time() < deadline, errors
        await asyncio.sleep(0.05)
    assert discord_bot.emulator.dm_messages(user)[before:] == []
    await _delivered(discord_bot, timeout=20)
    [digest] = discord_bot.emulator.dm_messages(user)[before:]
    for notice in trades:
        assert _rows_of(message_text(digest), notice, "en") == 1
