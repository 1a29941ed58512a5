"""The offline feed: shipped sample candles replayed in a loop, a seeded random walk otherwise.

Paper bots fall back to it when an exchange cannot be reached (or when
``MARKET_DATA=replay``), and tests and demos run on it without a network.

Every answer is a pure function of the symbol and the time asked for: the
1m series of a symbol repeats forever, the candle of minute ``m`` being row
``(m - first_minute) % length`` of the series. Any two workers, any restart,
any test, see the same candles for the same ``now``, and the feed never runs
out. The series are built so their last close equals their first open, so the
loop has no seam (no jump, no fake crossing, at the wrap). Larger timeframes
aggregate the 1m candles of their own aligned bucket, like an exchange does.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from engine.market_data.timeframes import MINUTE_MS, timeframe_ms
from engine.strategies.base import Candles, FloatArray, IntArray

SAMPLES_DIR = Path(__file__).parent / "samples"
SAMPLE_COLUMNS = "time,open,high,low,close,volume"

# Random walks for symbols without a sample: one week of minutes, like the samples.
WALK_MINUTES = 7 * 1440
WALK_START_MS = 1_735_689_600_000  # 2025-01-01T00:00Z: any minute works, this one reads well

_PLAIN_SYMBOL = re.compile(r"[A-Z0-9]{1,20}/[A-Z0-9]{1,20}")


def stable_seed(text: str) -> int:
    """A 64-bit seed from ``text`` that is the same in every process.

    Python's ``hash()`` of a str is salted per process (PYTHONHASHSEED), so two
    workers would replay different prices for the same unknown symbol.
    """
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def price_decimals(price: float) -> int:
    """Decimals an exchange would quote ``price`` with: about six significant digits, at least 2."""
    return max(2, 5 - int(np.floor(np.log10(price))))


def random_walk_candles(
    seed: int,
    start_price: float,
    minutes: int,
    *,
    start_ms: int = WALK_START_MS,
    minute_volatility: float = 0.0012,
    quote_volume_per_minute: float = 50_000.0,
) -> Candles:
    """``minutes`` 1m candles of a seeded geometric random walk that loops without a seam.

    Log returns follow a GARCH(1, 1) with Student-t shocks, so calm and
    turbulent hours alternate and moves have fat tails, as in real crypto
    markets; that is what makes crossovers, RSI extremes and grid lines
    actually get hit. ``minute_volatility`` is the long-run standard deviation
    of one minute's log return (0.0008 ≈ 3 % a day, BTC-like). A constant
    drift is then removed so the walk ends where it started (a Brownian
    bridge in log price): the last close equals the first open and the series
    can repeat forever. Prices are rounded like an exchange quotes them.
    """
    if minutes < 2:
        raise ValueError("a walk needs at least 2 minutes")
    if start_price <= 0 or minute_volatility <= 0:
        raise ValueError("start_price and minute_volatility must be positive")
    rng = np.random.default_rng(seed)
    degrees = 5.0
    shocks = rng.standard_t(degrees, minutes) / np.sqrt(degrees / (degrees - 2.0))
    arch, garch = 0.05, 0.94
    constant = minute_volatility**2 * (1.0 - arch - garch)
    variance = np.empty(minutes, dtype=np.float64)
    current = minute_volatility**2
    # The GARCH recurrence runs once per walk (a week of minutes), not per request.
    for index, shock in enumerate(shocks.tolist()):
        variance[index] = current
        current = constant + (arch * shock * shock + garch) * current
    volatility = np.sqrt(variance)
    returns = volatility * shocks
    returns -= returns.sum() / minutes
    log_close = np.cumsum(returns)
    log_close[-1] = 0.0  # the bridge, exactly: the loop closes on the opening price

    decimals = price_decimals(start_price)
    close = np.round(start_price * np.exp(log_close), decimals)
    open_ = np.roll(close, 1)
    wick_up = volatility * np.abs(rng.standard_normal(minutes)) * 0.7
    wick_down = volatility * np.abs(rng.standard_normal(minutes)) * 0.7
    high = np.round(np.maximum(open_, close) * np.exp(wick_up), decimals)
    low = np.round(np.minimum(open_, close) * np.exp(-wick_down), decimals)
    # Busier when the market moves, lognormal noise otherwise.
    activity = np.exp(0.5 * rng.standard_normal(minutes)) * (0.5 + np.abs(shocks))
    volume = np.round(quote_volume_per_minute * activity / close, 6)
    time = start_ms - start_ms % MINUTE_MS + MINUTE_MS * np.arange(minutes, dtype=np.int64)
    return Candles(time=time, open=open_, high=high, low=low, close=close, volume=volume)


def symbol_walk(symbol: str) -> Candles:
    """The walk a symbol without a sample replays; its price level also comes from its name."""
    seed = stable_seed(symbol)
    level = (seed % 1_000_003) / 1_000_003  # uniform in [0, 1), independent of the rng stream
    start_price = float(10 ** (level * 4.0 - 1.0))  # 0.1 .. 1000
    return random_walk_candles(seed, start_price, WALK_MINUTES)


def sample_path(symbol: str, samples_dir: Path = SAMPLES_DIR) -> Path | None:
    """The shipped file for ``symbol`` ("BTC/USDT" -> BTC_USDT_1m.csv.gz), if there is one."""
    if not _PLAIN_SYMBOL.fullmatch(symbol):  # never build a path from odd input
        return None
    path = samples_dir / f"{symbol.replace('/', '_')}_1m.csv.gz"
    return path if path.is_file() else None


def load_sample(path: Path) -> Candles:
    """A sample file's 1m candles; ValueError unless they are consecutive minutes."""
    with gzip.open(path, "rt", encoding="ascii") as text:
        header = text.readline().strip()
        if header != SAMPLE_COLUMNS:
            raise ValueError(f"{path.name}: expected header {SAMPLE_COLUMNS!r}")
        rows = np.loadtxt(text, delimiter=",", dtype=np.float64, ndmin=2)
    candles = Candles.from_rows(rows)
    if len(candles) < 1440 or (np.diff(candles.time) != MINUTE_MS).any():
        raise ValueError(f"{path.name}: needs at least a day of consecutive 1m candles")
    return candles


@dataclass(frozen=True)
class _LoopedBuckets:
    """One symbol's candles of one bucket size, for every position the bucket can start at.

    Index ``r`` describes the bucket whose first minute is row ``r`` of the
    looped 1m series, so any request is a single gather.
    """

    first_minute: int
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    @classmethod
    def of(cls, minutes: Candles, size: int) -> _LoopedBuckets:
        length = len(minutes)
        first_minute = int(minutes.time[0]) // MINUTE_MS
        if size == 1:
            return cls(
                first_minute, minutes.open, minutes.high, minutes.low, minutes.close, minutes.volume
            )

        def windows(values: FloatArray) -> FloatArray:
            # The series extended cyclically, so a bucket may wrap round the end.
            return sliding_window_view(np.resize(values, length + size - 1), size)

        return cls(
            first_minute=first_minute,
            open=minutes.open,
            high=windows(minutes.high).max(axis=1),
            low=windows(minutes.low).min(axis=1),
            close=np.roll(minutes.close, 1 - size),
            volume=windows(minutes.volume).sum(axis=1),
        )

    def candles(self, first_open_ms: int, count: int, step_ms: int) -> Candles:
        opens: IntArray = first_open_ms + step_ms * np.arange(count, dtype=np.int64)
        rows = (opens // MINUTE_MS - self.first_minute) % self.open.shape[0]
        return Candles(
            time=opens,
            open=self.open[rows],
            high=self.high[rows],
            low=self.low[rows],
            close=self.close[rows],
            volume=self.volume[rows],
        )


class ReplayFeed:
    """Deterministic candles for any symbol at any time, without a network."""

    def __init__(self, samples_dir: Path = SAMPLES_DIR) -> None:
        self.samples_dir = samples_dir
        self._minutes: dict[str, Candles] = {}
        self._buckets: dict[tuple[str, int], _LoopedBuckets] = {}

    def minutes(self, symbol: str) -> Candles:
        """The looped 1m series of ``symbol``: its shipped sample, else its random walk."""
        series = self._minutes.get(symbol)
        if series is None:
            path = sample_path(symbol, self.samples_dir)
            series = load_sample(path) if path else symbol_walk(symbol)
            self._minutes[symbol] = series
        return series

    def _looped(self, symbol: str, step_ms: int) -> _LoopedBuckets:
        key = (symbol, step_ms // MINUTE_MS)
        buckets = self._buckets.get(key)
        if buckets is None:
            buckets = _LoopedBuckets.of(self.minutes(symbol), key[1])
            self._buckets[key] = buckets
        return buckets

    def candles(self, symbol: str, timeframe: str, limit: int, now_ms: int) -> Candles:
        """The ``limit`` most recent candles that have closed at ``now_ms``, oldest first.

        A candle is closed once ``now_ms`` reaches its open time plus the
        timeframe; open times are multiples of the timeframe since the epoch.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        step = timeframe_ms(timeframe)
        last_open = (now_ms // step) * step - step
        return self._looped(symbol, step).candles(last_open - (limit - 1) * step, limit, step)

    def history(self, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> Candles:
        """Every whole candle inside ``[start_ms, end_ms]``: opened at or after the start and
        closed by the end, for the backtester. Empty when none fits.
        """
        step = timeframe_ms(timeframe)
        first_open = -(-start_ms // step) * step
        count = max(0, (end_ms - first_open) // step)
        return self._looped(symbol, step).candles(first_open, count, step)
