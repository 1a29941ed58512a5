"""/plan and /upgrade on a server without Stripe: no plans, said plainly in every language."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bots.core.context import ChatContext
from bots.core.core import ChatCore
from bots.core.rate_limit import RateLimiter
from bots.core.replies import Reply
from db.models import Platform
from db.session import Database
from robotrader.app import App
from robotrader.i18n import translate
from robotrader.settings import Settings

LANGUAGES = ["en", "pt-BR"]


async def _core(settings: Settings, database: Database, **update: object) -> ChatCore:
    app = App.from_settings(
        settings.model_copy(update={"market_data": "replay", **update}), database
    )
    return ChatCore(app, rate_limiter=RateLimiter(rate=1000, burst=1000))


@pytest.fixture
async def self_hosted(settings: Settings, database: Database) -> AsyncIterator[ChatCore]:
    core = await _core(settings, database, stripe_api_key=None)
    yield core
    await core.app.pool.close()


@pytest.fixture
async def with_stripe(settings: Settings, database: Database) -> AsyncIterator[ChatCore]:
    core = await _core(settings, database)
    yield core
    await core.app.pool.close()


def _ctx(language: str) -> ChatContext:
    user = f"host-{language}"
    return ChatContext(
        platform=Platform.TELEGRAM, platform_user_id=user, chat_id=user, is_private=True,
        client_language=language,
    )  # fmt: skip


def _sells_nothing(reply: Reply) -> None:
    assert all(button.url is None for row in reply.buttons for button in row)
    assert all(not button.action.startswith("v1:up") for row in reply.buttons for button in row)
    assert "$" not in reply.plain() and "/mo" not in reply.plain()


@pytest.mark.parametrize("language", LANGUAGES)
async def test_plan_says_there_are_no_plans(self_hosted: ChatCore, language: str) -> None:
    [reply] = await self_hosted.handle_text(_ctx(language), "/plan")
    text = reply.plain()
    assert translate(language, "plan.self_hosted_title") in text
    assert translate(language, "plan.self_hosted") in text
    assert translate(language, "plan.free") not in text
    assert "0 / 50" in text  # Premium's bots, whatever the user's row says
    _sells_nothing(reply)
    assert translate("en", "plan.self_hosted") != translate("pt-BR", "plan.self_hosted")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("typed", ["/upgrade", "/upgrade pro", "/upgrade premium", "/billing"])
async def test_upgrade_says_every_feature_is_included(
    self_hosted: ChatCore, language: str, typed: str
) -> None:
    [reply] = await self_hosted.handle_text(_ctx(language), typed)
    assert reply.plain() == translate(language, "error.billing_not_configured")
    _sells_nothing(reply)
    [pressed] = await self_hosted.handle_action(_ctx(language), "v1:up:pro")
    assert pressed.plain() == translate(language, "error.billing_not_configured")


async def test_with_stripe_plan_and_upgrade_sell_plans(with_stripe: ChatCore) -> None:
    [plan] = await with_stripe.handle_text(_ctx("en"), "/plan")
    assert "Your plan: Free" in plan.plain() and "0 / 1" in plan.plain()
    assert plan.buttons[0][0].action == "v1:up"
    [offers] = await with_stripe.handle_text(_ctx("en"), "/upgrade")
    assert "Pro — $29/mo" in [b.label for [b] in offers.buttons]
