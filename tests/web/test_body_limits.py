"""Bodies are capped while they stream, before any authentication or signature check.

A caller who knows nothing (no token, no signal secret, no Stripe signature) could
otherwise make the server hold an unbounded body in memory: every endpoint answers 413
on a declared Content-Length over its limit without reading a byte, and at the first
chunk past it when the body streams without one. Deeply nested JSON is an invalid
request, never a crash.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from tests.web.conftest import Web, serving
from web.request_bodies import DEFAULT_MAX_BODY, MAX_BODY

SECRET = "FAKESECRET-telegram-webhook-0002"
CHUNK = 1024
HUGE = 400 * 1024 * 1024


@pytest.fixture
def extra_settings() -> dict[str, object]:
    return {"telegram_webhook_secret": SecretStr(SECRET)}


async def _received(update: dict[str, Any]) -> None:
    return None


def _endpoints(web: Web) -> list[tuple[str, dict[str, str], int]]:
    """(path, headers, limit): every endpoint anyone can post to, and one behind a token."""
    web.app.update_receivers.register("telegram", _received)
    return [
        ("/signals/some-secret", {}, MAX_BODY["/signals/"]),
        ("/stripe/webhook", {"Stripe-Signature": "t=1,v1=00"}, MAX_BODY["/stripe/webhook"]),
        (
            "/telegram/webhook",
            {"X-Telegram-Bot-Api-Secret-Token": SECRET},
            MAX_BODY["/telegram/webhook"],
        ),
        ("/api/v1/bots", {"Authorization": "Bearer rt_nope"}, DEFAULT_MAX_BODY),
    ]


class Body:
    """A streamed body that counts what the server pulled from it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.size:
            self.sent += CHUNK
            yield b" " * CHUNK


async def test_a_declared_length_over_the_limit_is_refused_unread(web: Web) -> None:
    for path, headers, limit in _endpoints(web):
        body = Body(HUGE)
        answer = await web.client.post(
            path,
            content=body,
            headers={**headers, "Content-Length": str(HUGE), "Content-Type": "application/json"},
        )
        assert answer.status_code == 413, (path, answer.status_code, answer.text)
        assert body.sent <= CHUNK, (path, body.sent)
        assert limit < HUGE


async def test_a_streamed_body_is_cut_at_the_first_chunk_past_the_limit(web: Web) -> None:
    for path, headers, limit in _endpoints(web):
        body = Body(HUGE)
        answer = await web.client.post(
            path, content=body, headers={**headers, "Content-Type": "application/json"}
        )
        assert answer.status_code == 413, (path, answer.status_code, answer.text)
        assert limit < body.sent <= limit + CHUNK, (path, body.sent)
        assert answer.json()["error"] == "too_large"
        assert f"{limit} bytes" in answer.json()["message"]


async def test_a_body_at_the_limit_is_read(web: Web) -> None:
    [signals, *_] = _endpoints(web)
    path, headers, limit = signals
    answer = await web.client.post(path, content=b" " * limit, headers=headers)
    assert answer.status_code != 413


async def test_the_real_server_answers_413_on_the_headers_alone(web: Web) -> None:
    async with serving(web.api) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /signals/some-secret HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\n" + f"Content-Length: {HUGE}\r\n\r\n".encode()
        )
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
    assert status.startswith(b"HTTP/1.1 413"), status


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/signals/some-secret", {}, 422),
        ("/telegram/webhook", {"X-Telegram-Bot-Api-Secret-Token": SECRET}, 400),
    ],
)
async def test_deeply_nested_json_is_an_invalid_request_not_a_crash(
    web: Web, path: str, headers: dict[str, str], status: int
) -> None:
    web.app.update_receivers.register("telegram", _received)
    for body in (b"[" * 16 * 1024, b'{"a":' * 5000 + b"1" + b"}" * 5000):
        answer = await web.client.post(path, content=body[: MAX_BODY["/signals/"]], headers=headers)
        assert answer.status_code == status, (path, answer.status_code, answer.text)
        assert "internal" not in answer.text.lower()


async def test_deeply_nested_json_to_the_api_is_422(web: Web) -> None:
    _, auth = await web.premium()
    answer = await web.client.post(
        "/api/v1/bots",
        content=b"[" * 16 * 1024,
        headers={**auth, "Content-Type": "application/json"},
    )
    assert answer.status_code == 422, answer.text
