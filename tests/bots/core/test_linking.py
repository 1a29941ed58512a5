"""/link: a code joins a chat account to another account only when its owner confirms.

A link code (or a ``t.me/<bot>?start=link-<code>`` deep link) someone else made must
never attach your identity by itself: a button naming the account it joins does, and an
identity that already owns bots or keys is never moved.
"""

from __future__ import annotations

import itertools
import re

import pytest
from sqlalchemy import select

from bots.core import actions
from bots.core.context import ChatContext
from bots.core.core import ChatCore
from bots.core.rate_limit import RateLimiter
from bots.core.replies import Button, Reply
from db.models import ChatIdentity, ExchangeCredential, Platform
from db.session import Database
from robotrader.app import App
from robotrader.settings import Settings
from robotrader.use_cases.bots import BotSpec, create_bot

_users = itertools.count(1)


@pytest.fixture
async def core(settings: Settings, database: Database) -> ChatCore:
    app = App.from_settings(settings.model_copy(update={"market_data": "replay"}), database)
    return ChatCore(app, rate_limiter=RateLimiter(rate=1000, burst=1000))


def _ctx(platform: Platform, name: str, language: str = "en") -> ChatContext:
    user = f"lk{next(_users)}"
    return ChatContext(
        platform=platform,
        platform_user_id=user,
        chat_id=user,
        is_private=True,
        client_language=language,
        display_name=name,
    )


async def _code_of(core: ChatCore, ctx: ChatContext) -> str:
    [reply] = await core.handle_text(ctx, "/link")
    found = re.search(r"/link (\S+)", reply.plain())
    assert found is not None, reply.plain()
    return found.group(1)


async def _user_of(core: ChatCore, ctx: ChatContext) -> int:
    async with core.app.database.sessions() as session:
        user_id = await session.scalar(
            select(ChatIdentity.user_id).where(
                ChatIdentity.platform == ctx.platform,
                ChatIdentity.platform_user_id == ctx.platform_user_id,
            )
        )
    assert user_id is not None
    return user_id


def _buttons(reply: Reply) -> list[Button]:
    return [b for row in reply.buttons for b in row]


@pytest.mark.parametrize("how", ["deep_link", "command"])
async def test_a_link_code_alone_links_nothing_until_a_button_naming_the_account_is_pressed(
    core: ChatCore, how: str
) -> None:
    mallory = _ctx(Platform.DISCORD, "Mallory")
    code = await _code_of(core, mallory)
    victim = _ctx(Platform.TELEGRAM, "Vic")
    text = f"/start link-{code}" if how == "deep_link" else f"/link {code}"

    [ask] = await core.handle_text(victim, text)

    assert await _user_of(core, victim) != await _user_of(core, mallory)
    assert "Mallory" in ask.plain() and "Discord" in ask.plain()
    confirm = next(b for b in _buttons(ask) if b.action and "Mallory" in b.label)
    assert confirm.action is not None
    assert any(b.action for b in _buttons(ask) if b is not confirm)  # a way out

    [done] = await core.handle_action(victim, confirm.action)
    assert "Linked" in done.plain()
    assert await _user_of(core, victim) == await _user_of(core, mallory)


async def test_cancelling_leaves_the_identity_where_it_was(core: ChatCore) -> None:
    other = _ctx(Platform.DISCORD, "Other")
    code = await _code_of(core, other)
    me = _ctx(Platform.TELEGRAM, "Me", language="pt-BR")
    [ask] = await core.handle_text(me, f"/link {code}")
    assert "Other" in ask.plain() and "Discord" in ask.plain()
    cancel = next(b for b in _buttons(ask) if b.action and "Other" not in b.label)
    assert cancel.action is not None
    [cancelled] = await core.handle_action(me, cancel.action)
    assert "não foi vinculada" in cancelled.plain().lower()
    assert await _user_of(core, me) != await _user_of(core, other)
    # The code is spent: the confirm button of the earlier question does nothing now.
    confirm = next(b for b in _buttons(ask) if b.action and "Other" in b.label)
    assert confirm.action is not None
    [late] = await core.handle_action(me, confirm.action)
    assert await _user_of(core, me) != await _user_of(core, other)
    assert "/link" in late.plain()


@pytest.mark.parametrize("owns", ["bot", "key"])
async def test_an_identity_that_owns_bots_or_keys_is_told_to_link_from_the_other_side(
    core: ChatCore, owns: str
) -> None:
    attacker = _ctx(Platform.DISCORD, "Attacker")
    code = await _code_of(core, attacker)
    victim = _ctx(Platform.TELEGRAM, "Victim")
    await core.handle_text(victim, "/help")
    victim_user = await _user_of(core, victim)
    if owns == "bot":
        await create_bot(
            core.app,
            victim_user,
            BotSpec(
                exchange="binance", symbols=["BTC/USDT"], strategy="sma_crossover", capital="100"
            ),
        )
    else:
        async with core.app.database.transaction() as session:
            session.add(
                ExchangeCredential(
                    user_id=victim_user, exchange="binance", label="main",
                    api_key_enc=b"x", secret_enc=b"x", key_id="k1",
                )
            )  # fmt: skip

    [refused] = await core.handle_text(victim, f"/start link-{code}")

    assert not any(b.action for b in _buttons(refused))
    assert "other app" in refused.plain()
    assert await _user_of(core, victim) == victim_user


async def test_a_forged_confirmation_for_a_wrong_code_links_nothing(core: ChatCore) -> None:
    owner = _ctx(Platform.DISCORD, "Owner")
    await _code_of(core, owner)
    me = _ctx(Platform.TELEGRAM, "Me")
    [reply] = await core.handle_action(me, actions.encode("lk", "AAAAAAAA"))
    assert "/link" in reply.plain()
    assert await _user_of(core, me) != await _user_of(core, owner)
