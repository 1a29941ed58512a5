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
    # The window of the exchange's own per-IP limit on public requests. Market data uses
    # ccxt's rolling-window limiter over it (budget: window / ccxt's rateLimit, in ccxt's
    # cost units, which is the exchange's documented budget): a candle close's burst of
    # klines goes out at once instead of being spaced by ccxt's leaky bucket.
    public_window_ms: int = 60_000


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
        # 6,000 request weight a minute per IP; ccxt: rateLimit 50 ms, klines cost 0.4 (= 2
        # weight), so 60 s / 50 ms = 1,200 units = 6,000 weight.
        public_window_ms=60_000,
    ),
    "bybit": ExchangeSpec(
        id="bybit",
        title="Bybit",
        options={"defaultType": "spot", "fetchCurrencies": False},
        key_help_url="https://www.bybit.com/en/help-center/article/How-to-create-your-API-key",
        # 600 requests per 5 s per IP; ccxt: rateLimit 20 ms, cost 1: 250 requests per 5 s.
        public_window_ms=5_000,
    ),
}


def exchange_spec(exchange_id: str) -> ExchangeSpec | None:
    return EXCHANGES.get(exchange_id.strip().lower())
