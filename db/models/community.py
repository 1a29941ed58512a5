"""Communities (Discord servers): where the bot posts members' trades, and who shares them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base
from db.models.enums import Platform
from db.types import UTCDateTime, utcnow


class CommunityChannel(Base):
    """The channel of a community (a Discord server) where shared trades are posted."""

    __tablename__ = "community_channels"
    __table_args__ = (UniqueConstraint("platform", "community_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[Platform] = mapped_column(String(16))
    community_id: Mapped[str] = mapped_column(String(64))  # the Discord guild id
    channel_id: Mapped[str] = mapped_column(String(64))
    # The admin who picked it (kept for the audit trail when they leave).
    set_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class CommunityMember(Base):
    """A user who opted in to share their trades (pair, side, PnL %) with one community.

    Opting in is per community: sharing with one server says nothing about another.
    """

    __tablename__ = "community_members"
    __table_args__ = (UniqueConstraint("platform", "community_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[Platform] = mapped_column(String(16))
    community_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # How the community knows the member: their id on that platform (rendered as a mention).
    platform_user_id: Mapped[str] = mapped_column(String(64))
    shared_since: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
