"""Telegram's webhook mode: the real python-telegram-bot behind our /telegram/webhook.

The Bot API emulator posts each update to the web app (uvicorn on 127.0.0.1),
which checks the secret header and hands the update to the Telegram front end
running in the same process through ``App.update_receivers``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from bots.telegram.service import run_telegram
from db.session import Database
from robotrader.app import App
from robotrader.settings import Settings
from tests.emulators.telegram import DEFAULT_TOKEN, TelegramEmulator
from tests.web.conftest import Web, serving, web_settings
from web.app import create_app

SECRET = "FAKESECRET-telegram-webhook-0001"
_ids = itertools.count(300_001)


@pytest.fixture(scope="module")
def telegram_emulator() -> Iterator[TelegramEmulator]:
    with TelegramEmulator() as emulator:
        yield emulator


@pytest.fixture
def extra_settings() -> dict[str, object]:
    return {"telegram_webhook_secret": SecretStr(SECRET)}


async def test_the_secret_header_is_required(web: Web) -> None:
    update = {"update_id": 1}
    for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
        answer = await web.client.post("/telegram/webhook", json=update, headers=headers)
        assert answer.status_code == 403 and answer.json()["error"] == "webhook_forbidden"
    # Right secret, but no Telegram front end runs in this process: Telegram retries later.
    answer = await web.client.post(
        "/telegram/webhook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
    )
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"


async def test_without_a_configured_secret_every_update_is_refused(
    settings: Settings, database: Database
) -> None:
    app = App.from_settings(web_settings(settings), database)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(app)), base_url="http://test"
    ) as client:
        answer = await client.post(
            "/telegram/webhook", json={}, headers={"X-Telegram-Bot-Api-Secret-Token": ""}
        )
    assert answer.status_code == 403
    await app.pool.close()


async def test_webhook_mode_end_to_end(
    web: Web, telegram_emulator: TelegramEmulator
) -> None:
    web.app.settings = web.app.settings.model_copy(
        update={
            "telegram_token": SecretStr(DEFAULT_TOKEN),
            "telegram_api_url": telegram_emulator.api_base_url,
        }
    )
    stop = asyncio.Event()
    async with serving(web.api) as base_url:
        web.app.settings = web.app.settings.model_copy(update={"public_url": base_url})
        telegram = asyncio.create_task(run_telegram(web.app, stop))
        try:
            for _ in range(300):
                if telegram_emulator.webhook_info()["url"] == f"{base_url}/telegram/webhook":
                    break
                assert not telegram.done(), telegram
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(telegram_emulator.webhook_info())

            user = next(_ids)
            telegram_emulator.add_user(user, "Bia", language_code="en")
            telegram_emulator.user_sends(user, "/start")
            welcome = await telegram_emulator.wait_for_async(
                lambda m: m["chat"]["id"] == user and "Welcome" in (m.get("text") or ""), 15
            )
            assert welcome

            telegram_emulator.user_sends(user, "/dashboard")
            reply = await telegram_emulator.wait_for_async(
                lambda m: m["chat"]["id"] == user and "login link" in (m.get("text") or ""), 15
            )
            [[button]] = reply["reply_markup"]["inline_keyboard"]
            assert re.fullmatch(rf"{base_url}/dashboard/login/[A-Z2-9]{{32}}", button["url"])
            async with httpx.AsyncClient(follow_redirects=True) as browser:
                opened = await browser.get(button["url"])
                assert opened.status_code == 200 and "Your bots" in opened.text
                again = await browser.get(button["url"])
                assert again.status_code == 400  # single use
            info = telegram_emulator.webhook_info()
            assert "last_error_message" not in info, info

            # What is not a Telegram update is refused, not queued.
            secret = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            for body in (b"{}", b"[]", b"nope", b'{"update_id": "x", "message": 5}'):
                answer = await web.client.post(
                    "/telegram/webhook", content=body, headers=secret
                )
                assert answer.status_code == 400, (body, answer.text)
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(telegram, timeout=30)
    assert web.app.update_receivers.get("telegram") is None


async def test_webhook_mode_needs_the_secret(settings: Settings, database: Database) -> None:
    app = App.from_settings(
        web_settings(
            settings,
            telegram_token=SecretStr(DEFAULT_TOKEN),
            public_url="https://robo.example",
        ),
        database,
    )
    with pytest.raises(RuntimeError, match="TELEGRAM_WEBHOOK_SECRET"):
        await run_telegram(app, asyncio.Event())
    await app.pool.close()


async def test_a_blank_secret_refuses_webhook_mode_and_every_update(
    settings: Settings, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROBOTRADER_TELEGRAM_WEBHOOK_SECRET", "")
    blank = Settings(_env_file=None, **settings.model_dump(exclude={"telegram_webhook_secret"}))  # type: ignore[call-arg]
    app = App.from_settings(
        web_settings(
            blank, telegram_token=SecretStr(DEFAULT_TOKEN), public_url="https://robo.example"
        ),
        database,
    )
    with pytest.raises(RuntimeError, match="TELEGRAM_WEBHOOK_SECRET"):
        await run_telegram(app, asyncio.Event())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(app)), base_url="http://test"
    ) as client:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": ""}):
            answer = await client.post("/telegram/webhook", json={"update_id": 1}, headers=headers)
            assert answer.status_code == 403
    await app.pool.close()
