"""Schemathesis over the key form's endpoints: never a server error, never a key sent back.

The form is a page for people, not part of the REST API, so it is not in the published
OpenAPI schema (/openapi.json). Schemathesis gets a schema of the form's own routes
instead, made by FastAPI from the same route definitions, and drives the app served by
uvicorn with an open form session: the CSRF token is pinned to the session's, so
generated keys get through to `connect_exchange` (the exchange is a closed port here).
"""

from __future__ import annotations

import asyncio
import collections
import copy
import re
from typing import Any

import requests
import schemathesis
from fastapi.openapi.utils import get_openapi
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from sqlalchemy import select

from bots.core.context import ChatContext
from bots.core.core import ChatCore
from bots.core.rate_limit import RateLimiter
from db.models import ExchangeCredential, Platform
from tests.secret_audit import AUDIT
from tests.web.conftest import Web, serving
from web.api_rate_limit import ApiRateLimit
from web.routes import key_intake

EXAMPLES = 30
SECRET_FIELDS = ("api_key", "secret", "passphrase")


def key_form_schema(csrf_token: str) -> dict[str, Any]:
    """The OpenAPI schema of the key form's routes, the CSRF field pinned to ``csrf_token``."""
    routes = []
    for route in key_intake.router.routes:
        shown = copy.copy(route)
        shown.include_in_schema = True  # type: ignore[attr-defined]
        routes.append(shown)
    doc = get_openapi(title="key form", version="1", routes=routes)
    body = doc["components"]["schemas"]["Body_submit_connect_post"]["properties"]
    body["csrf_token"] = {"type": "string", "enum": [csrf_token]}
    return doc


def fuzz(doc: dict[str, Any], base_url: str, cookie: str) -> collections.Counter[int]:
    statuses: collections.Counter[int] = collections.Counter()
    session = requests.Session()
    sent = {"Cookie": f"{key_intake.FORM_COOKIE}={cookie}"}

    def call(case: schemathesis.Case) -> None:
        response = case.call(
            base_url=base_url, headers=sent, session=session, allow_redirects=False
        )
        statuses[response.status_code] += 1
        assert response.status_code < 500, (case.method, case.path, response.text[:300])
        AUDIT.scan("web:fuzz", response.text + str(response.headers))
        headers = {k.lower(): v[0] for k, v in response.headers.items()}
        if response.status_code not in (301, 302, 303, 307):
            assert headers["content-type"].startswith("text/html"), headers
            assert headers["cache-control"] == "no-store"
        if isinstance(case.body, dict):
            for name in SECRET_FIELDS:
                value = case.body.get(name)
                if isinstance(value, str) and len(value.strip()) >= 16:
                    assert value.strip() not in response.text, name

    for result in schemathesis.openapi.from_dict(doc).get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis_settings(
                max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck),
            )  # fmt: skip
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: schemathesis.Case) -> None:
                call(case)

            check()
    return statuses


async def test_schemathesis_over_the_key_form(web: Web) -> None:
    core = ChatCore(web.app, rate_limiter=RateLimiter(rate=1000, burst=1000))
    ctx = ChatContext(
        platform=Platform.TELEGRAM, platform_user_id="fuzzkeys", chat_id="fuzzkeys",
        is_private=True, client_language="pt-br",
    )  # fmt: skip
    [reply] = await core.handle_text(ctx, "/connect")
    [link] = [b.url for row in reply.buttons for b in row if b.url]
    assert link
    opened = await web.client.get(link.removeprefix("http://127.0.0.1:8000"))
    assert opened.status_code == 303
    cookie = web.client.cookies[key_intake.FORM_COOKIE]
    form = await web.client.get("/connect")
    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', form.text)
    assert match

    web.api.state.key_form_tries = ApiRateLimit(1_000_000)  # every example tries for real
    async with serving(web.api) as base_url:
        statuses = await asyncio.to_thread(fuzz, key_form_schema(match.group(1)), base_url, cookie)
    print(f"\nkey form fuzz: {dict(sorted(statuses.items()))}")
    assert not any(code >= 500 for code in statuses)
    # The form ran for real: keys were refused with the chat's words (422), and bad links too.
    assert statuses[422] > 20 and statuses[200] > 0
    async with web.app.database.sessions() as session:
        assert (await session.scalars(select(ExchangeCredential))).first() is None
