"""One account on Telegram and Discord: a code made on one platform, redeemed on the other."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from db.models import AuditEntry, Bot, ChatIdentity, ExchangeCredential, Platform, User
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.use_cases import one_time_codes

LINK_TTL = timedelta(minutes=10)


async def create_link_code(app: App, user_id: int) -> str:
    async with app.database.transaction() as session:
        return await one_time_codes.issue(session, user_id, "link", ttl=LINK_TTL)


async def redeem_link_code(app: App, platform: Platform, platform_user_id: str, code: str) -> int:
    """Attach this chat account to the code's user. Returns that user's id.

    Refused when this chat account already has bots or keys of its own (we never
    merge two trading accounts silently) or when the target already has an
    account on this platform.
    """
    async with app.database.transaction() as session:
        row = await one_time_codes.consume(session, "link", code)
        if row is None:
            raise UserError("link_code_invalid")
        target = row.user_id
        identity = await session.scalar(
            select(ChatIdentity).where(
                ChatIdentity.platform == platform,
                ChatIdentity.platform_user_id == platform_user_id,
            )
        )
        if identity is not None and identity.user_id == target:
            return target
        same_platform = await session.scalar(
            select(ChatIdentity.id).where(
                ChatIdentity.user_id == target, ChatIdentity.platform == platform
            )
        )
        if same_platform is not None:
            raise UserError("link_same_platform")
        if identity is not None:
            old_user = identity.user_id
            owns = await session.scalar(
                select(func.count()).select_from(Bot).where(Bot.user_id == old_user)
            )
            keys = await session.scalar(
                select(func.count())
                .select_from(ExchangeCredential)
                .where(ExchangeCredential.user_id == old_user)
            )
            if owns or keys:
                raise UserError("link_account_has_data")
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
