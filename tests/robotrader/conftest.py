"""Use-case fixtures: a real App on both databases, users and bots made through the use cases."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator

import pytest
from pydantic import SecretStr

from db.credential_secrets import CredentialSecrets
from db.session import Database
from robotrader.app import App
from robotrader.settings import Settings
from tests.emulators.exchange import ExchangeEmulator

_keys = itertools.count()


@pytest.fixture
async def app(settings: Settings, database: Database) -> AsyncIterator[App]:
    """An App on replay market data: nothing talks to an exchange."""
    application = App.from_settings(settings.model_copy(update={"market_data": "replay"}), database)
    yield application
    await application.backtests.close()
    await application.pool.close()


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


def emulator_key(exchange: ExchangeEmulator, **account: object) -> CredentialSecrets:
    """A key the emulator knows on every venue (trade-only, 10,000 USDT unless told)."""
    n = next(_keys)
    key, secret = f"FAKEKEYUC{n:04d}", f"FAKESECRETUC{n:04d}"
    for venue in ("binance", "bybit"):
        exchange.add_account(venue, key, secret, **account)  # type: ignore[arg-type]
    return CredentialSecrets(SecretStr(key), SecretStr(secret))
