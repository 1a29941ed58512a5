"""The use cases on both databases, with the offline market data feed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from db.session import Database
from robotrader.app import App
from robotrader.settings import Settings


@pytest.fixture
async def app(settings: Settings, database: Database) -> AsyncIterator[App]:
    application = App.from_settings(settings.model_copy(update={"market_data": "replay"}), database)
    yield application
    await application.backtests.close()
    await application.pool.close()
