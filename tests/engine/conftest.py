"""Engine fixtures: a real App (database on both backends) and bots made through the use cases."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import fields, replace
from decimal import Decimal
from typing import Any

import pytest

from db.models import Platform
from db.session import Database
from engine.market_data.cache import MemoryCandleCache
from engine.market_data.feed import MarketDataFeed
from robotrader.app import App
from robotrader.settings import Settings
from robotrader.use_cases.accounts import register
from robotrader.use_cases.bot_settings import BotSettings
from robotrader.use_cases.bots import BotSpec, create_bot, start_bot
from tests.emulators.exchange import ExchangeEmulator

CLOSED_PORT = "http://127.0.0.1:9"  # nothing listens there: the exchange is "unreachable"

# Keywords of a test bot that are its settings (timeframe, stops, exits, limits).
SETTINGS_FIELDS = {field.name for field in fields(BotSettings)}


def bot_settings_of(values: dict[str, Any]) -> BotSettings:
    """A test bot's settings: ``settings=`` and/or its fields as keywords (taken out of
    ``values``); numbers may be given as text."""
    base = values.pop("settings", BotSettings())
    given = {k: values.pop(k) for k in SETTINGS_FIELDS & set(values)}
    return replace(
        base,
        **{
            k: Decimal(str(v)) if isinstance(v, str | int) and k != "timeframe" else v
            for k, v in given.items()
        },
    )


@pytest.fixture
async def app(settings: Settings, database: Database) -> AsyncIterator[App]:
    settings = settings.model_copy(update={"market_data": "replay"})
    application = App.from_settings(settings, database)
    yield application
    await application.pool.close()


def offline_feed(app: App) -> MarketDataFeed:
    """A feed that tries the exchange (refused at once) and falls back to replay."""
    app.pool.api_urls = {"binance": CLOSED_PORT, "bybit": CLOSED_PORT}
    return MarketDataFeed(app.pool, MemoryCandleCache(), mode="exchange")


async def make_user(app: App, name: str = "u1", plan: str = "premium") -> int:
    account = await register(app, Platform.TELEGRAM, name, chat_id=name, client_language="pt-br")
    async with app.database.transaction() as session:
        from db.models import User

        user = await session.get(User, account.user_id)
        assert user is not None
        user.plan = plan  # type: ignore[assignment]
    return account.user_id


async def running_bot(app: App, user_id: int, **spec: object) -> int:
    values: dict[str, object] = {
        "exchange": "binance", "symbols": ["BTC/USDT"], "strategy": "dca", "capital": "1000",
    }  # fmt: skip
    values.update(spec)
    settings = bot_settings_of(values)  # type: ignore[arg-type]
    bot = await create_bot(app, user_id, BotSpec(**values, settings=settings))  # type: ignore[arg-type]
    await start_bot(app, user_id, bot.id)
    return bot.id


@pytest.fixture(scope="module")
def exchange_emulator() -> Iterator[ExchangeEmulator]:
    with ExchangeEmulator() as emulator:
        yield emulator


@pytest.fixture
async def live_app(
    settings: Settings, database: Database, exchange_emulator: ExchangeEmulator
) -> AsyncIterator[App]:
    """An App whose ccxt clients talk to the local exchange emulator."""
    urls = {"binance": exchange_emulator.base_url, "bybit": exchange_emulator.base_url}
    settings = settings.model_copy(update={"exchange_api_urls": urls, "market_data": "exchange"})
    application = App.from_settings(settings, database)
    application.pool.timeout_ms = 3_000
    exchange_emulator.clear_faults()
    exchange_emulator.reset_rate_limits()
    yield application
    await application.pool.close()
