"""Market data for a tick: one fetch per (exchange, symbol, timeframe), shared by every bot on it.

Candles come from the exchange's public (keyless) OHLCV endpoint through ccxt.
When the exchange cannot be reached, or ``MARKET_DATA=replay``, paper bots get
the replay feed instead; live bots never do: the feed says since when a market
has had no exchange data, and the tick pauses its live bots once that lasts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from engine.exchanges.ccxt_errors import translate
from engine.exchanges.clients import ClientPool
from engine.exchanges.errors import ExchangeError
from engine.market_data.cache import CandleCache
from engine.market_data.replay import ReplayFeed
from engine.market_data.timeframes import timeframe_ms
from engine.strategies.base import Candles

log = logging.getLogger(__name__)

Source = Literal["exchange", "replay"]
STANDARD_WINDOW = 120  # candles fetched per market: more than any default warm-up needs
INCREMENT = 10  # candles asked for when only the newest are missing
# How long a worker's claim to fetch a market holds. Others wait for its entry that
# long at most (one klines request takes well under a second): a claimer killed
# mid-fetch delays the other shards of that market by this, never by a whole tick.
FETCH_CLAIM_SECONDS = 2.0
CLAIM_POLL_SECONDS = 0.02


@dataclass(frozen=True, order=True)
class MarketKey:
    exchange: str
    symbol: str
    timeframe: str

    def cache_key(self, last_closed_ms: int) -> str:
        return f"{self.exchange}:{self.symbol}:{self.timeframe}:{last_closed_ms}"


@dataclass(frozen=True)
class MarketSnapshot:
    candles: Candles  # closed candles only, oldest first
    source: Source

    @property
    def last_close(self) -> float:
        return float(self.candles.close[-1])

    @property
    def last_time(self) -> int:
        return int(self.candles.time[-1])


@dataclass
class FetchResult:
    snapshots: dict[MarketKey, MarketSnapshot]
    exchange_only: dict[MarketKey, MarketSnapshot]  # for live bots: never replay
    errors: dict[MarketKey, str]
    exchange_calls: int
    # For each market in ``errors``: since when (ms) this feed has had no exchange data.
    unavailable_since: dict[MarketKey, int] = field(default_factory=dict)


def last_closed_open_time(now_ms: int, timeframe: str) -> int:
    """Open time of the newest candle that has closed at ``now_ms``."""
    step = timeframe_ms(timeframe)
    return (now_ms // step) * step - step


def closed_candles(rows: list[list[float]], now_ms: int, timeframe: str) -> Candles:
    """ccxt rows validated (ccxt lets malformed answers through as None), closed candles only."""
    if not rows:
        raise ValueError("no candles")
    array = np.asarray(
        [[float("nan") if v is None else v for v in row[:6]] for row in rows], dtype=np.float64
    )
    if array.ndim != 2 or array.shape[1] != 6 or not np.isfinite(array).all():
        raise ValueError("malformed candles")
    if (array[:, 1:5] <= 0).any() or (np.diff(array[:, 0]) <= 0).any():
        raise ValueError("implausible candles")
    cutoff = last_closed_open_time(now_ms, timeframe)
    array = array[array[:, 0] <= cutoff]
    if not len(array):
        raise ValueError("no closed candle")
    return Candles.from_rows(array)


def extend_window(previous: Candles, fresh: Candles, size: int) -> Candles | None:
    """``previous`` followed by ``fresh``, the newest ``size``; None unless they overlap.

    ``fresh`` starts at ``previous``'s newest candle (a closed candle never changes),
    so the overlap proves nothing is missing in between.
    """
    if not len(fresh) or not len(previous) or fresh.time[0] != previous.time[-1]:
        return None
    older = previous.time < fresh.time[0]
    merged = Candles(
        *(
            np.concatenate((getattr(previous, name)[older], getattr(fresh, name)))
            for name in ("time", "open", "high", "low", "close", "volume")
        )
    )
    return merged.tail(size)


class MarketDataFeed:
    def __init__(
        self,
        pool: ClientPool,
        cache: CandleCache,
        *,
        mode: Literal["exchange", "replay"] = "exchange",
        replay: ReplayFeed | None = None,
        concurrency: int = 16,
        offline_backoff_seconds: float = 60.0,
    ) -> None:
        self.pool = pool
        self.cache = cache
        self.mode = mode
        self.replay = replay or ReplayFeed()
        self._semaphore = asyncio.Semaphore(concurrency)
        self._offline_until: dict[str, float] = {}
        self._unavailable_since: dict[MarketKey, int] = {}
        self.offline_backoff_seconds = offline_backoff_seconds
        self.exchange_calls_total = 0

    def _offline(self, exchange: str) -> bool:
        return self._offline_until.get(exchange, 0.0) > time.monotonic()

    async def _klines(
        self, key: MarketKey, limit: int, now_ms: int, since: int | None = None
    ) -> Candles:
        client = self.pool.public(key.exchange)
        async with self._semaphore:
            self.exchange_calls_total += 1
            with translate():
                rows = await client.fetch_ohlcv(
                    key.symbol, key.timeframe, since=since, limit=limit + 1
                )
        return closed_candles(rows, now_ms, key.timeframe)

    async def _from_exchange(
        self, key: MarketKey, limit: int, now_ms: int, previous: Candles | None
    ) -> Candles:
        """The newest ``limit`` closed candles; only the new ones when the last window is known.

        At a candle close every market's window moves by one candle: asking for the
        candles since the previous window's newest one costs the exchange and the
        parsing a few rows instead of the whole window.
        """
        if previous is not None and len(previous) >= limit:
            since = int(previous.time[-1])
            fresh = await self._klines(key, INCREMENT, now_ms, since=since)
            window = extend_window(previous, fresh, limit)
            if window is not None:
                return window
        return await self._klines(key, limit, now_ms)

    @staticmethod
    def _use(
        key: MarketKey,
        wanted: int,
        live: bool,
        cached: tuple[Candles, str] | None,
        result: FetchResult,
    ) -> bool:
        """Take a cache entry as the market's snapshot, if there is one with enough candles."""
        if cached is None or len(cached[0]) < wanted:
            return False
        candles, source = cached
        snapshot = MarketSnapshot(candles, source)  # type: ignore[arg-type]
        result.snapshots[key] = snapshot
        if source == "exchange":
            result.exchange_only[key] = snapshot
        elif live:
            result.errors[key] = "market data unavailable"
        return True

    async def _one(
        self, key: MarketKey, wanted: int, live: bool, now_ms: int, result: FetchResult
    ) -> None:
        """One market missing from the cache: fetched, or waited for while a peer fetches it."""
        # Every shard asks for the same window, so one shard's fetch serves them all.
        limit = max(wanted, STANDARD_WINDOW)
        step_ms = timeframe_ms(key.timeframe)
        step_seconds = step_ms / 1000
        last_closed = last_closed_open_time(now_ms, key.timeframe)
        cache_key = key.cache_key(last_closed)
        cached = await self.cache.get(cache_key)  # since the shard's read, a peer may have
        if cached is None and not await self.cache.claim(cache_key, FETCH_CLAIM_SECONDS):
            cached = await self._fetched_by_peer(cache_key)
        if self._use(key, wanted, live, cached, result):
            return
        error = "replay mode"
        if self.mode == "exchange" and not self._offline(key.exchange):
            previous = await self.cache.get(key.cache_key(last_closed - step_ms))
            known = previous[0] if previous is not None and previous[1] == "exchange" else None
            try:
                candles = await self._from_exchange(key, limit, now_ms, known)
            except (ExchangeError, ValueError) as exc:
                error = str(exc)[:200] or type(exc).__name__
                self._offline_until[key.exchange] = time.monotonic() + self.offline_backoff_seconds
                log.warning("market_data.fetch_failed market=%s error=%s", key, error)
            else:
                snapshot = MarketSnapshot(candles, "exchange")
                result.snapshots[key] = result.exchange_only[key] = snapshot
                # Kept for the next candle too: its fetch then asks for the new ones only.
                await self.cache.put(cache_key, candles, "exchange", 2 * step_seconds + 30)
                return
        elif self.mode == "exchange":
            error = "exchange unreachable"
        if live:
            result.errors[key] = error
        candles = self.replay.candles(key.symbol, key.timeframe, limit, now_ms)
        result.snapshots[key] = MarketSnapshot(candles, "replay")
        await self.cache.put(cache_key, candles, "replay", min(step_seconds, 30.0))

    async def _fetched_by_peer(self, cache_key: str) -> tuple[Candles, str] | None:
        """The entry another worker claimed to fetch, once it is there (None: it gave up)."""
        deadline = time.monotonic() + FETCH_CLAIM_SECONDS
        while time.monotonic() < deadline:
            await asyncio.sleep(CLAIM_POLL_SECONDS)
            cached = await self.cache.get(cache_key)
            if cached is not None:
                return cached
            if not await self.cache.claimed(cache_key):
                return await self.cache.get(cache_key)
        return None

    async def fetch(
        self, needs: Mapping[MarketKey, int], live_keys: set[MarketKey], now_ms: int
    ) -> FetchResult:
        """Snapshots for every market in ``needs`` (market -> candles wanted), concurrently."""
        before = self.exchange_calls_total
        result = FetchResult({}, {}, {}, 0)
        cache_keys = [
            key.cache_key(last_closed_open_time(now_ms, key.timeframe)) for key in needs
        ]
        cached = await self.cache.get_many(cache_keys)  # one round trip for the whole shard
        await asyncio.gather(
            *(
                self._one(key, limit, key in live_keys, now_ms, result)
                for (key, limit), entry in zip(needs.items(), cached, strict=True)
                if not self._use(key, limit, key in live_keys, entry, result)
            )
        )
        result.exchange_calls = self.exchange_calls_total - before
        for key in needs:
            if key in result.exchange_only:
                self._unavailable_since.pop(key, None)
            else:
                self._unavailable_since.setdefault(key, now_ms)
        # In replay mode no exchange data will ever come: unavailable since forever.
        result.unavailable_since = {
            key: self._unavailable_since[key] if self.mode == "exchange" else 0
            for key in result.errors
        }
        return result
