"""robotrader.use_cases.accounts on the real databases: registration and language."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from db.models import AuditEntry, ChatIdentity, Plan, Platform, User
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.use_cases.accounts import register, set_language


async def _count(app: App, model: type) -> int:
    async with app.database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_the_first_contact_creates_a_free_user(app: App) -> None:
    first = await register(app, Platform.TELEGRAM, "7", chat_id="7", client_language="pt-br",
                           display_name="Ana")  # fmt: skip
    assert (first.plan, first.language, first.created) == (Plan.FREE, "pt-BR", True)
    again = await register(app, Platform.TELEGRAM, "7")
    assert (again.user_id, again.created, again.language) == (first.user_id, False, "pt-BR")
    async with app.database.sessions() as session:
        identity = await session.scalar(select(ChatIdentity))
        actions = list(await session.scalars(select(AuditEntry.action)))
    assert identity is not None and (identity.chat_id, identity.display_name) == ("7", "Ana")
    assert actions == ["register"]


async def test_the_same_id_on_another_platform_is_another_user(app: App) -> None:
    telegram = await register(app, Platform.TELEGRAM, "7")
    discord = await register(app, Platform.DISCORD, "7")
    assert telegram.user_id != discord.user_id and discord.created


async def test_a_double_tap_registers_once(app: App) -> None:
    accounts = await asyncio.gather(*(register(app, Platform.DISCORD, "42") for _ in range(4)))
    assert len({a.user_id for a in accounts}) == 1
    assert await _count(app, User) == 1 and await _count(app, ChatIdentity) == 1


async def test_a_new_chat_makes_the_user_reachable_again(app: App) -> None:
    account = await register(app, Platform.TELEGRAM, "7", chat_id="7")
    async with app.database.transaction() as session:
        identity = await session.scalar(select(ChatIdentity))
        assert identity is not None
        identity.reachable, identity.chat_id = False, None
    await register(app, Platform.TELEGRAM, "7", chat_id="7")
    async with app.database.sessions() as session:
        identity = await session.scalar(
            select(ChatIdentity).where(ChatIdentity.user_id == account.user_id)
        )
    assert identity is not None and identity.reachable and identity.chat_id == "7"


async def test_a_chosen_language_wins_over_the_clients(app: App) -> None:
    account = await register(app, Platform.TELEGRAM, "7", client_language="pt-br")
    assert await set_language(app, account.user_id, "EN") == "en"
    assert (await register(app, Platform.TELEGRAM, "7", client_language="pt-br")).language == "en"
    assert await set_language(app, account.user_id, "pt") == "pt-BR"
    with pytest.raises(UserError) as raised:
        await set_language(app, account.user_id, "klingon")
    assert raised.value.key == "unknown_language"
