"""/token and /dashboard in the chat core: private only, Premium for tokens, shown once."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from bots.core.context import ChatContext
from bots.core.core import ChatCore
from bots.core.rate_limit import RateLimiter
from bots.core.replies import Code, Reply
from db.models import ChatIdentity, Platform, User
from db.session import Database
from robotrader.app import App
from robotrader.settings import Settings
from robotrader.use_cases.web_access import (
    MAX_ACTIVE_TOKENS,
    PREFIX_LENGTH,
    authenticate_api_token,
)

_users = itertools.count(1)


@pytest.fixture
async def core(settings: Settings, database: Database) -> ChatCore:
    app = App.from_settings(settings.model_copy(update={"market_data": "replay"}), database)
    return ChatCore(app, rate_limiter=RateLimiter(rate=1000, burst=1000))


def _ctx(private: bool = True, language: str = "en") -> ChatContext:
    user = next(_users)
    return ChatContext(
        platform=Platform.TELEGRAM,
        platform_user_id=f"wa{user}",
        chat_id=f"wa{user}" if private else "-100555",
        is_private=private,
        client_language=language,
        display_name="Web",
    )


async def _set_plan(core: ChatCore, ctx: ChatContext, plan: str) -> int:
    await core.handle_text(ctx, "/help")  # registers the user
    async with core.app.database.transaction() as session:
        identity = await session.scalar(
            select(ChatIdentity).where(ChatIdentity.platform_user_id == ctx.platform_user_id)
        )
        assert identity is not None
        user = await session.get(User, identity.user_id)
        assert user is not None
        user.plan = plan  # type: ignore[assignment]
        return user.id


def _token_in(reply: Reply) -> str:
    codes = [b.text for b in reply.blocks if isinstance(b, Code)]
    assert len(codes) == 1, reply.plain()
    return codes[0]


async def test_token_is_premium_only_and_names_upgrade(core: ChatCore) -> None:
    ctx = _ctx()
    await _set_plan(core, ctx, "pro")
    [reply] = await core.handle_text(ctx, "/token")
    assert "Premium" in reply.plain() and "/upgrade" in reply.plain()
    assert not any(isinstance(b, Code) for b in reply.blocks)


async def test_a_token_is_shown_once_listed_by_prefix_and_revoked(
    core: ChatCore,
) -> None:
    ctx = _ctx()
    user_id = await _set_plan(core, ctx, "premium")
    [created] = await core.handle_text(ctx, "/token")
    token = _token_in(created)
    assert token.startswith("rt_") and len(token) > 40
    assert "/docs" in created.plain() and "only this once" in created.plain()
    assert (await authenticate_api_token(core.app, token)).user_id == user_id

    [listed] = await core.handle_text(ctx, "/token list")
    assert f"{token[:PREFIX_LENGTH]}…" in listed.plain() and token not in listed.plain()

    [revoked] = await core.handle_text(ctx, "/token revoke")
    assert "Revoked 1 token" in revoked.plain()
    [empty] = await core.handle_text(ctx, "/token list")
    assert "no active API tokens" in empty.plain()
    [usage] = await core.handle_text(ctx, "/token bogus")
    assert "/token revoke" in usage.plain()


async def test_active_tokens_are_capped(core: ChatCore) -> None:
    ctx = _ctx()
    await _set_plan(core, ctx, "premium")
    for _ in range(MAX_ACTIVE_TOKENS):
        [reply] = await core.handle_text(ctx, "/token new")
        _token_in(reply)
    [refused] = await core.handle_text(ctx, "/token")
    assert f"{MAX_ACTIVE_TOKENS} active tokens" in refused.plain()


async def test_token_and_dashboard_never_answer_in_a_group(core: ChatCore) -> None:
    group = _ctx(private=False)
    await _set_plan(core, group, "premium")
    for text in ("/token", "/dashboard"):
        replies = await core.handle_text(group, text)
        assert all(not any(isinstance(b, Code) for b in r.blocks) for r in replies)
        assert all("/dashboard/login/" not in r.plain() for r in replies)
        assert all(
            not b.url or "/dashboard/login/" not in b.url
            for r in replies
            for row in r.buttons
            for b in row
        )


async def test_dashboard_sends_a_login_button_on_every_plan(core: ChatCore) -> None:
    ctx = _ctx(language="pt-br")
    await _set_plan(core, ctx, "free")
    [reply] = await core.handle_text(ctx, "/dashboard")
    assert "10 minutos" in reply.plain()
    [[button]] = reply.buttons
    assert button.url and button.url.startswith("http://127.0.0.1:8000/dashboard/login/")
    assert button.label == "Abrir o painel"
