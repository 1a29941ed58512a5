"""Use-case fixtures: a real App on both databases, users and bots made through the use cases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from db.session import Database
from robotrader.app import App
from robotrader.settings import Settings

# The exchange emulator and an App talking to it: the engine's own fixtures, shared.
from tests.engine.conftest import exchange_emulator, live_app

__all__ = ["exchange_emulator", "live_app"]


@pytest.fixture
async def app(settings: Settings, database: Database) -> AsyncIterator[App]:
    """An App on replay market data: nothing talks to an exchange."""
    application = App.from_settings(settings.model_copy(update={"market_data": "replay"}), database)
    yield application
    await application.backtests.close()
    await application.pool.close()


@pytest.fixture
async def self_hosted_app(settings: Settings, database: Database) -> AsyncIterator[App]:
    """The same App on a server without Stripe: no plans, every feature for every user."""
    update = {"market_data": "replay", "stripe_api_key": None}
    application = App.from_settings(settings.model_copy(update=update), database)
    yield application
    await application.backtests.close()
    await application.pool.close()
