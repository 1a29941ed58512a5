"""Users and their chat identities: registration on first contact, language."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from db.models import AuditEntry, ChatIdentity, Plan, Platform, User
from db.session import upsert
from robotrader import languages
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.plans import plan_in_force
from robotrader.text import clean_text


@dataclass(frozen=True)
class Account:
    user_id: int
    plan: Plan  # the plan in force (robotrader/plans.py), not only the stored one
    language: str  # the user's choice, else their client's
    created: bool  # True on the very first contact


async def register(
    app: App,
    platform: Platform,
    platform_user_id: str,
    *,
    chat_id: str | None = None,
    display_name: str | None = None,
    client_language: str | None = None,
) -> Account:
    """The user behind a chat account, created on first contact. Updates chat and language seen.

    Two messages of a new user handled at once (a double tap, a message sent before the
    answer to /start) both find no account: one creates it, the other then uses it.
    """
    find = (
        select(ChatIdentity)
        .where(ChatIdentity.platform == platform, ChatIdentity.platform_user_id == platform_user_id)
        .with_for_update()
    )
    async with app.database.transaction() as session:
        identity = await session.scalar(find)
        created = identity is None
        if identity is None:
            user = User()
            session.add(user)
            await session.flush()
            # Waits for a concurrent registration of the same account to commit; then
            # inserts nothing (instead of failing on the unique constraint).
            identity = await session.scalar(
                upsert(session, ChatIdentity)
                .values(user_id=user.id, platform=platform, platform_user_id=platform_user_id)
                .on_conflict_do_nothing(index_elements=["platform", "platform_user_id"])
                .returning(ChatIdentity)
            )
            if identity is None:  # the other message registered them first
                await session.delete(user)
                created = False
                identity = await session.scalar(find)
                assert identity is not None
                found = await session.get(User, identity.user_id)
                assert found is not None
                user = found
            else:
                session.add(
                    AuditEntry(
                        user_id=user.id, platform=str(platform),
                        platform_user_id=platform_user_id, chat_id=chat_id, action="register",
                    )
                )  # fmt: skip
        else:
            found = await session.get(User, identity.user_id)
            assert found is not None
            user = found
        if chat_id is not None and identity.chat_id != chat_id:
            identity.chat_id = chat_id
            identity.reachable = True
        if display_name:
            identity.display_name = clean_text(display_name, max_length=128)
        if client_language:
            identity.client_language = client_language[:16]
        language = user.language or languages.from_client(
            client_language or identity.client_language
        )
        return Account(user.id, plan_in_force(app.settings, user.plan), language, created)


async def set_language(app: App, user_id: int, language: str) -> str:
    """Pin the user's language (one of ``languages.tags()``); any case, ``pt`` for ``pt-BR``."""
    normalized = languages.parse(language)
    if normalized is None:
        raise UserError(
            "unknown_language", language=language[:16], choices=", ".join(languages.tags())
        )
    async with app.database.transaction() as session:
        user = await session.get(User, user_id)
        assert user is not None
        user.language = normalized
    return normalized
