"""Notification preferences: kinds switched off, and the hour of the daily summary."""

from __future__ import annotations

from dataclasses import dataclass

from db.models import User
from db.notifications import NotificationKind
from robotrader.app import App
from robotrader.errors import UserError

# What a user may mute. Pauses, rejections and billing messages always get through.
MUTABLE_KINDS = (
    NotificationKind.TRADE_OPENED,
    NotificationKind.TRADE_CLOSED,
    NotificationKind.DAILY_SUMMARY,
    NotificationKind.DATA_FALLBACK,
)


@dataclass(frozen=True)
class Preferences:
    muted: frozenset[str]
    daily_summary_hour: int


async def get_preferences(app: App, user_id: int) -> Preferences:
    async with app.database.sessions() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return Preferences(frozenset(user.muted_kinds or []), user.daily_summary_hour)


async def toggle_kind(app: App, user_id: int, kind: str) -> Preferences:
    if kind not in MUTABLE_KINDS:
        raise UserError("unknown_notification_kind")
    async with app.database.transaction() as session:
        user = await session.get(User, user_id, with_for_update=True)
        assert user is not None
        muted = set(user.muted_kinds or [])
        muted ^= {kind}
        user.muted_kinds = sorted(muted)
        return Preferences(frozenset(muted), user.daily_summary_hour)


async def set_summary_hour(app: App, user_id: int, hour: str | int) -> Preferences:
    text = str(hour).strip().removesuffix("h").split(":")[0]
    if not (text.isascii() and text.isdigit()) or len(text) > 2 or not 0 <= int(text) <= 23:
        raise UserError("bad_hour")
    async with app.database.transaction() as session:
        user = await session.get(User, user_id, with_for_update=True)
        assert user is not None
        user.daily_summary_hour = int(text)
        return Preferences(frozenset(user.muted_kinds or []), user.daily_summary_hour)
