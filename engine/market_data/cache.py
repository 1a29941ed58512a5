"""Where fetched candles are kept between the workers of one tick: Redis, or process memory.

A cache entry is keyed by the market and the open time of its last closed
candle, so it is valid exactly until the next candle closes; every shard of a
tick (and every Celery worker) then reuses one fetch per market. Shards running
at the same time on several workers would all miss the same entry at a candle
close: the first claims the fetch (``claim``), the others wait for its entry.

A tick reads all its markets at once (``get_many``). In Redis that is one round
trip, and a worker keeps what it read or wrote until Redis would expire it: the
many shards a worker runs in one tick read and decode each market once, not once
per shard (a shard's fixed cost was a GET per market of the run).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
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


Entry = tuple[Candles, str]  # the candles and their source ("exchange" or "replay")


class CandleCache(Protocol):
    async def get(self, key: str) -> Entry | None: ...

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        """The entries of ``keys``, in order, read together."""
        ...

    async def put(self, key: str, candles: Candles, source: str, ttl_seconds: float) -> None: ...

    async def claim(self, key: str, ttl_seconds: float) -> bool:
        """True for the first caller until ``ttl_seconds`` pass: that one fetches the entry."""
        ...

    async def claimed(self, key: str) -> bool:
        """Whether someone's claim on ``key`` still holds."""
        ...


class _Expiring:
    """Entries in process memory, each until its deadline (``time.monotonic``)."""

    def __init__(self, limit: int = 10_000) -> None:
        self._entries: dict[str, tuple[float, Entry]] = {}
        self._limit = limit

    def get(self, key: str) -> Entry | None:
        held = self._entries.get(key)
        if held is None:
            return None
        if held[0] < time.monotonic():
            del self._entries[key]
            return None
        return held[1]

    def put(self, key: str, entry: Entry, ttl_seconds: float) -> None:
        self._entries[key] = (time.monotonic() + ttl_seconds, entry)
        if len(self._entries) > self._limit:
            now = time.monotonic()
            self._entries = {k: v for k, v in self._entries.items() if v[0] >= now}


class MemoryCandleCache:
    """For the embedded default: one process, no Redis."""

    def __init__(self) -> None:
        self._entries = _Expiring()

    async def get(self, key: str) -> Entry | None:
        return self._entries.get(key)

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        return [self._entries.get(key) for key in keys]

    async def put(self, key: str, candles: Candles, source: str, ttl_seconds: float) -> None:
        self._entries.put(key, (candles, source), ttl_seconds)

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
        # What this process read or wrote, until Redis expires it. Only exchange data:
        # a replay entry may be replaced by the exchange's within its lifetime.
        self._seen = _Expiring()

    async def get(self, key: str) -> Entry | None:
        return (await self.get_many([key]))[0]

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        found = [self._seen.get(key) for key in keys]
        missing = [i for i, entry in enumerate(found) if entry is None]
        if not missing:
            return found
        async with self._redis.pipeline(transaction=False) as pipe:
            for i in missing:
                pipe.get(self._prefix + keys[i])
                pipe.pttl(self._prefix + keys[i])
            replies = await pipe.execute()
        for n, i in enumerate(missing):
            blob, ttl_ms = replies[2 * n], replies[2 * n + 1]
            if blob:
                entry = found[i] = decode(blob)
                if entry[1] == "exchange" and ttl_ms > 0:
                    self._seen.put(keys[i], entry, ttl_ms / 1000)
        return found

    async def put(self, key: str, candles: Candles, source: str, ttl_seconds: float) -> None:
        await self._redis.set(
            self._prefix + key, encode(candles, source), px=int(ttl_seconds * 1000)
        )
        if source == "exchange":
            self._seen.put(key, (candles, source), ttl_seconds)

    async def claim(self, key: str, ttl_seconds: float) -> bool:
        claimed = await self._redis.set(
            self._prefix + "claim:" + key, b"1", nx=True, px=int(ttl_seconds * 1000)
        )
        return bool(claimed)

    async def claimed(self, key: str) -> bool:
        return bool(await self._redis.exists(self._prefix + "claim:" + key))

    async def close(self) -> None:
        await self._redis.aclose()
