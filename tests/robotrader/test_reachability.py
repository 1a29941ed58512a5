"""robotrader.use_cases.reachability on the real databases: a chat the platform refuses."""

from __future__ import annotations

from sqlalchemy import select

from db.models import ChatIdentity, NotificationDelivery, Platform
from db.notifications import KillSwitchNotice
from db.outbox import add_notification
from robotrader.app import App
from robotrader.use_cases.accounts import register
from robotrader.use_cases.reachability import chat_refused


async def _identity(app: App, platform: Platform, user: int) -> ChatIdentity:
    async with app.database.sessions() as session:
        row = await session.scalar(
            select(ChatIdentity).where(
                ChatIdentity.user_id == user, ChatIdentity.platform == platform
            )
        )
    assert row is not None
    return row


async def test_a_refused_chat_is_forgotten_and_its_pending_notices_closed(app: App) -> None:
    user = (await register(app, Platform.DISCORD, "d1", chat_id="dm1")).user_id
    async with app.database.transaction() as session:
        for n in range(2):
            await add_notification(session, user_id=user, notice=KillSwitchNotice(bots=1, sold=0,
                                   waiting=0), dedupe_key=f"k{n}")  # fmt: skip
    assert await chat_refused(app, Platform.DISCORD, user) == 2
    identity = await _identity(app, Platform.DISCORD, user)
    assert identity.chat_id is None and not identity.reachable
    async with app.database.sessions() as session:
        outcomes = list(await session.scalars(select(NotificationDelivery.outcome)))
    assert outcomes == ["unreachable", "unreachable"]
    # The next private message makes the chat theirs again.
    await register(app, Platform.DISCORD, "d1", chat_id="dm2")
    identity = await _identity(app, Platform.DISCORD, user)
    assert identity.chat_id == "dm2" and identity.reachable


async def test_only_the_refusing_platform_is_affected(app: App) -> None:
    user = (await register(app, Platform.TELEGRAM, "t1", chat_id="t1")).user_id
    assert await chat_refused(app, Platform.DISCORD, user) == 0
    identity = await _identity(app, Platform.TELEGRAM, user)
    assert identity.chat_id == "t1" and identity.reachable
