"""Where notifications go: a picked channel survives registration, is refused when unusable,
and is dropped once (and only once) when the platform refuses it for good."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from db import outbox
from db.models import AuditEntry, ChatIdentity, Platform
from db.notifications import DataFallbackNotice
from db.session import Database
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.settings import Settings
from robotrader.use_cases.accounts import register
from robotrader.use_cases.notification_channel import (
    NotificationTarget,
    clear_notification_channel,
    goes_to_channel,
    notification_channel_lost,
    notification_target,
    set_notification_channel,
)
from robotrader.use_cases.reachability import chat_refused

DISCORD = Platform.DISCORD
GUILD, CHANNEL, DM = "900", "55", "777"


@pytest.fixture
async def app(settings: Settings, database: Database) -> App:
    return App.from_settings(settings, database)


async def _discord_user(app: App, discord_id: str = "11") -> int:
    account = await register(app, DISCORD, discord_id, chat_id=DM, client_language="pt-BR")
    return account.user_id


async def _pick(app: App, discord_id: str = "11", channel: str = CHANNEL) -> NotificationTarget:
    return await set_notification_channel(
        app, DISCORD, discord_id, channel, GUILD, user_can_post=True, bot_can_post=True
    )


async def _notify(app: App, user_id: int, key: str) -> None:
    async with app.database.transaction() as session:
        await outbox.add_notification(
            session, user_id=user_id, notice=DataFallbackNotice(bot_id=1, bot=key), dedupe_key=key
        )


async def test_a_picked_channel_is_claimed_with_the_dm_and_survives_registration(app: App) -> None:
    user_id = await _discord_user(app)
    assert await notification_target(app, DISCORD, "11") == NotificationTarget()
    assert await _pick(app) == NotificationTarget(CHANNEL, GUILD)
    # Every interaction registers the account again, with the DM it came from.
    await register(app, DISCORD, "11", chat_id="778", client_language="en-US")
    assert await notification_target(app, DISCORD, "11") == NotificationTarget(CHANNEL, GUILD)
    await _notify(app, user_id, "n1")
    [claimed] = await outbox.claim(app.database, DISCORD, "w")
    assert (claimed.notify_channel_id, claimed.chat_id) == (CHANNEL, "778")

    assert await clear_notification_channel(app, DISCORD, "11") == NotificationTarget()
    await _notify(app, user_id, "n2")
    [claimed] = await outbox.claim(app.database, DISCORD, "w")
    assert claimed.notify_channel_id is None
    audit = select(AuditEntry.action).where(AuditEntry.user_id == user_id)
    async with app.database.sessions() as session:
        actions = (await session.scalars(audit.order_by(AuditEntry.id))).all()
    assert actions == ["register", "notify.channel", "notify.private"]


@pytest.mark.parametrize(
    ("guild", "channel", "user_can_post", "bot_can_post", "error"),
    [
        ("", CHANNEL, True, True, "notify_channel_server_only"),
        (GUILD, "#general", True, True, "notify_channel_unknown"),
        (GUILD, CHANNEL, False, True, "notify_channel_user_cannot_post"),
        (GUILD, CHANNEL, True, False, "notify_channel_bot_cannot_post"),
    ],
)
async def test_an_unusable_channel_is_refused(
    app: App, guild: str, channel: str, user_can_post: bool, bot_can_post: bool, error: str
) -> None:
    await _discord_user(app)
    with pytest.raises(UserError) as refused:
        await set_notification_channel(
            app, DISCORD, "11", channel, guild,
            user_can_post=user_can_post, bot_can_post=bot_can_post,
        )  # fmt: skip
    assert refused.value.key == error
    assert await notification_target(app, DISCORD, "11") == NotificationTarget()


async def test_a_channel_lost_is_cleared_once_even_by_concurrent_deliveries(app: App) -> None:
    user_id = await _discord_user(app)
    await _pick(app)
    assert await notification_channel_lost(app, DISCORD, user_id, "56") is False  # not that one
    results = await asyncio.gather(
        *(notification_channel_lost(app, DISCORD, user_id, CHANNEL) for _ in range(5))
    )
    assert sorted(results) == [False, False, False, False, True]
    assert await notification_target(app, DISCORD, "11") == NotificationTarget()
    # A channel picked again later is another choice, and can be lost again.
    await _pick(app, channel="56")
    assert await notification_channel_lost(app, DISCORD, user_id, CHANNEL) is False
    assert await notification_channel_lost(app, DISCORD, user_id, "56") is True


async def test_picking_a_channel_makes_a_user_with_closed_dms_reachable(app: App) -> None:
    user_id = await _discord_user(app)
    await chat_refused(app, DISCORD, user_id)  # their DMs refused a notification
    await _pick(app)
    async with app.database.sessions() as session:
        identity = await session.scalar(
            select(ChatIdentity).where(ChatIdentity.platform_user_id == "11")
        )
    assert identity is not None and identity.reachable
    await _notify(app, user_id, "n1")
    [claimed] = await outbox.claim(app.database, DISCORD, "w")
    assert (claimed.notify_channel_id, claimed.chat_id) == (CHANNEL, None)


def test_billing_never_goes_to_a_shared_channel() -> None:
    assert goes_to_channel("trade_opened") and goes_to_channel("daily_summary")
    assert not goes_to_channel("payment_failed")  # a Stripe portal link to the user's billing
    assert not goes_to_channel("plan_changed")
    assert not goes_to_channel("a_kind_added_later")
