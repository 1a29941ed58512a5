"""A candle close's burst of market-data requests goes out at once, within the exchange's limits.

Binance counts request weight per minute (6,000 per IP) and Bybit requests per 5 s
(600 per IP); neither spaces requests. ccxt's default leaky bucket would space
Binance klines 20 ms apart (4 s for 200 markets at every candle close), so the
market-data client uses ccxt's rolling window over the exchange's own window, with
the same budget. The emulator enforces Binance's weights (429 -1003, then 418).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from engine.exchanges.catalog import EXCHANGES
from engine.exchanges.clients import ClientPool
from engine.market_data.cache import MemoryCandleCache
from engine.market_data.feed import MarketDataFeed, MarketKey
from tests.emulators.exchange import ExchangeEmulator

MARKETS = 150


@pytest.fixture
def emulator() -> Iterator[ExchangeEmulator]:
    with ExchangeEmulator() as server:
        for n in range(MARKETS):
            server.add_market("binance", f"C{n:03d}/USDT", price=10 + n)
        yield server


@pytest.mark.parametrize("exchange", sorted(EXCHANGES))
def test_market_data_client_paces_by_the_exchange_window(exchange: str) -> None:
    client = ClientPool({}).public(exchange)
    assert client.rateLimiterAlgorithm == "rollingWindow"
    assert client.rollingWindowSize == EXCHANGES[exchange].public_window_ms
    # The budget of one window, in ccxt's cost units: what the exchange documents.
    assert client.tokenBucket["algorithm"] == "rollingWindow"


async def test_candle_close_burst_is_not_spaced_and_stays_within_binance_weight(
    emulator: ExchangeEmulator,
) -> None:
    pool = ClientPool({"binance": emulator.base_url})
    feed = MarketDataFeed(pool, MemoryCandleCache(), mode="exchange")
    needs = {MarketKey("binance", f"C{n:03d}/USDT", "1m"): 60 for n in range(MARKETS)}
    try:
        await pool.markets("binance")
        emulator.reset_calls()
        started = time.monotonic()
        result = await feed.fetch(needs, set(needs), int(time.time() * 1000))
        elapsed = time.monotonic() - started
    finally:
        await pool.close()
    klines = [c for c in emulator.calls if c.path.endswith("/klines")]
    assert result.errors == {}
    assert len(klines) == MARKETS == result.exchange_calls
    assert all(c.status == 200 for c in klines)  # never a 429 or a 418
    # The leaky bucket needs MARKETS x 20 ms = 3 s at least; the window sends them at once.
    assert elapsed < MARKETS * 0.020 / 2, f"{MARKETS} klines took {elapsed:.2f} s"
