"""The Redis candle cache: a tick's markets read together; a worker reads each entry once."""

from __future__ import annotations

import asyncio
import uuid

import numpy as np

from engine.market_data.cache import RedisCandleCache
from engine.strategies.base import Candles
from tests.services import REDIS_URL


def _candles(n: int, start: float) -> Candles:
    rows = [[i * 60_000, start + i, start + i + 1, start + i - 1, start + i, 1.0] for i in range(n)]
    return Candles.from_rows(np.asarray(rows))


async def test_a_worker_reads_each_exchange_entry_from_redis_once_until_it_expires() -> None:
    prefix = f"rt-test-cache-{uuid.uuid4().hex[:8]}:"
    fetcher, reader = RedisCandleCache(REDIS_URL, prefix), RedisCandleCache(REDIS_URL, prefix)
    try:
        await fetcher.put("btc", _candles(5, 100), "exchange", 0.6)
        await fetcher.put("eth", _candles(3, 10), "replay", 0.6)
        first = await reader.get_many(["btc", "eth", "sol"])
        assert [None if e is None else (len(e[0]), e[1]) for e in first] == [
            (5, "exchange"), (3, "replay"), None,
        ]  # fmt: skip
        assert first[0] is not None and first[0][0].close[-1] == 104

        await reader._redis.delete(prefix + "btc", prefix + "eth")
        again = await reader.get_many(["btc", "eth"])
        # Exchange data is kept by the worker (closed candles never change); replay data
        # may be replaced by the exchange's within its lifetime, so it is read each time.
        assert again[0] is not None and len(again[0][0]) == 5
        assert again[1] is None

        await asyncio.sleep(0.7)  # as long as Redis kept it, no longer
        assert await reader.get_many(["btc"]) == [None]
    finally:
        await fetcher.close()
        await reader.close()
