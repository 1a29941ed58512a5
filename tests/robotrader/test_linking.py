"""robotrader.use_cases.linking on the real databases: one account on Telegram and Discord."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.models import ChatIdentity, Platform, User
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.use_cases.accounts import register
from robotrader.use_cases.bots import BotSpec, create_bot
from robotrader.use_cases.linking import (
    cancel_link_code,
    create_link_code,
    normalize_code,
    preview_link_code,
    redeem_link_code,
)

TG, DC = Platform.TELEGRAM, Platform.DISCORD


async def _telegram_user(app: App, name: str = "tg1") -> int:
    account = await register(app, TG, name, chat_id=name, display_name="Ana")
    return account.user_id


async def refused(call: object) -> str:
    with pytest.raises(UserError) as raised:
        await call  # type: ignore[misc]
    return raised.value.key


def test_codes_are_normalized_or_refused() -> None:
    assert normalize_code(" abcd2345 ") == "ABCD2345"
    for bad in ("", "ab", "with space", "x" * 17):
        with pytest.raises(UserError):
            normalize_code(bad)


async def test_preview_names_the_account_and_spends_nothing(app: App) -> None:
    user = await _telegram_user(app)
    code = await create_link_code(app, user)
    target = await preview_link_code(app, DC, "dc1", code.lower())
    assert (target.user_id, target.name, target.platform, target.already_linked) == (
        user, "Ana", "Telegram", False,
    )  # fmt: skip
    assert (await preview_link_code(app, DC, "dc1", code)).user_id == user  # still usable


async def test_redeem_attaches_a_new_identity_once(app: App) -> None:
    user = await _telegram_user(app)
    code = await create_link_code(app, user)
    assert await redeem_link_code(app, DC, "dc1", code) == user
    async with app.database.sessions() as session:
        owner = await session.scalar(
            select(ChatIdentity.user_id).where(ChatIdentity.platform_user_id == "dc1")
        )
    assert owner == user
    assert await refused(redeem_link_code(app, DC, "dc2", code)) == "link_code_invalid"


async def test_an_empty_account_moves_and_its_old_user_is_removed(app: App) -> None:
    user = await _telegram_user(app)
    stray = (await register(app, DC, "dc1")).user_id
    assert await redeem_link_code(app, DC, "dc1", await create_link_code(app, user)) == user
    async with app.database.sessions() as session:
        assert await session.get(User, stray) is None
    again = await preview_link_code(app, DC, "dc1", await create_link_code(app, user))
    assert again.already_linked


async def test_accounts_with_bots_are_never_merged(app: App) -> None:
    user = await _telegram_user(app)
    other = (await register(app, DC, "dc1")).user_id
    spec = BotSpec(exchange="binance", symbols=["BTC/USDT"], strategy="rsi", capital="100")
    await create_bot(app, other, spec)
    code = await create_link_code(app, user)
    assert await refused(preview_link_code(app, DC, "dc1", code)) == "link_account_has_data"
    assert await refused(redeem_link_code(app, DC, "dc1", code)) == "link_account_has_data"
    async with app.database.sessions() as session:
        owner = await session.scalar(
            select(ChatIdentity.user_id).where(ChatIdentity.platform_user_id == "dc1")
        )
    assert owner == other


async def test_a_second_account_on_the_same_platform_is_refused(app: App) -> None:
    user = await _telegram_user(app)
    code = await create_link_code(app, user)
    assert await refused(redeem_link_code(app, TG, "tg2", code)) == "link_same_platform"


async def test_a_cancelled_code_cannot_be_used(app: App) -> None:
    user = await _telegram_user(app)
    code = await create_link_code(app, user)
    await cancel_link_code(app, code)
    assert await refused(preview_link_code(app, DC, "dc1", code)) == "link_code_invalid"
    assert await refused(redeem_link_code(app, DC, "dc1", "ZZZZ9999")) == "link_code_invalid"
