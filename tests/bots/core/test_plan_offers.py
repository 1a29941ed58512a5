"""/upgrade shows each plan's price and limits from the plan table, in every language."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from billing import plans
from bots.core.context import ChatContext
from bots.core.core import ChatCore
from bots.core.rate_limit import RateLimiter
from db.models import Plan, Platform
from db.session import Database
from robotrader.app import App
from robotrader.settings import Settings


@pytest.fixture
async def core(settings: Settings, database: Database) -> AsyncIterator[ChatCore]:
    app = App.from_settings(settings.model_copy(update={"market_data": "replay"}), database)
    yield ChatCore(app, rate_limiter=RateLimiter(rate=1000, burst=1000))
    await app.pool.close()


def _ctx(language: str) -> ChatContext:
    user = f"offers-{language}"
    return ChatContext(
        platform=Platform.TELEGRAM, platform_user_id=user, chat_id=user, is_private=True,
        client_language=language,
    )  # fmt: skip


async def test_upgrade_shows_the_plan_table(core: ChatCore) -> None:
    [reply] = await core.handle_text(_ctx("en"), "/upgrade")
    assert reply.plain().splitlines()[1:3] == [
        "Pro: 3 exchanges, 20 pairs, 5 bots, every strategy, priority notifications.",
        "Premium: every exchange, unlimited pairs, 50 bots, REST API.",
    ]
    assert [(b.label, b.action) for [b] in reply.buttons] == [
        ("Pro — $29/mo", "v1:up:pro"),
        ("Premium — $99/mo", "v1:up:premium"),
    ]


@pytest.mark.parametrize("language", ["en", "pt-br"])
async def test_a_changed_plan_changes_what_upgrade_says(
    core: ChatCore, language: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pro = dataclasses.replace(
        plans.PLANS[Plan.PRO], price_usd_month=Decimal(35), max_bots=7, max_symbols=None
    )
    monkeypatch.setitem(plans.PLANS, Plan.PRO, pro)
    [reply] = await core.handle_text(_ctx(language), "/upgrade")
    text = reply.plain()
    assert "7 " in text and " 5 " not in text and "20" not in text
    assert reply.buttons[0][0].label == "Pro — $35/mo"
