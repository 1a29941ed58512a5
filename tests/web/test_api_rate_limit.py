"""No token spends the shared budget: a per-token rate limit, answered 429 with Retry-After."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import Web

PER_MINUTE = 6


@pytest.fixture
def extra_settings() -> dict[str, Any]:
    return {"api_rate_limit": PER_MINUTE}


async def test_each_token_has_its_own_budget_and_is_told_when_to_come_back(web: Web) -> None:
    _, first = await web.premium()
    _, second = await web.premium()
    for _ in range(PER_MINUTE):
        assert (await web.client.get("/api/v1/bots", headers=first)).status_code == 200
    limited = await web.client.get("/api/v1/bots", headers=first)
    assert limited.status_code == 429
    assert limited.json()["error"] == "api_rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60 // PER_MINUTE + 1
    # Another token (another user) is not held back by the first one's bursts.
    assert (await web.client.get("/api/v1/bots", headers=second)).status_code == 200


async def test_unknown_tokens_are_limited_too_before_any_database_work(web: Web) -> None:
    bogus = {"Authorization": "Bearer rt_" + "x" * 40}
    statuses = [
        (await web.client.get("/api/v1/bots", headers=bogus)).status_code
        for _ in range(PER_MINUTE + 2)
    ]
    assert statuses[:PER_MINUTE] == [401] * PER_MINUTE and statuses[-1] == 429


async def test_the_limit_is_documented(web: Web) -> None:
    schema = (await web.client.get("/openapi.json")).json()
    for path, operations in schema["paths"].items():
        if path.startswith("/api/v1"):
            for operation in operations.values():
                assert "429" in operation["responses"], path
