"""The exchanges RoboTrader trades on, and how ccxt must be configured for each."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ExchangeSpec:
    id: str  # ccxt id
    title: str
    needs_passphrase: bool = False
    # ccxt options: spot only, and no calls we do not need (each costs rate-limit weight).
    options: dict[str, Any] = field(default_factory=dict)
    # How to make a key without withdrawal rights, shown when we refuse one.
    key_help_url: str = ""


EXCHANGES: dict[str, ExchangeSpec] = {
    "binance": ExchangeSpec(
        id="binance",
        title="Binance",
        options={
            "defaultType": "spot",
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
            "adjustForTimeDifference": False,
        },
        key_help_url="https://www.binance.com/en/support/faq/360002502072",
    ),
    "bybit": ExchangeSpec(
        id="bybit",
        title="Bybit",
        options={"defaultType": "spot", "fetchCurrencies": False},
        key_help_url="https://www.bybit.com/en/help-center/article/How-to-create-your-API-key",
    ),
}


def exchange_spec(exchange_id: str) -> ExchangeSpec | None:
    return EXCHANGES.get(exchange_id.strip().lower())
