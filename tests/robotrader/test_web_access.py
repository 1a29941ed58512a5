"""robotrader.use_cases.web_access on the real databases: API tokens and dashboard logins."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from db.models import ApiToken, OneTimeCode, Plan, User, WebSession
from db.types import utcnow
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.use_cases.web_access import (
    MAX_ACTIVE_TOKENS,
    authenticate_api_token,
    create_api_token,
    dashboard_user,
    end_dashboard_session,
    issue_dashboard_link,
    list_api_tokens,
    redeem_dashboard_link,
    revoke_api_tokens,
)
from tests.engine.conftest import make_user


async def refused(call: object) -> str:
    with pytest.raises(UserError) as raised:
        await call  # type: ignore[misc]
    return raised.value.key


async def _set_plan(app: App, user_id: int, plan: str) -> None:
    async with app.database.transaction() as session:
        await session.execute(update(User).where(User.id == user_id).values(plan=plan))


async def test_a_token_is_stored_hashed_and_authenticates_its_owner(app: App) -> None:
    user = await make_user(app)
    new = await create_api_token(app, user)
    assert new.token.startswith("rt_") and new.token.startswith(new.prefix)
    async with app.database.sessions() as session:
        row = await session.scalar(select(ApiToken).where(ApiToken.user_id == user))
    assert row is not None and new.token not in (row.token_hash, row.prefix)
    who = await authenticate_api_token(app, f" {new.token} ")
    assert (who.user_id, who.plan, who.language) == (user, Plan.PREMIUM, "pt-BR")
    [listed] = await list_api_tokens(app, user)
    assert listed.prefix == new.prefix and listed.last_used_at is not None


async def test_tokens_are_premium_only_and_stop_working_after_a_downgrade(app: App) -> None:
    pro = await make_user(app, "pro", plan="pro")
    assert await refused(create_api_token(app, pro)) == "rest_api_not_in_plan"
    user = await make_user(app)
    token = (await create_api_token(app, user)).token
    await _set_plan(app, user, "pro")
    assert await refused(authenticate_api_token(app, token)) == "rest_api_not_in_plan"
    await _set_plan(app, user, "premium")
    assert (await authenticate_api_token(app, token)).user_id == user


async def test_revoked_and_unknown_tokens_are_invalid(app: App) -> None:
    user, other = await make_user(app, "u1"), await make_user(app, "u2")
    token = (await create_api_token(app, user)).token
    await create_api_token(app, other)
    assert await revoke_api_tokens(app, user) == 1
    assert await list_api_tokens(app, user) == []
    assert len(await list_api_tokens(app, other)) == 1
    for bad in (token, "rt_unknown", "nope", "rt_" + "x" * 200):
        assert await refused(authenticate_api_token(app, bad)) == "api_token_invalid"


async def test_active_tokens_are_capped(app: App) -> None:
    user = await make_user(app)
    for _ in range(MAX_ACTIVE_TOKENS):
        await create_api_token(app, user)
    assert await refused(create_api_token(app, user)) == "too_many_tokens"
    await revoke_api_tokens(app, user)
    assert (await create_api_token(app, user)).token


async def test_a_dashboard_link_opens_one_session_once(app: App) -> None:
    user = await make_user(app, plan="free")
    link = await issue_dashboard_link(app, user)
    assert link.startswith("http://127.0.0.1:8000/dashboard/login/")
    code = link.rsplit("/", 1)[1]
    login = await redeem_dashboard_link(app, code)
    who = await dashboard_user(app, login.session_token)
    assert who is not None and (who.user_id, who.csrf_token) == (user, login.csrf_token)
    assert await refused(redeem_dashboard_link(app, code)) == "dashboard_link_invalid"
    await end_dashboard_session(app, login.session_token)
    assert await dashboard_user(app, login.session_token) is None


async def test_expired_links_and_sessions_open_nothing(app: App) -> None:
    user = await make_user(app)
    code = (await issue_dashboard_link(app, user)).rsplit("/", 1)[1]
    login = await redeem_dashboard_link(app, (await issue_dashboard_link(app, user))[-32:])
    async with app.database.transaction() as session:
        await session.execute(
            update(OneTimeCode).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert await refused(redeem_dashboard_link(app, code)) == "dashboard_link_invalid"
    assert await dashboard_user(app, login.session_token) is None
    assert await refused(redeem_dashboard_link(app, "")) == "dashboard_link_invalid"
    assert await dashboard_user(app, "x" * 200) is None
