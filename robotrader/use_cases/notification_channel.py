"""Where a user's notifications go on a platform: the private chat, or a channel they picked.

A picked channel is shared: everyone who can read it sees the user's trades with
their amounts (billing never goes there: ``CHANNEL_KINDS``). So it must be a
channel of a server where the user can read and write (the platform says so,
passed in as ``user_can_post``) and the bot can post (``bot_can_post``). The
choice is kept apart from the private chat that registration records on every
interaction, so using the bot never undoes it. When the platform later refuses
the channel for good (deleted, access lost), the notifications go back to the
private chat: see ``notification_channel_lost``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from db.models import AuditEntry, ChatIdentity, Platform
from db.models.users import NOTIFY_CHANNEL, notify_channel_id
from db.notifications import NotificationKind
from robotrader.app import App
from robotrader.errors import UserError

# What a picked channel receives: what the bots do. Billing stays in the private chat
# (a failed payment carries a Stripe portal link that opens the user's billing to
# whoever clicks it). A kind added later goes to the private chat until listed here.
CHANNEL_KINDS = frozenset(
    {
        NotificationKind.TRADE_OPENED,
        NotificationKind.TRADE_CLOSED,
        NotificationKind.ORDER_REJECTED,
        NotificationKind.BOT_PAUSED,
        NotificationKind.DATA_FALLBACK,
        NotificationKind.SIGNAL_EXPIRED,
        NotificationKind.KILL_SWITCH,
        NotificationKind.DAILY_SUMMARY,
        NotificationKind.BACKTEST_DONE,
        NotificationKind.BACKTEST_FAILED,
    }
)


def goes_to_channel(kind: str) -> bool:
    """Whether a notification of this kind may be posted in a channel the user picked."""
    return kind in CHANNEL_KINDS


@dataclass(frozen=True)
class NotificationTarget:
    """A picked channel (and its server), or both None: the private chat."""

    channel_id: str | None = None
    guild_id: str | None = None


def _target(extra: dict[str, Any] | None) -> NotificationTarget:
    channel = notify_channel_id(extra)
    if channel is None:
        return NotificationTarget()
    guild = (extra or {})[NOTIFY_CHANNEL].get("guild_id")
    return NotificationTarget(channel, str(guild) if guild else None)


def _snowflake(value: str) -> str | None:
    value = value.strip()
    return value if value.isdigit() and len(value) <= 64 else None


async def notification_target(
    app: App, platform: Platform, platform_user_id: str
) -> NotificationTarget:
    """Where this chat account's notifications go now."""
    async with app.database.sessions() as session:
        extra = await session.scalar(
            select(ChatIdentity.extra).where(
                ChatIdentity.platform == platform,
                ChatIdentity.platform_user_id == platform_user_id,
            )
        )
    return _target(extra)


async def set_notification_channel(
    app: App,
    platform: Platform,
    platform_user_id: str,
    channel_id: str,
    guild_id: str,
    *,
    user_can_post: bool,
    bot_can_post: bool,
) -> NotificationTarget:
    """Post this chat account's notifications in ``channel_id`` of server ``guild_id``."""
    guild = _snowflake(guild_id)
    if guild is None:
        raise UserError("notify_channel_server_only")
    channel = _snowflake(channel_id)
    if channel is None:
        raise UserError("notify_channel_unknown")
    if not user_can_post:
        raise UserError("notify_channel_user_cannot_post")
    if not bot_can_post:
        raise UserError("notify_channel_bot_cannot_post")
    target = NotificationTarget(channel, guild)
    await _store(app, platform, platform_user_id, target)
    return target


async def clear_notification_channel(
    app: App, platform: Platform, platform_user_id: str
) -> NotificationTarget:
    """Notifications back to the private chat."""
    target = NotificationTarget()
    await _store(app, platform, platform_user_id, target)
    return target


async def _store(
    app: App, platform: Platform, platform_user_id: str, target: NotificationTarget
) -> None:
    async with app.database.transaction() as session:
        identity = await session.scalar(
            select(ChatIdentity)
            .where(
                ChatIdentity.platform == platform,
                ChatIdentity.platform_user_id == platform_user_id,
            )
            .with_for_update()
        )
        assert identity is not None  # the chat core registers every account first
        extra = {k: v for k, v in (identity.extra or {}).items() if k != NOTIFY_CHANNEL}
        if target.channel_id is not None:
            extra[NOTIFY_CHANNEL] = {"channel_id": target.channel_id, "guild_id": target.guild_id}
            identity.reachable = True  # a working channel, whatever the private chat does
        identity.extra = extra  # a new dict: SQLAlchemy sees the change
        session.add(
            AuditEntry(
                user_id=identity.user_id, platform=str(platform),
                platform_user_id=platform_user_id,
                action="notify.channel" if target.channel_id else "notify.private",
                detail={"guild": target.guild_id, "channel": target.channel_id},
            )
        )  # fmt: skip


async def notification_channel_lost(
    app: App, platform: Platform, user_id: int, channel_id: str
) -> bool:
    """The platform refuses the picked ``channel_id`` for good: back to the private chat.

    True for the one caller that cleared it (many notifications may fail on the
    channel at once; the user is to be told once), False if it was no longer picked.
    """
    async with app.database.sessions() as session:
        identities = (
            await session.execute(
                select(ChatIdentity.id, ChatIdentity.platform_user_id, ChatIdentity.extra).where(
                    ChatIdentity.user_id == user_id, ChatIdentity.platform == platform
                )
            )
        ).all()
    for identity_id, platform_user_id, extra in identities:
        if notify_channel_id(extra) != channel_id:
            continue
        kept = {k: v for k, v in (extra or {}).items() if k != NOTIFY_CHANNEL}
        # Conditional on the channel still being picked: of concurrent callers one wins,
        # without holding a read open across the write (SQLite would refuse the upgrade).
        still_picked = ChatIdentity.extra[(NOTIFY_CHANNEL, "channel_id")].as_string() == channel_id
        async with app.database.transaction() as session:
            cleared = await session.execute(
                update(ChatIdentity)
                .where(ChatIdentity.id == identity_id, still_picked)
                .values(extra=kept)
            )
            if not cleared.rowcount:  # type: ignore[attr-defined]
                continue
            session.add(
                AuditEntry(
                    user_id=user_id, platform=str(platform), platform_user_id=platform_user_id,
                    action="notify.channel_lost", detail={"channel": channel_id},
                )
            )  # fmt: skip
        return True
    return False
