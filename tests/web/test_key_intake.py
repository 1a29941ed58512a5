"""The key intake form: /connect's private link -> form -> key checked by the exchange -> chat.

The whole flow runs through the real ASGI app (httpx) and the real ccxt talking to the
exchange emulator; the link comes from the chat's own /connect, and the chat's notice
is read from the outbox the way a chat process claims it. Every page is scanned by the
secrets audit (tests/web/conftest.py): the keys posted here are ``FAKEKEY…`` /
``FAKESECRET…`` like the chat path's.
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from bots.core.context import ChatContext
from bots.core.core import ChatCore
from bots.core.notifications import render_notification
from bots.core.rate_limit import RateLimiter
from bots.core.replies import Reply
from db import outbox
from db.credential_secrets import unseal
from db.models import ExchangeCredential, Notification, OneTimeCode, Platform
from db.types import utcnow
from tests.emulators.exchange import ExchangeEmulator
from tests.secret_audit import AUDIT
from tests.web.conftest import Web

_n = itertools.count(1)
LOCAL = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def exchange_emulator() -> Iterator[ExchangeEmulator]:
    with ExchangeEmulator() as emulator:
        yield emulator


@pytest.fixture
def extra_settings(exchange_emulator: ExchangeEmulator) -> dict[str, Any]:
    urls = {"binance": exchange_emulator.base_url, "bybit": exchange_emulator.base_url}
    return {"exchange_api_urls": urls, "market_data": "exchange", "egress_ips": ["203.0.113.7"]}


def _core(web: Web) -> ChatCore:
    return ChatCore(web.app, rate_limiter=RateLimiter(rate=1000, burst=1000))


def _ctx(language: str = "en") -> ChatContext:
    name = f"ki{next(_n)}"
    return ChatContext(
        platform=Platform.TELEGRAM, platform_user_id=name, chat_id=name, is_private=True,
        client_language=language, display_name="Key",
    )  # fmt: skip


def _keys(emulator: ExchangeEmulator, **account: Any) -> tuple[str, str]:
    n = next(_n)
    key, secret = f"FAKEKEYform{n:04d}", f"FAKESECRETform{n:04d}"
    emulator.add_account("binance", key, secret, **account)
    return key, secret


def _link_in(replies: list[Reply]) -> str:
    urls = [b.url for r in replies for row in r.buttons for b in row if b.url]
    assert len(urls) == 1, [r.plain() for r in replies]
    assert urls[0].startswith(LOCAL)
    return urls[0].removeprefix(LOCAL)


async def _open(web: Web, link: str) -> str:
    """Open the link as a browser does; returns the form's CSRF token."""
    opened = await web.client.get(link)
    assert opened.status_code == 303, opened.text
    form = await web.client.get(opened.headers["location"])
    assert form.status_code == 200, form.text
    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', form.text)
    assert match, form.text
    return match.group(1)


def _error_on(page: str) -> str:
    match = re.search(r'<p class="flash error" id="error" role="alert">(.*?)</p>', page, re.S)
    assert match, page
    return html.unescape(match.group(1))


async def _chat_answer(core: ChatCore, ctx: ChatContext, key: str, secret: str) -> str:
    """What the chat's own /connect dialog answers to this key."""
    await core.handle_text(ctx, "/connect binance")
    await core.handle_text(ctx, key)
    [reply] = await core.handle_text(ctx, secret)
    return reply.plain()


async def test_link_form_key_checked_stored_encrypted_and_told_in_chat(
    web: Web, exchange_emulator: ExchangeEmulator
) -> None:
    ctx = _ctx()
    replies = await _core(web).handle_text(ctx, "/connect binance")
    offer = replies[0]
    assert "private page" in offer.plain() and "send me the API key" in offer.plain()
    link = _link_in(replies)
    assert re.fullmatch(r"/connect/open/[A-Z2-9]{32}\?exchange=binance", link)

    opened = await web.client.get(link)
    assert opened.status_code == 303 and opened.headers["location"] == "/connect?exchange=binance"
    cookie = opened.headers["set-cookie"]
    for flag in ("rt_key_form=", "HttpOnly", "SameSite=lax", "Path=/connect", "Max-Age=600"):
        assert flag.lower() in cookie.lower(), cookie
    assert opened.headers["cache-control"] == "no-store"
    assert opened.headers["referrer-policy"] == "no-referrer"

    form = await web.client.get("/connect?exchange=binance")
    assert form.status_code == 200
    assert form.headers["cache-control"] == "no-store"
    assert form.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in form.headers["content-security-policy"]
    assert "<script" not in form.text
    assert not re.search(r'(?:src|href|action)="(?:https?:)?//', form.text)  # nothing elsewhere
    assert '<form method="post" action="/connect" autocomplete="off"' in form.text
    assert form.text.count('autocomplete="off"') == 3
    assert '<option value="binance" selected>' in form.text
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', form.text)
    assert csrf

    key, secret = _keys(exchange_emulator)
    done = await web.client.post(
        "/connect",
        data={"csrf_token": csrf.group(1), "exchange": "binance", "api_key": key,
              "secret": secret},
    )  # fmt: skip
    assert done.status_code == 200, done.text
    assert "Binance connected" in done.text
    assert key not in done.text and secret not in done.text
    assert 'rt_key_form=""' in done.headers["set-cookie"]  # the cookie is dropped

    async with web.app.database.sessions() as session:
        credential = await session.scalar(select(ExchangeCredential))
        assert credential is not None and credential.exchange == "binance"
        assert key.encode() not in credential.api_key_enc
        assert credential.permissions["withdraw"] is False
        opened_secrets = unseal(web.app.vault, credential)
        assert opened_secrets.api_key.get_secret_value() == key
        assert opened_secrets.secret.get_secret_value() == secret
        notice = await session.scalar(select(Notification))
        assert notice is not None and notice.kind == "exchange_connected"
        assert notice.user_id == credential.user_id

    # The chat is told: a Telegram process claims it from the outbox and renders it.
    [claimed] = await outbox.claim(web.app.database, Platform.TELEGRAM, "test")
    assert claimed.chat_id == ctx.chat_id
    told = render_notification(claimed.kind, claimed.payload, claimed.language or "en").plain()
    AUDIT.scan("chat:notification", told)
    assert "Binance connected" in told and "cannot withdraw" in told and "203.0.113.7" in told

    # The form is done: neither the cookie nor the link opens it again.
    assert (await web.client.get("/connect")).status_code == 401
    web.client.cookies.clear()
    again = await web.client.get(link)
    assert again.status_code == 404 and "already used" in again.text


async def test_a_used_or_expired_link_is_refused(web: Web) -> None:
    core = _core(web)
    link = _link_in(await core.handle_text(_ctx(), "/connect"))
    assert re.fullmatch(r"/connect/open/[A-Z2-9]{32}", link)
    assert (await web.client.get(link)).status_code == 303
    web.client.cookies.clear()
    reused = await web.client.get(link)
    assert reused.status_code == 404 and "already used" in reused.text
    assert "set-cookie" not in reused.headers

    expired = _link_in(await core.handle_text(_ctx(), "/connect bybit"))
    async with web.app.database.transaction() as session:
        await session.execute(
            update(OneTimeCode).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    answer = await web.client.get(expired)
    assert answer.status_code == 404 and "expired" in answer.text
    for bogus in ("/connect/open/NOPE", "/connect/open/" + "A" * 200):
        assert (await web.client.get(bogus)).status_code == 404
    # Without a form cookie there is no form.
    assert (await web.client.get("/connect")).status_code == 401


async def test_an_expired_form_session_takes_no_key(
    web: Web, exchange_emulator: ExchangeEmulator
) -> None:
    csrf = await _open(web, _link_in(await _core(web).handle_text(_ctx(), "/connect binance")))
    async with web.app.database.transaction() as session:
        await session.execute(
            update(OneTimeCode).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    key, secret = _keys(exchange_emulator)
    late = await web.client.post(
        "/connect",
        data={"csrf_token": csrf, "exchange": "binance", "api_key": key, "secret": secret},
    )
    assert late.status_code == 401 and "expired" in late.text
    async with web.app.database.sessions() as session:
        assert await session.scalar(select(ExchangeCredential)) is None


async def test_a_missing_or_wrong_csrf_token_is_refused(
    web: Web, exchange_emulator: ExchangeEmulator
) -> None:
    csrf = await _open(web, _link_in(await _core(web).handle_text(_ctx(), "/connect binance")))
    key, secret = _keys(exchange_emulator)
    keys = {"exchange": "binance", "api_key": key, "secret": secret}
    calls = len(exchange_emulator.calls)
    for data in (keys, {**keys, "csrf_token": "0" * 64}, {**keys, "csrf_token": csrf[:-1]}):
        refused = await web.client.post("/connect", data=data)
        assert refused.status_code == 403, refused.text
        assert "not sent from the page" in refused.text
    assert len(exchange_emulator.calls) == calls  # the exchange was never asked
    async with web.app.database.sessions() as session:
        assert await session.scalar(select(ExchangeCredential)) is None
    # A page elsewhere posting the form without the cookie gets nothing either.
    web.client.cookies.clear()
    assert (await web.client.post("/connect", data={**keys, "csrf_token": csrf})).status_code == 401
    # ...and JSON is not a form.
    assert (await web.client.post("/connect", json=keys)).status_code == 401


@pytest.mark.parametrize("language", ["en", "pt-BR"])
async def test_a_refused_key_gets_the_chats_own_message_and_the_form_again(
    web: Web, exchange_emulator: ExchangeEmulator, language: str
) -> None:
    core = _core(web)
    wrong_key, wrong_secret = f"FAKEKEYnobody{next(_n):04d}", f"FAKESECRETnobody{next(_n):04d}"
    withdrawing = _keys(exchange_emulator, can_withdraw=True)
    chat = _ctx(language)
    in_chat = [
        await _chat_answer(core, chat, wrong_key, wrong_secret),
        await _chat_answer(core, chat, *withdrawing),
    ]

    csrf = await _open(web, _link_in(await core.handle_text(_ctx(language), "/connect binance")))
    tried = [(wrong_key, wrong_secret), withdrawing]
    for (key, secret), expected in zip(tried, in_chat, strict=True):
        refused = await web.client.post(
            "/connect",
            data={"csrf_token": csrf, "exchange": "binance", "api_key": key, "secret": secret},
        )
        assert refused.status_code == 422  # the REST API's status for the same refusal
        assert _error_on(refused.text) == expected
        assert key not in refused.text and secret not in refused.text
        assert 'value="FAKE' not in refused.text  # the fields come back empty
    pt_words = "recusou" if language == "pt-BR" else "refused"
    assert pt_words in in_chat[0]

    # A malformed key: the chat's words too (there, the dialog step answers it).
    spaced = await web.client.post(
        "/connect",
        data={"csrf_token": csrf, "exchange": "binance", "api_key": "FAKEKEY with space",
              "secret": "FAKESECRETx"},
    )  # fmt: skip
    assert spaced.status_code == 422
    await core.handle_text(chat, "/connect binance")
    [bad] = await core.handle_text(chat, "FAKEKEY with space")
    assert _error_on(spaced.text) == bad.plain()

    # The form stays open after a refusal: the right key then goes through.
    key, secret = _keys(exchange_emulator)
    done = await web.client.post(
        "/connect",
        data={"csrf_token": csrf, "exchange": "binance", "api_key": key, "secret": secret},
    )
    assert done.status_code == 200 and "Binance" in done.text


async def test_one_form_cannot_spend_the_servers_exchange_budget(
    web: Web, exchange_emulator: ExchangeEmulator
) -> None:
    csrf = await _open(web, _link_in(await _core(web).handle_text(_ctx(), "/connect binance")))
    data = {"csrf_token": csrf, "exchange": "binance", "api_key": "FAKEKEYnobody9999",
            "secret": "FAKESECRETnobody9999"}  # fmt: skip
    answers = [(await web.client.post("/connect", data=data)) for _ in range(11)]
    assert [a.status_code for a in answers[:10]] == [422] * 10
    assert answers[10].status_code == 429 and int(answers[10].headers["retry-after"]) >= 1
