"""Validating a user's API key before we store it: a real call, and no withdrawals allowed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from db.credential_secrets import CredentialSecrets
from engine.exchanges.ccxt_errors import translate
from engine.exchanges.clients import ClientPool
from engine.exchanges.errors import KeyAllowsWithdrawals, KeyPermissionsUnknown


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


# Rights that let funds leave the account the bot trades: withdrawing, and moving them
# to another account (Binance internal / universal transfer, Bybit wallet transfers).
BINANCE_OUTFLOWS = ("enableWithdrawals", "enableInternalTransfer", "permitsUniversalTransfer")
BYBIT_OUTFLOWS = frozenset({"Withdraw", "AccountTransfer", "SubMemberTransfer"})


async def _binance(client: Any) -> tuple[bool | None, bool | None]:
    with translate():
        answer = await client.sapiGetAccountApiRestrictions()
    can_trade = _truthy(answer.get("enableSpotAndMarginTrading"))
    if any(_truthy(answer.get(flag)) for flag in BINANCE_OUTFLOWS):
        return can_trade, True
    # Silence is not "no": an answer without the flag leaves it unknown (refused).
    return can_trade, False if "enableWithdrawals" in answer else None


async def _bybit(client: Any) -> tuple[bool | None, bool | None]:
    with translate():
        answer = await client.privateGetV5UserQueryApi()
    result = answer.get("result") or {}
    permissions = result.get("permissions")
    read_only = _truthy(result.get("readOnly"))
    if not isinstance(permissions, dict):
        return None, None
    can_trade = not read_only and bool(permissions.get("Spot"))
    wallet = permissions.get("Wallet")
    if not isinstance(wallet, list):
        return can_trade, None
    return can_trade, bool(BYBIT_OUTFLOWS.intersection(wallet))


_RESTRICTIONS = {"binance": _binance, "bybit": _bybit}


async def check_key(
    pool: ClientPool, exchange_id: str, secrets: CredentialSecrets
) -> KeyPermissions:
    """Call the exchange with the key; raise if it is refused or may withdraw funds.

    Fails closed: a key is accepted only when the exchange says it cannot move funds out.
    Raises ExchangeAuthError (refused), KeyAllowsWithdrawals (it can),
    KeyPermissionsUnknown (the exchange does not say), ExchangeUnavailable.
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
    if can_withdraw is None:
        raise KeyPermissionsUnknown(exchange_id)
    return KeyPermissions(
        can_read=True, can_trade=can_trade, can_withdraw=can_withdraw, assets=assets
    )
