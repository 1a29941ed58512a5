"""Short-lived single-use codes: stored hashed, compared in constant time by lookup of the hash."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import OneTimeCode
from db.types import utcnow

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud or typed from a phone


def hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


def new_code(length: int = 8) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


async def issue(
    session: AsyncSession, user_id: int, purpose: str, *, ttl: timedelta, code: str | None = None
) -> str:
    code = code or new_code()
    session.add(
        OneTimeCode(
            user_id=user_id, purpose=purpose, code_hash=hash_code(code), expires_at=utcnow() + ttl
        )
    )
    return code


async def peek(session: AsyncSession, purpose: str, code: str) -> OneTimeCode | None:
    """The code's row if it is still usable, left unused; None if unknown, used or expired."""
    row = await session.scalar(
        select(OneTimeCode).where(
            OneTimeCode.code_hash == hash_code(code), OneTimeCode.purpose == purpose
        )
    )
    if row is None or row.used_at is not None or row.expires_at < utcnow():
        return None
    return row


async def consume(session: AsyncSession, purpose: str, code: str) -> OneTimeCode | None:
    """The code's row, marked used; None if unknown, used or expired."""
    row = await session.scalar(
        select(OneTimeCode)
        .where(OneTimeCode.code_hash == hash_code(code), OneTimeCode.purpose == purpose)
        .with_for_update()
    )
    if row is None or row.used_at is not None or row.expires_at < utcnow():
        return None
    row.used_at = utcnow()
    return row
