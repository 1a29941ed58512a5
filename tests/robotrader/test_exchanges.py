"""robotrader.use_cases.exchanges against the exchange emulator (real ccxt), on both databases."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from db.credential_secrets import CredentialSecrets, unseal
from db.models import BotMode, BotStatus, CredentialStatus, ExchangeCredential, Notification
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.use_cases.bots import set_mode, show_bot
from robotrader.use_cases.exchanges import (
    connect_exchange,
    disconnect_exchange,
    list_exchanges,
    valid_secret,
)
from tests.emulators.exchange import ExchangeEmulator
from tests.engine.conftest import make_user, running_bot
from tests.engine.test_live_exchange import fake_key


async def refused(call: object) -> str:
    with pytest.raises(UserError) as raised:
        await call  # type: ignore[misc]
    return raised.value.key


def test_secrets_are_printable_ascii_without_spaces() -> None:
    assert valid_secret("abcDEF123-_")
    assert not any(valid_secret(v) for v in ("", "a b", "clé", "a\nb", "x" * 513))


async def test_connect_stores_the_key_encrypted(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    user = await make_user(live_app)
    key = fake_key(exchange_emulator, "UC")
    connected = await connect_exchange(live_app, user, "Binance", key)
    assert (connected.exchange, connected.label, connected.status) == (
        "binance", "default", CredentialStatus.ACTIVE,
    )  # fmt: skip
    assert connected.permissions["withdraw"] is False
    async with live_app.database.sessions() as session:
        stored = await session.scalar(select(ExchangeCredential))
    assert stored is not None and stored.user_id == user
    assert unseal(live_app.vault, stored).api_key == key.api_key
    assert [e.exchange for e in await list_exchanges(live_app, user)] == ["binance"]


async def test_the_web_form_tells_the_chat(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    user = await make_user(live_app)
    await connect_exchange(
        live_app, user, "bybit", fake_key(exchange_emulator, "UC"), tell_chat=True
    )
    async with live_app.database.sessions() as session:
        kinds = list(await session.scalars(select(Notification.kind)))
    assert kinds == ["exchange_connected"]


async def test_connecting_again_replaces_the_key(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    user = await make_user(live_app)
    await connect_exchange(live_app, user, "binance", fake_key(exchange_emulator, "UC"))
    second = fake_key(exchange_emulator, "UC")
    await connect_exchange(live_app, user, "binance", second)
    async with live_app.database.sessions() as session:
        stored = (await session.scalars(select(ExchangeCredential))).all()
    assert len(stored) == 1 and unseal(live_app.vault, stored[0]).api_key == second.api_key


async def test_keys_that_may_withdraw_or_are_refused_are_not_stored(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    user = await make_user(live_app)
    withdraws = fake_key(exchange_emulator, "UC", can_withdraw=True)
    assert await refused(connect_exchange(live_app, user, "binance", withdraws)) == (
        "key_allows_withdrawals"
    )
    unknown = CredentialSecrets(SecretStr("FAKEKEYUNKNOWN"), SecretStr("FAKESECRETUNKNOWN"))
    assert await refused(connect_exchange(live_app, user, "binance", unknown)) == "key_refused"
    assert await list_exchanges(live_app, user) == []


async def test_malformed_keys_and_unknown_exchanges_are_refused(app: App) -> None:
    user = await make_user(app)
    bad = CredentialSecrets(SecretStr("has space"), SecretStr("FAKESECRET"))
    assert await refused(connect_exchange(app, user, "binance", bad)) == "key_malformed"
    good = CredentialSecrets(SecretStr("FAKEKEY"), SecretStr("FAKESECRET"))
    assert await refused(connect_exchange(app, user, "mtgox", good)) == "unknown_exchange"


async def test_a_key_typed_where_the_exchange_goes_is_not_repeated(app: App) -> None:
    """The key form and `/connect KEY SECRET` put the key where the exchange's name goes."""
    user = await make_user(app)
    good = CredentialSecrets(SecretStr("FAKEKEY"), SecretStr("FAKESECRET"))
    with pytest.raises(UserError) as pasted:
        await connect_exchange(app, user, "0000000000000000", good)
    assert pasted.value.args_["exchange"] == "…"
    with pytest.raises(UserError) as long_word:
        await connect_exchange(app, user, "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0Mu", good)
    assert long_word.value.args_["exchange"] == "…"
    with pytest.raises(UserError) as typo:
        await connect_exchange(app, user, "bnance", good)
    assert typo.value.args_["exchange"] == "bnance"  # a misspelt name still helps


async def test_an_unreachable_exchange_is_said_so(app: App) -> None:
    user = await make_user(app)
    key = CredentialSecrets(SecretStr("FAKEKEY"), SecretStr("FAKESECRET"))
    assert await refused(connect_exchange(app, user, "binance", key)) == "exchange_unavailable"


async def test_the_free_plan_allows_one_exchange(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    user = await make_user(live_app, plan="free")
    await connect_exchange(live_app, user, "binance", fake_key(exchange_emulator, "UC"))
    assert await refused(
        connect_exchange(live_app, user, "bybit", fake_key(exchange_emulator, "UC"))
    ) == "limit_reached"  # fmt: skip


async def test_disconnect_forgets_the_key_and_pauses_live_bots(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    user, other = await make_user(live_app, "u1"), await make_user(live_app, "u2")
    await connect_exchange(live_app, user, "binance", fake_key(exchange_emulator, "UC"))
    await connect_exchange(live_app, other, "binance", fake_key(exchange_emulator, "UC"))
    bot = await running_bot(live_app, user)
    await set_mode(live_app, user, bot, BotMode.LIVE, confirmed=True)
    assert await disconnect_exchange(live_app, user, "binance") == 1
    shown = await show_bot(live_app, user, bot)
    assert (shown.status, shown.pause_reason) == (BotStatus.PAUSED, "exchange_disconnected")
    assert await list_exchanges(live_app, user) == []
    assert [e.exchange for e in await list_exchanges(live_app, other)] == ["binance"]
    assert await refused(disconnect_exchange(live_app, user, "binance")) == (
        "exchange_not_connected"
    )
