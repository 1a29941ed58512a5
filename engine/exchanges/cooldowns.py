"""Waits an exchange imposed after a 429 / 418, seen by every process that calls it.

Binance counts request weight per IP and bans an IP that keeps calling after a
429; Bybit limits per IP and per account (UID). A wait kept in one worker's
memory lets the next worker call at once and turns a 429 into a ban, so with
Redis configured every worker reads and writes the same keys; the embedded
default (one process) keeps them in memory. Keys name the exchange, and for a
per-account limit a digest of the API key (never the key itself).
"""

from __future__ import annotations

import hashlib
import time
from typing import Protocol

from redis.asyncio import Redis

from engine.exchanges.errors import ExchangeRateLimited


def scope_of(exchange: str, api_key: str | None, error: ExchangeRateLimited) -> str:
    """Who the limit applies to: the whole exchange (per IP), or one account on it."""
    if error.per_account and api_key:
        digest = hashlib.sha256(api_key.encode()).hexdigest()[:16]
        return f"{exchange}:key:{digest}"
    return exchange


def scopes(exchange: str, api_key: str | None) -> list[str]:
    """The scopes a call with this key must respect: the exchange's, then the key's."""
    names = [exchange]
    if api_key:
        names.append(f"{exchange}:key:{hashlib.sha256(api_key.encode()).hexdigest()[:16]}")
    return names


class Cooldowns(Protocol):
    async def hold(self, scope: str, seconds: float) -> None:
        """No call in ``scope`` for ``seconds`` from now (a longer wait already set stays)."""
        ...

    async def remaining(self, scope_names: list[str]) -> float:
        """Seconds left before any of these scopes may be called again (0: now)."""
        ...

    async def close(self) -> None: ...


class MemoryCooldowns:
    """One process's waits (the embedded default)."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    async def hold(self, scope: str, seconds: float) -> None:
        until = time.time() + seconds
        self._until[scope] = max(self._until.get(scope, 0.0), until)

    async def remaining(self, scope_names: list[str]) -> float:
        now = time.time()
        return max([self._until.get(name, 0.0) - now for name in scope_names] + [0.0])

    def clear(self) -> None:
        self._until.clear()

    async def close(self) -> None:
        return None


class RedisCooldowns:
    """Waits shared by every worker: one key per scope that expires with the wait."""

    def __init__(self, url: str, prefix: str = "robotrader:cooldown:") -> None:
        self._redis: Redis = Redis.from_url(url)
        self._prefix = prefix

    async def hold(self, scope: str, seconds: float) -> None:
        key = self._prefix + scope
        ms = max(1, int(seconds * 1000))
        # Keep the longer of two waits: a shorter one must not cut a ban short.
        current = await self._redis.pttl(key)
        if current is None or current < ms:
            await self._redis.set(key, "1", px=ms)

    async def remaining(self, scope_names: list[str]) -> float:
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in scope_names:
                pipe.pttl(self._prefix + name)
            ttls: list[int] = await pipe.execute()
        return max([ttl / 1000 for ttl in ttls if ttl and ttl > 0] + [0.0])

    async def close(self) -> None:
        await self._redis.aclose()
