"""A running Telegram front end (real python-telegram-bot) against the Bot API emulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr

from bots.telegram.service import run_telegram
from db.session import Database
from robotrader.app import App
from robotrader.settings import Settings
from tests.emulators.exchange import ExchangeEmulator
from tests.emulators.telegram import DEFAULT_TOKEN, TelegramEmulator
from tests.secret_audit import AUDIT


@pytest.fixture(scope="module")
def telegram_emulator() -> Iterator[TelegramEmulator]:
    with TelegramEmulator() as emulator:
        yield emulator
        AUDIT.scan_chat("chat:telegram", emulator.sent())


@pytest.fixture(scope="module")
def exchange_emulator() -> Iterator[ExchangeEmulator]:
    with ExchangeEmulator() as emulator:
        yield emulator


@dataclass
class RunningBot:
    app: App
    emulator: TelegramEmulator
    exchange: ExchangeEmulator

    async def reply_to(
        self,
        chat_id: int,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 15,  # noqa: ASYNC109 - the wait runs in a worker thread
    ) -> dict[str, Any]:
        return await self.emulator.wait_for_async(
            lambda m: m["chat"]["id"] == chat_id and predicate(m), timeout
        )

    async def says(
        self,
        chat_id: int,
        fragment: str,
        timeout: float = 15,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        return await self.reply_to(chat_id, lambda m: fragment in (m.get("text") or ""), timeout)


@pytest.fixture
def extra_settings() -> dict[str, Any]:
    """Settings a test module adds (override this fixture in the module)."""
    return {}


@pytest.fixture
async def telegram_bot(
    settings: Settings,
    database: Database,
    telegram_emulator: TelegramEmulator,
    exchange_emulator: ExchangeEmulator,
    extra_settings: dict[str, Any],
) -> AsyncIterator[RunningBot]:
    telegram_emulator.reset_records()
    settings = settings.model_copy(
        update={
            **extra_settings,
            "telegram_token": SecretStr(DEFAULT_TOKEN),
            "telegram_api_url": telegram_emulator.api_base_url,
            "exchange_api_urls": {
                "binance": exchange_emulator.base_url,
                "bybit": exchange_emulator.base_url,
            },
            "market_data": "replay",
        }
    )
    app = App.from_settings(settings, database)
    stop = asyncio.Event()
    task = asyncio.create_task(run_telegram(app, stop))
    try:
        yield RunningBot(app, telegram_emulator, exchange_emulator)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=30)
        await app.backtests.close()
        await app.pool.close()
