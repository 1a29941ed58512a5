"""A key is stored only when the exchange says it cannot move funds out.

Before, a withdrawal flag missing from the exchange's answer read as "no withdrawals",
and Binance's internal / universal transfer rights and Bybit's wallet transfers were
not looked at. Now the key check fails closed, and the reply says how to restrict the
key to the server's IP addresses where the operator publishes them (EGRESS_IPS).
"""

from __future__ import annotations

import itertools

import pytest
from pydantic import SecretStr

from bots.core.context import ChatContext
from bots.core.core import ChatCore
from bots.core.rate_limit import RateLimiter
from db.credential_secrets import CredentialSecrets
from db.models import Platform
from engine.exchanges.errors import KeyAllowsWithdrawals, KeyPermissionsUnknown
from engine.exchanges.key_check import check_key
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.use_cases.exchanges import connect_exchange
from tests.emulators.exchange import ExchangeEmulator
from tests.engine.conftest import make_user

_keys = itertools.count(1)
VENUES = ["binance", "bybit"]


def _key(exchange: ExchangeEmulator, venue: str, **account: object) -> CredentialSecrets:
    n = next(_keys)
    key, secret = f"FAKEKEYperm{n:04d}{venue}", f"FAKESECRETperm{n:04d}{venue}"
    exchange.add_account(venue, key, secret, **account)  # type: ignore[arg-type]
    return CredentialSecrets(SecretStr(key), SecretStr(secret))


@pytest.mark.parametrize("venue", VENUES)
async def test_transfer_rights_count_as_withdrawals(
    live_app: App, exchange_emulator: ExchangeEmulator, venue: str
) -> None:
    with pytest.raises(KeyAllowsWithdrawals):
        await check_key(live_app.pool, venue, _key(exchange_emulator, venue, can_transfer=True))


@pytest.mark.parametrize("venue", VENUES)
async def test_an_answer_without_the_withdrawal_flag_is_refused(
    live_app: App, exchange_emulator: ExchangeEmulator, venue: str
) -> None:
    secrets = _key(exchange_emulator, venue, withdraw_flag_missing=True)
    with pytest.raises(KeyPermissionsUnknown):
        await check_key(live_app.pool, venue, secrets)
    user = await make_user(live_app, f"perm-{venue}")
    with pytest.raises(UserError) as refused:
        await connect_exchange(live_app, user, venue, secrets)
    assert refused.value.key == "key_permissions_unknown"
    assert refused.value.args_["help_url"].startswith("https://")


@pytest.mark.parametrize("venue", VENUES)
async def test_a_trade_only_key_is_accepted(
    live_app: App, exchange_emulator: ExchangeEmulator, venue: str
) -> None:
    permissions = await check_key(live_app.pool, venue, _key(exchange_emulator, venue))
    assert permissions.can_withdraw is False and permissions.can_trade is True


@pytest.mark.parametrize("egress", [["203.0.113.7", "2001:db8::7"], []])
async def test_the_reply_says_how_to_restrict_the_key_to_our_ips(
    live_app: App, exchange_emulator: ExchangeEmulator, egress: list[str]
) -> None:
    live_app.settings = live_app.settings.model_copy(update={"egress_ips": egress})
    core = ChatCore(live_app, rate_limiter=RateLimiter(rate=1000, burst=1000))
    name = f"egress{next(_keys)}"
    ctx = ChatContext(
        platform=Platform.TELEGRAM, platform_user_id=name, chat_id=name, is_private=True,
        client_language="en",
    )  # fmt: skip
    [reply] = await core.connect_with_secrets(ctx, "binance", _key(exchange_emulator, "binance"))
    text = reply.plain()
    assert "connected" in text
    if egress:
        assert "203.0.113.7, 2001:db8::7" in text and "IP" in text
    else:
        assert "203.0.113.7" not in text
