"""The offline feed: synthetic candles for any symbol at any time, that never repeat.

Paper bots fall back to it when an exchange cannot be reached (or when
``MARKET_DATA=replay``), backtests run on it offline, and tests and demos run on
it without a network. Everything made from it says "synthetic data".

Every candle is a pure function of (symbol, timeframe, open time): the same in a
three-year backtest, in a paper bot's tick at any moment, in any worker, after
any restart. Nothing depends on the window asked for. How:

- Time is cut into chunks of one UTC day (1,440 minutes), counted from the Unix
  epoch (the anchor). A chunk's random numbers come from its own seed,
  ``(symbol seed, purpose, day number)``, so any chunk is generated alone.
- The log price at a chunk's edge (midnight) is known without generating any
  history: ``trend(t) + level(day)``.

  * ``trend`` is slow value noise: random knots every 16 and every 128 days
    (each knot from its own seed), joined by smoothstep curves. It moves the
    price by tens of percent over months and never repeats.
  * ``level(day)`` is a bounded, mean-reverting deviation: the sum of the last
    ``LEVEL_MEMORY`` days' innovations (one normal number per day, from that
    day's seed) divided by its square root: a moving average, so two
    consecutive edges share all but one innovation and a day's close-to-close
    move has the symbol's daily volatility.

- Inside a chunk the path goes from one edge to the next as a random-walk
  bridge: minute returns ``sigma_i * z_i`` (Student-t shocks, fat tails), their
  cumulative sum less the straight line that brings it back to zero at the end,
  plus the straight line between the two edge levels, plus the trend. The last
  close of a day is therefore exactly the next day's first open: no seam.
- ``sigma_i`` clusters like GARCH volatility, but from pieces that each depend
  on time alone: a daily knot and hourly knots (log-normal, interpolated; edge
  knots come from the edge seeds so they join across midnight), bursts that
  start at random minutes and decay over tens of minutes, and a gentle
  intraday season (busier in US hours). Big moves follow big moves; returns
  themselves stay uncorrelated.
- Larger timeframes aggregate the 1m candles of their own aligned bucket, like
  an exchange does (every supported timeframe divides a day).

Price levels come from ``REFERENCE_PRICES`` (BTC in tens of thousands, ETH in
thousands, small coins below 1), converted to the quote currency; an unknown
base gets a level from its name (0.01 to 100). A year of 1m candles (525,600)
takes a few hundred milliseconds with numpy.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.market_data.timeframes import MINUTE_MS, timeframe_ms
from engine.strategies.base import Candles, FloatArray

DAY_MS = 86_400_000
CHUNK_MINUTES = 1440  # one UTC day: every supported timeframe divides it
LEVEL_MEMORY = 30  # days of innovations summed into the level deviation
TREND_SCALES = ((16.0, 0.12), (128.0, 0.3))  # (days between knots, log amplitude)
T_DEGREES = 5.0
CACHED_CHUNKS = 256  # aggregated days kept for the ticks (a 1m day is ~70 kB)

#: Price of one base unit in US dollars, about where these markets traded lately.
REFERENCE_PRICES: dict[str, float] = {
    "BTC": 90_000.0,
    "ETH": 3_000.0,
    "BNB": 600.0,
    "SOL": 150.0,
    "XRP": 0.55,
    "DOGE": 0.15,
    "ADA": 0.45,
    "LTC": 80.0,
    "LINK": 15.0,
    "DOT": 6.0,
    "AVAX": 30.0,
    "TRX": 0.12,
    "MATIC": 0.7,
    "SHIB": 0.00002,
}
USD_QUOTES = frozenset({"USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI", "USD"})
#: A day's close-to-close volatility (standard deviation of the log return).
DAILY_VOLATILITY: dict[str, float] = {"BTC": 0.03, "ETH": 0.04, "BNB": 0.035}
DEFAULT_DAILY_VOLATILITY = 0.055
#: Quote currency traded per minute, on average.
QUOTE_VOLUME_PER_MINUTE: dict[str, float] = {"BTC": 1_500_000.0, "ETH": 600_000.0, "SOL": 300_000.0}
DEFAULT_QUOTE_VOLUME_PER_MINUTE = 50_000.0

# Purposes of the per-chunk seeds (never change: every candle would change).
_EDGE, _MINUTES, _TREND = 1, 2, 3
_OFFSET = 1 << 40  # day numbers may be negative; seeds take non-negative integers


def stable_seed(text: str) -> int:
    """A 64-bit seed from ``text`` that is the same in every process.

    Python's ``hash()`` of a str is salted per process (PYTHONHASHSEED), so two
    workers would replay different prices for the same symbol.
    """
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def price_decimals(price: float) -> int:
    """Decimals an exchange would quote ``price`` with: about six significant digits, at least 2."""
    return max(2, 5 - int(np.floor(np.log10(price))))


def _usd_price(asset: str) -> float | None:
    if asset in USD_QUOTES:
        return 1.0
    return REFERENCE_PRICES.get(asset)


@dataclass(frozen=True)
class MarketProfile:
    """What makes one symbol's synthetic market its own: seed, price level, volatility."""

    seed: int
    price: float  # the level prices wander around, in the quote currency
    daily_volatility: float
    quote_volume_per_minute: float = 50_000.0

    @classmethod
    def of(cls, symbol: str) -> MarketProfile:
        seed = stable_seed(symbol)
        base, _, quote = symbol.partition("/")
        quote = quote.split(":", 1)[0]
        base_usd = _usd_price(base)
        if base_usd is None:  # a level from the name, independent of the rng streams
            level = (seed % 1_000_003) / 1_000_003
            base_usd = float(10 ** (level * 4.0 - 2.0))
        quote_usd = _usd_price(quote) or 1.0
        return cls(
            seed=seed,
            price=base_usd / quote_usd,
            daily_volatility=DAILY_VOLATILITY.get(base, DEFAULT_DAILY_VOLATILITY),
            quote_volume_per_minute=QUOTE_VOLUME_PER_MINUTE.get(
                base, DEFAULT_QUOTE_VOLUME_PER_MINUTE
            ),
        )


def _rng(profile: MarketProfile, purpose: int, index: int) -> np.random.Generator:
    return np.random.default_rng((profile.seed, purpose, index + _OFFSET))


def _trend(profile: MarketProfile, days: FloatArray) -> FloatArray:
    """Slow value noise in log price at ``days`` (fractional days since the epoch)."""
    total = np.zeros_like(days)
    for scale_index, (length, amplitude) in enumerate(TREND_SCALES):
        x = days / length
        knot = np.floor(x)
        first = int(knot.min())
        count = int(knot.max()) - first + 2
        values = np.array(
            [
                _rng(profile, _TREND, (first + i) * 8 + scale_index).standard_normal()
                for i in range(count)
            ]
        )
        i = (knot - first).astype(np.int64)
        f = x - knot
        s = f * f * (3.0 - 2.0 * f)
        total += amplitude * (values[i] * (1.0 - s) + values[i + 1] * s)
    return total


@dataclass(frozen=True)
class _Edges:
    """What is known at each midnight of a run of days, without generating their minutes."""

    level: FloatArray  # the bounded deviation of log price, one per edge
    day_vol: FloatArray  # the daily volatility knot (standard normal)
    hour_vol: FloatArray  # the hourly volatility knot at midnight (standard normal)


def _edges(profile: MarketProfile, first_day: int, days: int) -> _Edges:
    """Edges ``first_day .. first_day + days`` (one more than the days, both ends)."""
    start = first_day - LEVEL_MEMORY + 1
    draws = np.array(
        [_rng(profile, _EDGE, day).standard_normal(3) for day in range(start, first_day + days + 1)]
    )
    window = np.cumsum(np.concatenate(([0.0], draws[:, 0])))
    sums = window[LEVEL_MEMORY:] - window[:-LEVEL_MEMORY]
    # A day's move is (e[k+1] - e[k+1-M]) * sigma_D / sqrt(M): the daily volatility.
    sigma = profile.daily_volatility * np.sqrt(LEVEL_MEMORY / 2.0)
    level = sigma * sums / np.sqrt(LEVEL_MEMORY)
    tail = draws[LEVEL_MEMORY - 1 :]
    return _Edges(level=level, day_vol=tail[:, 1], hour_vol=tail[:, 2])


@dataclass(frozen=True)
class _Minutes:
    """Whole days of 1m candles, one row per day."""

    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray


def _day_draws(profile: MarketProfile, day: int) -> tuple[FloatArray, ...]:
    rng = _rng(profile, _MINUTES, day)
    n = CHUNK_MINUTES
    shocks = rng.standard_t(T_DEGREES, n) / np.sqrt(T_DEGREES / (T_DEGREES - 2.0))
    hours = rng.standard_normal(23)
    wicks = np.abs(rng.standard_normal((2, n)))
    activity = rng.standard_normal(n)
    bursts = int(rng.poisson(3.0))
    burst_at = rng.integers(0, n, bursts).astype(np.float64)
    burst_size = rng.exponential(0.5, bursts)
    burst_decay = rng.uniform(15.0, 90.0, bursts)
    return shocks, hours, wicks[0], wicks[1], activity, burst_at, burst_size, burst_decay


def _log_volatility(
    edges: _Edges, row: int, hours: FloatArray, bursts: tuple[FloatArray, ...]
) -> FloatArray:
    n = CHUNK_MINUTES
    minute = np.arange(n, dtype=np.float64)
    frac = minute / n
    day_knot = edges.day_vol[row] * (1.0 - frac) + edges.day_vol[row + 1] * frac
    hour_knots = np.concatenate(([edges.hour_vol[row]], hours, [edges.hour_vol[row + 1]]))
    hour_knot = np.interp(minute, np.arange(25, dtype=np.float64) * 60.0, hour_knots)
    season = 0.25 * np.cos(2.0 * np.pi * (minute / 60.0 - 15.0) / 24.0)
    log_vol = 0.35 * day_knot + 0.35 * hour_knot + season
    burst_at, burst_size, burst_decay = bursts
    for at, size, decay in zip(burst_at, burst_size, burst_decay, strict=True):
        after = minute >= at
        log_vol[after] += size * np.exp(-(minute[after] - at) / decay)
    # Turbulent, not absurd: at most ~6x the calm volatility, never a dead market.
    clipped: FloatArray = np.clip(log_vol, -1.5, 1.8)
    return clipped


# exp(2 * log_vol) averages about this much: minute volatility is divided by its root so
# a day's moves add up to the profile's daily volatility.
_VARIANCE_INFLATION = 1.62


def _generate(profile: MarketProfile, first_day: int, days: int) -> _Minutes:
    """``days`` whole days of 1m candles from midnight of ``first_day`` (days since the epoch)."""
    n = CHUNK_MINUTES
    edges = _edges(profile, first_day, days)
    minute_sigma = profile.daily_volatility / np.sqrt(n * _VARIANCE_INFLATION)
    points = np.empty((days, n + 1))
    sigma = np.empty((days, n))
    wick_up = np.empty((days, n))
    wick_down = np.empty((days, n))
    activity = np.empty((days, n))
    shocks_all = np.empty((days, n))
    for row in range(days):
        shocks, hours, up, down, act, *bursts = _day_draws(profile, first_day + row)
        vol = minute_sigma * np.exp(_log_volatility(edges, row, hours, tuple(bursts)))
        walk = np.concatenate(([0.0], np.cumsum(vol * shocks)))
        line = np.linspace(0.0, 1.0, n + 1)
        # The bridge: back to zero at midnight, then the straight line between edge levels.
        points[row] = (
            walk - line * walk[-1] + edges.level[row] * (1.0 - line) + edges.level[row + 1] * line
        )
        sigma[row], wick_up[row], wick_down[row] = vol, up, down
        activity[row], shocks_all[row] = act, shocks
    times = first_day + np.arange(days, dtype=np.float64)[:, None] + np.arange(n + 1) / n
    log_price = np.log(profile.price) + _trend(profile, times.ravel()).reshape(days, n + 1)
    decimals = price_decimals(profile.price)
    price = np.round(np.exp(log_price + points), decimals)
    open_, close = price[:, :-1], price[:, 1:]
    high = np.round(np.maximum(open_, close) * np.exp(0.6 * sigma * wick_up), decimals)
    low = np.round(np.minimum(open_, close) * np.exp(-0.6 * sigma * wick_down), decimals)
    high = np.maximum(high, np.maximum(open_, close))
    tick = 10.0**-decimals
    low = np.maximum(np.minimum(low, np.minimum(open_, close)), tick)
    busy = np.exp(0.5 * activity) * (0.5 + np.abs(shocks_all)) * (sigma / minute_sigma)
    volume = np.round(profile.quote_volume_per_minute * busy / close, 6) + 1e-6
    return _Minutes(open_, high, low, close, volume)


def _aggregate(minutes: _Minutes, size: int) -> _Minutes:
    if size == 1:
        return minutes
    days = minutes.open.shape[0]
    shape = (days, CHUNK_MINUTES // size, size)
    return _Minutes(
        open=minutes.open.reshape(shape)[:, :, 0],
        high=minutes.high.reshape(shape).max(axis=2),
        low=minutes.low.reshape(shape).min(axis=2),
        close=minutes.close.reshape(shape)[:, :, -1],
        volume=minutes.volume.reshape(shape).sum(axis=2),
    )


def synthetic_candles(
    profile: MarketProfile, timeframe: str, first_open_ms: int, count: int
) -> Candles:
    """``count`` consecutive ``timeframe`` candles from ``first_open_ms`` (aligned), oldest
    first."""
    step = timeframe_ms(timeframe)
    if first_open_ms % step:
        raise ValueError("first_open_ms must be aligned to the timeframe")
    times: npt.NDArray[np.int64] = first_open_ms + step * np.arange(count, dtype=np.int64)
    if count <= 0:
        empty = np.empty(0)
        return Candles(times, empty, empty.copy(), empty.copy(), empty.copy(), empty.copy())
    first_day = first_open_ms // DAY_MS
    days = int((first_open_ms + count * step - 1) // DAY_MS - first_day + 1)
    bars = _aggregate(_generate(profile, first_day, days), step // MINUTE_MS)
    skip = (first_open_ms - first_day * DAY_MS) // step
    rows = slice(skip, skip + count)
    return Candles(
        time=times,
        open=bars.open.ravel()[rows].copy(),
        high=bars.high.ravel()[rows].copy(),
        low=bars.low.ravel()[rows].copy(),
        close=bars.close.ravel()[rows].copy(),
        volume=bars.volume.ravel()[rows].copy(),
    )


class ReplayFeed:
    """Deterministic synthetic candles for any symbol at any time, without a network."""

    def __init__(self, cached_chunks: int = CACHED_CHUNKS) -> None:
        self._profiles: dict[str, MarketProfile] = {}
        # (symbol, step, day) -> that day's candles: ticks ask for the same recent days.
        self._days: OrderedDict[tuple[str, int, int], Candles] = OrderedDict()
        self._cached_chunks = cached_chunks

    def profile(self, symbol: str) -> MarketProfile:
        profile = self._profiles.get(symbol)
        if profile is None:
            profile = self._profiles[symbol] = MarketProfile.of(symbol)
        return profile

    def _day(self, symbol: str, timeframe: str, day: int) -> Candles:
        key = (symbol, timeframe_ms(timeframe), day)
        candles = self._days.get(key)
        if candles is None:
            per_day = DAY_MS // key[1]
            candles = synthetic_candles(self.profile(symbol), timeframe, day * DAY_MS, per_day)
            self._days[key] = candles
            while len(self._days) > self._cached_chunks:
                self._days.popitem(last=False)
        else:
            self._days.move_to_end(key)
        return candles

    def candles(self, symbol: str, timeframe: str, limit: int, now_ms: int) -> Candles:
        """The ``limit`` most recent candles that have closed at ``now_ms``, oldest first.

        A candle is closed once ``now_ms`` reaches its open time plus the
        timeframe; open times are multiples of the timeframe since the epoch.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        step = timeframe_ms(timeframe)
        last_open = (now_ms // step) * step - step
        first_open = last_open - (limit - 1) * step
        parts = [
            self._day(symbol, timeframe, day)
            for day in range(first_open // DAY_MS, last_open // DAY_MS + 1)
        ]
        joined = Candles(
            *(
                np.concatenate([getattr(part, name) for part in parts])
                for name in ("time", "open", "high", "low", "close", "volume")
            )
        )
        skip = (first_open - (first_open // DAY_MS) * DAY_MS) // step
        return Candles(
            *(
                getattr(joined, name)[skip : skip + limit].copy()
                for name in ("time", "open", "high", "low", "close", "volume")
            )
        )

    def history(self, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> Candles:
        """Every whole candle inside ``[start_ms, end_ms]``: opened at or after the start and
        closed by the end, for the backtester. Empty when none fits.
        """
        step = timeframe_ms(timeframe)
        first_open = -(-start_ms // step) * step
        count = max(0, (end_ms - first_open) // step)
        return synthetic_candles(self.profile(symbol), timeframe, first_open, count)
