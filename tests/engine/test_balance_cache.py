"""Balances read from an exchange are kept briefly per user: a user (or their script on
the REST API) asking again and again does not spend the server IP's request weight."""

from __future__ import annotations

import itertools

from pydantic import SecretStr

from db.credential_secrets import CredentialSecrets
from robotrader.app import App
from robotrader.use_cases.exchanges import connect_exchange
from robotrader.use_cases.portfolio import balances
from tests.emulators.exchange import ExchangeEmulator
from tests.engine.conftest import make_user

_keys = itertools.count(1)


def _account_reads(exchange: ExchangeEmulator, key: str) -> int:
    return sum(1 for c in exchange.calls if c.api_key == key and "account" in c.path)


async def _connected_user(app: App, exchange: ExchangeEmulator) -> tuple[int, str]:
    n = next(_keys)
    key, secret = f"FAKEKEYbal{n:04d}cache", f"FAKESECRETbal{n:04d}cache"
    exchange.add_account("binance", key, secret, balances={"USDT": 1234})
    user = await make_user(app, f"bal{n}")
    await connect_exchange(
        app, user, "binance", CredentialSecrets(SecretStr(key), SecretStr(secret))
    )
    return user, key


async def test_balances_are_read_once_per_short_while_per_user(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    first, first_key = await _connected_user(live_app, exchange_emulator)
    second, second_key = await _connected_user(live_app, exchange_emulator)
    exchange_emulator.reset_calls()

    answers = [await balances(live_app, first) for _ in range(5)]

    assert _account_reads(exchange_emulator, first_key) == 1
    assert all(a == answers[0] for a in answers)
    assert answers[0][1].assets["USDT"] == 1234
    await balances(live_app, second)  # another user's answer is their own
    assert _account_reads(exchange_emulator, second_key) == 1

    live_app.answers.clear()  # the short while is over
    await balances(live_app, first)
    assert _account_reads(exchange_emulator, first_key) == 2
