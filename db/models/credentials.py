"""Exchange API keys, encrypted by the vault (db/vault.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base
from db.models.enums import CredentialStatus
from db.types import JSONType, UTCDateTime, utcnow


def new_credential_id() -> str:
    return uuid4().hex


class ExchangeCredential(Base):
    __tablename__ = "exchange_credentials"
    __table_args__ = (UniqueConstraint("user_id", "exchange", "label"),)

    # A client-side id: the vault binds each ciphertext to it before the row exists.
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_credential_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    exchange: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(64), default="default")
    api_key_enc: Mapped[bytes] = mapped_column(LargeBinary)
    secret_enc: Mapped[bytes] = mapped_column(LargeBinary)
    passphrase_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    # The vault key id the three fields are encrypted under (rotation finds stale rows by it).
    key_id: Mapped[str] = mapped_column(String(16), index=True)
    # What the exchange said the key may do, when we validated it.
    permissions: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    status: Mapped[CredentialStatus] = mapped_column(String(16), default=CredentialStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
