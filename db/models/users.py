"""Users and the chat accounts they talk to us from."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.models.base import Base
from db.models.enums import Plan, Platform
from db.types import JSONType, UTCDateTime, utcnow

# ChatIdentity.extra[NOTIFY_CHANNEL]: a channel the user picked for their notifications
# instead of the private chat, ``{"channel_id": str, "guild_id": str}``. Kept out of
# ``chat_id``, which registration keeps pointing at the private chat.
NOTIFY_CHANNEL = "notify_channel"


def notify_channel_id(extra: Mapping[str, Any] | None) -> str | None:
    """The channel picked for notifications, from an identity's ``extra``; None: the DM."""
    picked = (extra or {}).get(NOTIFY_CHANNEL)
    channel = picked.get("channel_id") if isinstance(picked, Mapping) else None
    return str(channel) if channel else None


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan: Mapped[Plan] = mapped_column(String(16), default=Plan.FREE)
    # None: follow the language of the chat client the user writes from.
    language: Mapped[str | None] = mapped_column(String(8), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Notification kinds the user switched off, and the hour (UTC) of the daily summary.
    muted_kinds: Mapped[list[str]] = mapped_column(JSONType, default=list)
    daily_summary_hour: Mapped[int] = mapped_column(Integer, default=20)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)

    identities: Mapped[list[ChatIdentity]] = relationship(
        back_populates="user", lazy="raise", cascade="all, delete-orphan"
    )


class ChatIdentity(Base):
    """One account on one chat platform; a user may link several (Telegram and Discord)."""

    __tablename__ = "chat_identities"
    __table_args__ = (UniqueConstraint("platform", "platform_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    platform: Mapped[Platform] = mapped_column(String(16))
    platform_user_id: Mapped[str] = mapped_column(String(64))
    # The private chat / DM channel; notifications go there unless a channel was picked
    # (see NOTIFY_CHANNEL).
    chat_id: Mapped[str | None] = mapped_column(String(64), default=None)
    display_name: Mapped[str | None] = mapped_column(String(128), default=None)
    client_language: Mapped[str | None] = mapped_column(String(16), default=None)
    # False once the platform told us the user blocked the bot or closed DMs.
    reachable: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Per-identity settings that need no column of their own (NOTIFY_CHANNEL).
    extra: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    user: Mapped[User] = relationship(back_populates="identities", lazy="raise")
