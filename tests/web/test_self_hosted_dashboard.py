"""The dashboard's plan on a server without Stripe: no plans, every feature, in every language."""

from __future__ import annotations

from typing import Any

import pytest

from robotrader.i18n import translate
from tests.web.conftest import Web
from tests.web.test_dashboard import _login


@pytest.fixture
def extra_settings() -> dict[str, Any]:
    return {"stripe_api_key": None}


@pytest.mark.parametrize("language", ["en", "pt-BR"])
async def test_the_header_says_there_are_no_plans(web: Web, language: str) -> None:
    user = await web.user("free", language)
    await _login(web, user)
    html = (await web.client.get("/dashboard")).text
    assert translate(language, "web.no_plans") in html
    assert translate(language, "web.plan", plan=translate(language, "plan.free")) not in html
    # The REST API is every user's here: a token works for a Free-row user.
    token = await web.token(user)
    answer = await web.client.get("/api/v1/bots", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.json() == []
