"""One account on Telegram and Discord: a code made on one platform, redeemed on the other.

Redeeming is two steps: ``preview_link_code`` names the account a code would join, and
only the identity being linked, pressing a button that names it, calls
``redeem_link_code``. A code alone (a ``start=link-<code>`` deep link someone sent you)
never moves an identity: that would hand your future bots and keys to whoever made it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AuditEntry, Bot, ChatIdentity, ExchangeCredential, Platform, User
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.use_cases import one_time_codes

LINK_TTL = timedelta(minutes=10)
CODE = re.compile(r"[A-Za-z0-9]{4,16}")
PLATFORM_NAMES = {Platform.TELEGRAM: "Telegram", Platform.DISCORD: "Discord"}


@dataclass(frozen=True)
class LinkTarget:
    """The account a code joins, as its owner is known to the identity being linked."""

    user_id: int
    name: str  # a display name of that account's chat identity (or its number)
    platform: str  # where that identity talks from ("Discord")
    already_linked: bool  # the identity belongs to that account already


def normalize_code(code: str) -> str:
    """The code as issued (upper case); UserError when it cannot be one."""
    code = code.strip()
    if not CODE.fullmatch(code):
        raise UserError("link_code_invalid")
    return code.upper()


async def _identity(
    session: AsyncSession, platform: Platform, platform_user_id: str
) -> ChatIdentity | None:
    return await session.scalar(
        select(ChatIdentity).where(
            ChatIdentity.platform == platform, ChatIdentity.platform_user_id == platform_user_id
        )
    )


async def _check_movable(
    session: AsyncSession, platform: Platform, target: int, identity: ChatIdentity | None
) -> None:
    """Refuse a link that would merge two trading accounts or two chats of one platform."""
    same_platform = await session.scalar(
        select(ChatIdentity.id).where(
            ChatIdentity.user_id == target, ChatIdentity.platform == platform
        )
    )
    if same_platform is not None:
        raise UserError("link_same_platform")
    if identity is None:
        return
    owns = await session.scalar(
        select(func.count()).select_from(Bot).where(Bot.user_id == identity.user_id)
    )
    keys = await session.scalar(
        select(func.count())
        .select_from(ExchangeCredential)
        .where(ExchangeCredential.user_id == identity.user_id)
    )
    if owns or keys:
        raise UserError("link_account_has_data")


async def preview_link_code(
    app: App, platform: Platform, platform_user_id: str, code: str
) -> LinkTarget:
    """The account ``code`` would join this identity to, without using the code.

    Raises the same refusals as ``redeem_link_code``, so the question is never asked
    when the answer could only be no.
    """
    code = normalize_code(code)
    async with app.database.transaction() as session:
        row = await one_time_codes.peek(session, "link", code)
        if row is None:
            raise UserError("link_code_invalid")
        target = row.user_id
        identity = await _identity(session, platform, platform_user_id)
        already = identity is not None and identity.user_id == target
        if not already:
            await _check_movable(session, platform, target, identity)
        others = (
            await session.scalars(
                select(ChatIdentity).where(ChatIdentity.user_id == target).order_by(ChatIdentity.id)
            )
        ).all()
        named = next((i for i in others if i.display_name), others[0] if others else None)
        name = (named.display_name if named else None) or f"#{target}"
        where = PLATFORM_NAMES.get(Platform(named.platform), "RoboTrader") if named else ""
        return LinkTarget(target, name[:32], where, already)


async def cancel_link_code(app: App, code: str) -> None:
    """Spend a code its recipient declined, so a stray confirm button cannot use it later."""
    async with app.database.transaction() as session:
        await one_time_codes.consume(session, "link", normalize_code(code))


async def create_link_code(app: App, user_id: int) -> str:
    async with app.database.transaction() as session:
        return await one_time_codes.issue(session, user_id, "link", ttl=LINK_TTL)


async def redeem_link_code(app: App, platform: Platform, platform_user_id: str, code: str) -> int:
    """Attach this chat account to the code's user. Returns that user's id.

    Call it only on an explicit confirmation by the identity being linked (see the module).

    Refused when this chat account already has bots or keys of its own (we never
    merge two trading accounts silently) or when the target already has an
    account on this platform.
    """
    code = normalize_code(code)
    async with app.database.transaction() as session:
        row = await one_time_codes.consume(session, "link", code)
        if row is None:
            raise UserError("link_code_invalid")
        target = row.user_id
        identity = await _identity(session, platform, platform_user_id)
        if identity is not None and identity.user_id == target:
            return target
        await _check_movable(session, platform, target, identity)
        if identity is not None:
            old_user = identity.user_id
            identity.user_id = target
            await session.flush()
            others = await session.scalar(
                select(func.count())
                .select_from(ChatIdentity)
                .where(ChatIdentity.user_id == old_user)
            )
            if not others:
                stale = await session.get(User, old_user)
                if stale is not None:
                    await session.delete(stale)
        else:
            session.add(
                ChatIdentity(user_id=target, platform=platform, platform_user_id=platform_user_id)
            )
        session.add(
            AuditEntry(
                user_id=target,
                platform=str(platform),
                platform_user_id=platform_user_id,
                action="account.link",
            )
        )
        return target
