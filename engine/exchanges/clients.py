"""ccxt clients: configured from settings, markets loaded once per exchange per process.

Public (keyless) clients serve market data; private clients are made per
credential and share the public client's markets, so `load_markets` happens
once per exchange per process whatever the number of users.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ccxt.async_support as ccxt_async

from db.credential_secrets import CredentialSecrets
from engine.exchanges.api_urls import point_exchange_at
from engine.exchanges.catalog import exchange_spec
from engine.exchanges.ccxt_errors import translate

DEFAULT_TIMEOUT_MS = 10_000


def build_client(
    exchange_id: str,
    api_urls: dict[str, str],
    secrets: CredentialSecrets | None = None,
    *,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> Any:
    """A new ccxt async client, pointed at ``api_urls[exchange_id]`` when set."""
    spec = exchange_spec(exchange_id)
    if spec is None:
        raise ValueError(f"unsupported exchange {exchange_id!r}")
    config: dict[str, Any] = {
        "enableRateLimit": True,
        "timeout": timeout_ms,
        "options": dict(spec.options),
    }
    if secrets is not None:
        config["apiKey"] = secrets.api_key.get_secret_value()
        config["secret"] = secrets.secret.get_secret_value()
        if secrets.passphrase is not None:
            config["password"] = secrets.passphrase.get_secret_value()
    client = getattr(ccxt_async, spec.id)(config)
    base = api_urls.get(spec.id)
    if base:
        point_exchange_at(client, base)
    return client


class ClientPool:
    """Per-process ccxt clients: one public client per exchange with its markets."""

    def __init__(self, api_urls: dict[str, str], *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> None:
        self.api_urls = api_urls
        self.timeout_ms = timeout_ms
        self._public: dict[str, Any] = {}
        self._markets_loaded: dict[str, asyncio.Lock] = {}

    def public(self, exchange_id: str) -> Any:
        """The keyless client of market data, paced by the exchange's per-IP window.

        ccxt's default leaky bucket spaces every request by its cost (20 ms per Binance
        klines request: 4 s for 200 markets at each candle close). The exchanges count
        per window instead, so the rolling window with the same budget lets a tick's
        burst through and still never exceeds what the exchange allows in any window.
        """
        client = self._public.get(exchange_id)
        if client is None:
            client = build_client(exchange_id, self.api_urls, timeout_ms=self.timeout_ms)
            spec = exchange_spec(exchange_id)
            assert spec is not None  # build_client refused unknown exchanges
            client.rateLimiterAlgorithm = "rollingWindow"
            client.rollingWindowSize = spec.public_window_ms
            client.tokenBucket = None
            client.init_rest_rate_limiter()
            self._public[exchange_id] = client
        return client

    async def markets(self, exchange_id: str) -> dict[str, Any]:
        """The exchange's markets, loaded at most once per process (concurrent callers wait)."""
        client = self.public(exchange_id)
        lock = self._markets_loaded.setdefault(exchange_id, asyncio.Lock())
        async with lock:
            if not client.markets:
                with translate():
                    await client.load_markets()
        markets: dict[str, Any] = client.markets
        return markets

    async def private(self, exchange_id: str, secrets: CredentialSecrets) -> Any:
        """A client signed with ``secrets`` that reuses the shared markets. Close it after use."""
        public = self.public(exchange_id)
        await self.markets(exchange_id)
        client = build_client(exchange_id, self.api_urls, secrets, timeout_ms=self.timeout_ms)
        client.set_markets(public.markets, public.currencies)
        return client

    async def close(self) -> None:
        clients, self._public = list(self._public.values()), {}
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
