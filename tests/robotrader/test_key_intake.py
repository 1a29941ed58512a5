"""robotrader.use_cases.key_intake: the web form for exchange keys, via the exchange emulator."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.models import Notification
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.use_cases.exchanges import list_exchanges
from robotrader.use_cases.key_intake import (
    exchange_choices,
    issue_key_link,
    key_form_user,
    open_key_form,
    submit_key_form,
)
from tests.emulators.exchange import ExchangeEmulator
from tests.engine.conftest import make_user
from tests.engine.test_live_exchange import fake_key


async def refused(call: object) -> str:
    with pytest.raises(UserError) as raised:
        await call  # type: ignore[misc]
    return raised.value.key


def _code(link: str) -> str:
    return link.split("/connect/open/", 1)[1].split("?", 1)[0]


def test_the_form_offers_every_exchange() -> None:
    assert {c.id for c in exchange_choices()} >= {"binance", "bybit"}


async def test_a_link_opens_one_form_once(app: App) -> None:
    user = await make_user(app)
    link = await issue_key_link(app, user, "Bybit")
    assert link.startswith("http://127.0.0.1:8000/connect/open/") and link.endswith(
        "?exchange=bybit"
    )
    form = await open_key_form(app, _code(link))
    owner = await key_form_user(app, form.token)
    assert owner is not None and (owner.user_id, owner.csrf_token) == (user, form.csrf_token)
    assert await refused(open_key_form(app, _code(link))) == "key_link_invalid"
    assert await refused(open_key_form(app, "")) == "key_link_invalid"
    assert await refused(issue_key_link(app, user, "mtgox")) == "unknown_exchange"
    assert await key_form_user(app, "NOTATOKEN") is None


async def test_a_stored_key_closes_the_form_and_tells_the_chat(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    user = await make_user(live_app)
    form = await open_key_form(live_app, _code(await issue_key_link(live_app, user)))
    key = fake_key(exchange_emulator, "UC")
    connected = await submit_key_form(
        live_app, form.token, "binance", f" {key.api_key.get_secret_value()} ",
        key.secret.get_secret_value(),
    )  # fmt: skip
    assert connected.exchange == "binance"
    assert [e.exchange for e in await list_exchanges(live_app, user)] == ["binance"]
    async with live_app.database.sessions() as session:
        assert list(await session.scalars(select(Notification.kind))) == ["exchange_connected"]
    assert await key_form_user(live_app, form.token) is None
    assert await refused(
        submit_key_form(live_app, form.token, "binance", "FAKEKEY", "FAKESECRET")
    ) == "key_form_expired"  # fmt: skip


async def test_a_refused_key_leaves_the_form_open(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    user = await make_user(live_app)
    form = await open_key_form(live_app, _code(await issue_key_link(live_app, user)))
    withdraws = fake_key(exchange_emulator, "UC", can_withdraw=True)
    assert await refused(
        submit_key_form(live_app, form.token, "binance", withdraws.api_key.get_secret_value(),
                        withdraws.secret.get_secret_value())
    ) == "key_allows_withdrawals"  # fmt: skip
    assert await key_form_user(live_app, form.token) is not None
    assert await list_exchanges(live_app, user) == []
