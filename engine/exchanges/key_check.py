"""Validating a user's API key before we store it: a real call, and no withdrawals allowed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from db.credential_secrets import CredentialSecrets
from engine.exchanges.ccxt_errors import translate
from engine.exchanges.clients import ClientPool
from engine.exchanges.errors import KeyAllowsWithdrawals


@dataclass(frozen=True)
class KeyPermissions:
    """What the exchange told us the key may do (None: the exchange does not say)."""

    can_read: bool
    can_trade: bool | None
    can_withdraw: bool | None
    assets: int  # non-zero balances seen

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.can_read,
            "trade": self.can_trade,
            "withdraw": self.can_withdraw,
            "assets": self.assets,
        }


def _truthy(value: Any) -> bool:
    return value in (True, "true", "True", 1, "1")


async def _binance(client: Any) -> tuple[bool | None, bool | None]:
    with translate():
        answer = await client.sapiGetAccountApiRestrictions()
    return _truthy(answer.get("enableSpotAndMarginTrading")), _truthy(
        answer.get("enableWithdrawals")
    )


async def _bybit(client: Any) -> tuple[bool | None, bool | None]:
    with translate():
        answer = await client.privateGetV5UserQueryApi()
    result = answer.get("result") or {}
    permissions = result.get("permissions") or {}
    read_only = _truthy(result.get("readOnly"))
    can_trade = not read_only and bool(permissions.get("Spot"))
    can_withdraw = "Withdraw" in (permissions.get("Wallet") or [])
    return can_trade, can_withdraw


_RESTRICTIONS = {"binance": _binance, "bybit": _bybit}


async def check_key(
    pool: ClientPool, exchange_id: str, secrets: CredentialSecrets
) -> KeyPermissions:
    """Call the exchange with the key; raise if it is refused or may withdraw funds.

    Raises ExchangeAuthError (refused), KeyAllowsWithdrawals, ExchangeUnavailable.
    """
    client = await pool.private(exchange_id, secrets)
    try:
        with translate():
            balance = await client.fetch_balance()
        assets = sum(1 for v in (balance.get("total") or {}).values() if v)
        can_trade: bool | None = None
        can_withdraw: bool | None = None
        restrictions = _RESTRICTIONS.get(exchange_id)
        if restrictions is not None:
            can_trade, can_withdraw = await restrictions(client)
    finally:
        await client.close()
    if can_withdraw:
        raise KeyAllowsWithdrawals(exchange_id)
    return KeyPermissions(
        can_read=True, can_trade=can_trade, can_withdraw=can_withdraw, assets=assets
    )
