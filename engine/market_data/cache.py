"""Where fetched candles are kept between the workers of one tick: Redis, or process memory.

A cache entry is keyed by the market and the open time of its last closed
candle, so it is valid exactly until the next candle closes; every shard of a
tick (and every Celery worker) then reuses one fetch per market. Shards running
at the same time on several workers would all miss the same entry at a candle
close: the first claims the fetch (``claim``), the others wait for its entry.
"""

from __future__ import annotations

import time
from typing import Protocol

import numpy as np

from engine.strategies.base import Candles

MAX_CONNECTIONS = 16  # per process
_FIELDS = ("time", "open", "high", "low", "close", "volume")


def encode(candles: Candles, source: str) -> bytes:
    matrix = np.column_stack([getattr(candles, f).astype(np.float64) for f in _FIELDS])
    return source.encode().ljust(16, b" ") + matrix.tobytes()


def decode(blob: bytes) -> tuple[Candles, str]:
    source = blob[:16].decode().strip()
    matrix = np.frombuffer(blob[16:], dtype=np.float64).reshape(-1, 6)
    return Candles.from_rows(matrix), source


class CandleCache(Protocol):
    async def get(self, key: str) -> tuple[Candles, str] | None: ...

    async def put(self, key: str, candles: Candles, source: str, ttl_seconds: float) -> None: ...

    async def claim(self, key: str, ttl_seconds: float) -> bool:
        """True for the first caller until ``ttl_seconds`` pass: that one fetches the entry."""
        ...

    async def claimed(self, key: str) -> bool:
        """Whether someone's claim on ``key`` still holds."""
        ...


class MemoryCandleCache:
    """For the embedded default: one process, no Redis."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Candles, str]] = {}

    async def get(self, key: str) -> tuple[Candles, str] | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            self._entries.pop(key, None)
            return None
        return entry[1], entry[2]

    async def put(self, key: str, candles: Candles, source: str, ttl_seconds: float) -> None:
        self._entries[key] = (time.monotonic() + ttl_seconds, candles, source)
        if len(self._entries) > 10_000:
            now = time.monotonic()
            self._entries = {k: v for k, v in self._entries.items() if v[0] >= now}

    # One process: a tick fetches each market once by itself, there is no one to wait for.
    async def claim(self, key: str, ttl_seconds: float) -> bool:
        return True

    async def claimed(self, key: str) -> bool:
        return False


class RedisCandleCache:
    """Shared by every worker; entries expire with their candle."""

    def __init__(self, redis_url: str, prefix: str = "rt:candles:") -> None:
        import redis.asyncio as aioredis

        # A tick reads every market of its shard at once (hundreds): they queue for a
        # bounded set of connections instead of failing with "Too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(
            redis_url, max_connections=MAX_CONNECTIONS, timeout=30
        )
        self._redis = aioredis.Redis(connection_pool=pool)
        self._prefix = prefix

    async def get(self, key: str) -> tuple[Candles, str] | None:
        blob: bytes | None = await self._redis.get(self._prefix + key)  # type: ignore[assignment]
        return decode(blob) if blob else None

    async def put(self, key: str, candles: Candles, source: str, ttl_seconds: float) -> None:
        await self._redis.set(
            self._prefix + key, encode(candles, source), px=int(ttl_seconds * 1000)
        )

    async def claim(self, key: str, ttl_seconds: float) -> bool:
        claimed = await self._redis.set(
            self._prefix + "claim:" + key, b"1", nx=True, px=int(ttl_seconds * 1000)
        )
        return bool(claimed)

    async def claimed(self, key: str) -> bool:
        return bool(await self._redis.exists(self._prefix + "claim:" + key))

    async def close(self) -> None:
        await self._redis.aclose()
