"""At a candle close the feed asks the exchange for the new candles only, and gets the same window.

The window of the previous candle is cached; the next fetch asks for the candles
since its newest one (ccxt ``since`` -> Binance ``startTime``, Bybit ``start``),
checks that they overlap it, and slides the window. The result must equal a full
fetch of the same moment, on both exchanges' dialects.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import tests.emulators.exchange as emulated
from engine.exchanges.clients import ClientPool
from engine.market_data.cache import MemoryCandleCache
from engine.market_data.feed import MarketDataFeed, MarketKey, extend_window
from engine.strategies.base import Candles
from tests.emulators.exchange import ExchangeEmulator

MINUTE = 60_000
T0 = 1_764_000_000_000 // MINUTE * MINUTE + 2_000  # 2 s after a candle closed


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The emulator's clock, moved by the test (its candles are made up to it)."""
    now = {"ms": T0}
    monkeypatch.setattr(emulated, "now_ms", lambda: now["ms"])
    return now


@pytest.fixture
def emulator(clock: dict[str, int]) -> Iterator[ExchangeEmulator]:
    with ExchangeEmulator() as server:
        yield server


def _spy_on_since(pool: ClientPool, exchange: str) -> list[Any]:
    """The ``since`` of every OHLCV request (the request itself still goes out)."""
    client = pool.public(exchange)
    real = client.fetch_ohlcv
    seen: list[Any] = []

    async def fetch_ohlcv(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("since"))
        return await real(*args, **kwargs)

    client.fetch_ohlcv = fetch_ohlcv
    return seen


def _same(a: Candles, b: Candles) -> bool:
    return all(
        np.array_equal(getattr(a, n), getattr(b, n))
        for n in ("time", "open", "high", "low", "close", "volume")
    )


@pytest.mark.parametrize("exchange", ["binance", "bybit"])
async def test_next_candle_fetches_only_the_new_ones_and_matches_a_full_fetch(
    emulator: ExchangeEmulator, clock: dict[str, int], exchange: str
) -> None:
    key = MarketKey(exchange, "BTC/USDT", "1m")
    pool = ClientPool({exchange: emulator.base_url})
    fresh_pool = ClientPool({exchange: emulator.base_url})
    feed = MarketDataFeed(pool, MemoryCandleCache(), mode="exchange")
    since = _spy_on_since(pool, exchange)
    try:
        first = await feed.fetch({key: 60}, {key}, T0)
        windows = [first.snapshots[key].candles]
        for minute in (1, 2, 3):
            clock["ms"] = T0 + minute * MINUTE
            result = await feed.fetch({key: 60}, {key}, clock["ms"])
            assert result.exchange_calls == 1 and not result.errors
            windows.append(result.snapshots[key].candles)
        full = await MarketDataFeed(fresh_pool, MemoryCandleCache(), mode="exchange").fetch(
            {key: 60}, {key}, clock["ms"]
        )
    finally:
        await pool.close()
        await fresh_pool.close()

    # The first fetch is whole; each next one starts at the previous window's newest candle.
    assert since[0] is None
    assert since[1:] == [int(w.time[-1]) for w in windows[:-1]]
    for before, after in itertools.pairwise(windows):
        assert len(after) == len(before)
        assert int(after.time[-1]) == int(before.time[-1]) + MINUTE
    assert _same(windows[-1], full.snapshots[key].candles)


def test_a_window_that_does_not_overlap_is_not_extended() -> None:
    rows = [[t * MINUTE, 1, 2, 0.5, 1.5, 10] for t in range(10)]
    previous = Candles.from_rows(rows[:5])
    assert extend_window(previous, Candles.from_rows(rows[6:]), 5) is None  # one missing
    slid = extend_window(previous, Candles.from_rows(rows[4:7]), 5)
    assert slid is not None and list(slid.time) == [t * MINUTE for t in range(2, 7)]
