"""The offline feed: synthetic, non-repeating, deterministic per candle, aligned, closed."""

from __future__ import annotations

import numpy as np
import pytest

from engine.market_data.replay import (
    DAILY_VOLATILITY,
    MarketProfile,
    ReplayFeed,
    stable_seed,
    synthetic_candles,
)
from engine.market_data.timeframes import TIMEFRAME_MS, timeframe_ms
from engine.strategies.base import Candles
from engine.strategies.registry import STRATEGIES

NOW = 1_760_000_123_456  # 2025-10-09, mid-minute
DAY_MS = 86_400_000
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
OLD_LOOP_MINUTES = 7 * 1440  # the period the shipped samples used to repeat with
FIELDS = ("time", "open", "high", "low", "close", "volume")


def aggregate(minutes: Candles, size: int) -> Candles:
    """Exchange-style aggregation of consecutive 1m candles, written the obvious way."""
    rows = []
    for start in range(0, len(minutes), size):
        chunk = slice(start, start + size)
        rows.append(
            [
                minutes.time[start],
                minutes.open[start],
                minutes.high[chunk].max(),
                minutes.low[chunk].min(),
                minutes.close[start + size - 1],
                minutes.volume[chunk].sum(),
            ]
        )
    return Candles.from_rows(rows)


def assert_candles_equal(actual: Candles, expected: Candles) -> None:
    assert np.array_equal(actual.time, expected.time)
    for field in ("open", "high", "low", "close"):
        assert np.array_equal(getattr(actual, field), getattr(expected, field)), field
    np.testing.assert_allclose(actual.volume, expected.volume, rtol=1e-12)


@pytest.fixture(scope="module")
def feed() -> ReplayFeed:
    return ReplayFeed()


# --- timeframes ------------------------------------------------------------------------


def test_timeframes() -> None:
    assert timeframe_ms("1m") == 60_000
    assert timeframe_ms("4h") == 4 * 3_600_000
    assert timeframe_ms("1d") == DAY_MS
    assert list(TIMEFRAME_MS) == ["1m", "5m", "15m", "1h", "4h", "1d"]
    with pytest.raises(ValueError, match="unsupported timeframe '3m'"):
        timeframe_ms("3m")


# --- candles(): closed, aligned, recent, deterministic ---------------------------------


@pytest.mark.parametrize("timeframe", list(TIMEFRAME_MS))
@pytest.mark.parametrize("now", [NOW, NOW - NOW % DAY_MS, 1_500_000_000_000])
def test_candles_are_the_latest_closed_and_aligned(
    feed: ReplayFeed, timeframe: str, now: int
) -> None:
    step = timeframe_ms(timeframe)
    candles = feed.candles("BTC/USDT", timeframe, 50, now)
    assert len(candles) == 50
    assert (candles.time % step == 0).all()
    assert (np.diff(candles.time) == step).all()
    assert candles.time[-1] + step <= now  # closed
    assert candles.time[-1] + 2 * step > now  # and the newest closed one
    assert candles.time.dtype == np.int64 and candles.close.dtype == np.float64


def test_a_candle_closes_exactly_at_its_end(feed: ReplayFeed) -> None:
    boundary = NOW - NOW % 3_600_000
    assert feed.candles("ETH/USDT", "1h", 1, boundary).time[-1] == boundary - 3_600_000
    assert feed.candles("ETH/USDT", "1h", 1, boundary - 1).time[-1] == boundary - 7_200_000


def test_candles_are_deterministic(feed: ReplayFeed) -> None:
    first = feed.candles("SOL/USDT", "5m", 100, NOW)
    again = ReplayFeed().candles("SOL/USDT", "5m", 100, NOW)
    assert_candles_equal(first, again)
    later = feed.candles("SOL/USDT", "5m", 100, NOW + 5 * 60_000)  # one candle later
    assert np.array_equal(later.time[:-1], first.time[1:])
    assert np.array_equal(later.close[:-1], first.close[1:])


def assert_candles_equal_prices(a: Candles, b: Candles) -> None:
    for field in ("open", "high", "low", "close", "volume"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field


def test_bad_requests_are_refused(feed: ReplayFeed) -> None:
    with pytest.raises(ValueError):
        feed.candles("BTC/USDT", "1m", 0, NOW)
    with pytest.raises(ValueError):
        feed.candles("BTC/USDT", "2h", 10, NOW)


# --- aggregation -------------------------------------------------------------------------


@pytest.mark.parametrize("timeframe", ["5m", "15m", "1h", "4h", "1d"])
def test_larger_timeframes_aggregate_their_minutes(feed: ReplayFeed, timeframe: str) -> None:
    step = timeframe_ms(timeframe)
    size = step // 60_000
    candles = feed.candles("ETH/USDT", timeframe, 12, NOW)
    minutes = feed.history("ETH/USDT", "1m", int(candles.time[0]), int(candles.time[-1]) + step)
    assert len(minutes) == 12 * size
    assert_candles_equal(candles, aggregate(minutes, size))


# --- history() ---------------------------------------------------------------------------


def test_history_holds_whole_candles_only(feed: ReplayFeed) -> None:
    start = NOW - 10 * 3_600_000
    candles = feed.history("BTC/USDT", "1h", start, NOW)
    hour = 3_600_000
    assert candles.time[0] == start - start % hour + hour  # the first whole hour
    assert candles.time[-1] + hour <= NOW
    assert len(candles) == 9
    aligned = NOW - NOW % hour
    assert len(feed.history("BTC/USDT", "1h", aligned - 3 * hour, aligned)) == 3
    assert len(feed.history("BTC/USDT", "1h", aligned, aligned)) == 0
    assert len(feed.history("BTC/USDT", "1h", aligned, aligned - hour)) == 0


def test_history_agrees_with_candles(feed: ReplayFeed) -> None:
    recent = feed.candles("SOL/USDT", "15m", 40, NOW)
    past = feed.history("SOL/USDT", "15m", int(recent.time[0]), NOW)
    assert_candles_equal(recent, past)


def test_a_year_of_minutes_for_the_backtester(feed: ReplayFeed) -> None:
    end = NOW - NOW % DAY_MS
    year = feed.history("BTC/USDT", "1m", end - 365 * DAY_MS, end)
    assert len(year) == 525_600
    assert np.array_equal(year.open[1:], year.close[:-1])


# --- symbols without a sample ----------------------------------------------------------


def test_unknown_symbols_get_a_stable_random_walk(feed: ReplayFeed) -> None:
    candles = feed.candles("FOO/BAR", "1h", 48, NOW)
    assert len(candles) == 48 and (candles.close > 0).all()
    assert (candles.high >= np.maximum(candles.open, candles.close)).all()
    assert (candles.low <= np.minimum(candles.open, candles.close)).all()
    assert_candles_equal(candles, ReplayFeed().candles("FOO/BAR", "1h", 48, NOW))
    other = feed.candles("BAZ/BAR", "1h", 48, NOW)
    assert not np.array_equal(candles.close, other.close)


def test_the_seed_does_not_depend_on_the_process() -> None:
    # sha256-based, unlike hash(), which PYTHONHASHSEED salts per process.
    assert stable_seed("FOO/BAR") == 0xCBE271999C071A8F


# --- synthetic data that does not lie by repetition --------------------------------------


def _year(feed: ReplayFeed, symbol: str = "BTC/USDT") -> Candles:
    end = NOW - NOW % DAY_MS
    return feed.history(symbol, "1m", end - 365 * DAY_MS, end)


def test_a_year_of_minutes_never_repeats(feed: ReplayFeed) -> None:
    year = _year(feed)
    returns = np.diff(np.log(year.close))
    # The old feed looped a week of minutes: its returns correlated 1.0 at that lag.
    lagged = np.corrcoef(returns[:-OLD_LOOP_MINUTES], returns[OLD_LOOP_MINUTES:])[0, 1]
    assert abs(lagged) < 0.02
    month = year.close[: 30 * 1440].reshape(30, 1440)
    assert len({day.tobytes() for day in month}) == 30  # no two days alike
    assert len(np.unique(year.close)) > 0.5 * len(year)


def test_a_candle_does_not_depend_on_the_window_asked_for(feed: ReplayFeed) -> None:
    year = _year(feed)
    fresh = ReplayFeed()
    for timeframe in ("1m", "15m", "4h"):
        step = timeframe_ms(timeframe)
        start = int(year.time[0]) + 200 * DAY_MS + 7 * step + 12_345  # mid-day, mid-candle
        window = fresh.history("BTC/USDT", timeframe, start, start + 3 * DAY_MS)
        longer = feed.history("BTC/USDT", timeframe, int(year.time[0]), int(year.time[-1]))
        at = int(np.searchsorted(longer.time, window.time[0]))
        assert_candles_equal(
            window,
            Candles(*(getattr(longer, f)[at : at + len(window)] for f in FIELDS)),
        )
    # A paper bot's tick sees the very candles the backtest saw.
    tick_now = int(year.time[-1000]) + 30_000
    recent = fresh.candles("BTC/USDT", "1m", 120, tick_now)
    at = int(np.searchsorted(year.time, recent.time[0]))
    assert np.array_equal(recent.close, year.close[at : at + 120])


def test_synthetic_candles_are_consistent_ohlcv(feed: ReplayFeed) -> None:
    for symbol in (*SYMBOLS, "DOGE/USDT", "FOO/USDT", "ETH/BTC"):
        for timeframe in TIMEFRAME_MS:
            end = NOW - NOW % DAY_MS
            candles = feed.history(symbol, timeframe, end - 60 * DAY_MS, end)
            assert (candles.low > 0).all(), (symbol, timeframe)
            assert (candles.low <= np.minimum(candles.open, candles.close)).all()
            assert (candles.high >= np.maximum(candles.open, candles.close)).all()
            assert (candles.volume > 0).all()
            assert np.array_equal(candles.open[1:], candles.close[:-1])  # no seam, midnight too


def test_price_levels_and_daily_moves_are_plausible(feed: ReplayFeed) -> None:
    levels = {"BTC/USDT": (20_000, 300_000), "ETH/USDT": (1_000, 10_000), "DOGE/USDT": (0.02, 1)}
    for symbol, (low, high) in levels.items():
        year = feed.history(symbol, "1d", NOW - 365 * DAY_MS, NOW)
        assert low < year.close.min() < year.close.max() < high, symbol
    daily = np.diff(np.log(feed.history("BTC/USDT", "1d", NOW - 730 * DAY_MS, NOW).close))
    assert 0.5 * DAILY_VOLATILITY["BTC"] < daily.std() < 2 * DAILY_VOLATILITY["BTC"]
    hours = feed.history("ETH/USDT", "1h", NOW - 30 * DAY_MS, NOW)
    ranges = (hours.high - hours.low) / hours.close
    assert 0.002 < float(np.median(ranges)) < 0.03  # an hour moves like an hour of crypto


def test_volatility_clusters_and_returns_do_not(feed: ReplayFeed) -> None:
    returns = np.diff(np.log(_year(feed, "SOL/USDT").close))
    moves = np.abs(returns)
    for lag in (1, 10, 30):
        assert np.corrcoef(moves[:-lag], moves[lag:])[0, 1] > 0.05, lag
        assert abs(np.corrcoef(returns[:-lag], returns[lag:])[0, 1]) < 0.02, lag


def test_strategies_find_signals_in_synthetic_data(feed: ReplayFeed) -> None:
    for symbol in SYMBOLS:
        candles = feed.history(symbol, "1m", NOW - 7 * DAY_MS, NOW)
        for name in ("sma_crossover", "rsi"):
            strategy = STRATEGIES[name]
            signal = strategy.compute(candles, strategy.defaults())
            assert (signal > 0).sum() >= 10 and (signal < 0).sum() >= 10, (symbol, name)


def test_a_profile_makes_its_own_market() -> None:
    btc = MarketProfile.of("BTC/USDT")
    other = MarketProfile(seed=stable_seed("bench:1"), price=60_000.0, daily_volatility=0.03)
    a = synthetic_candles(btc, "1h", 0, 48)
    b = synthetic_candles(other, "1h", 0, 48)
    assert not np.array_equal(a.close, b.close)
    with pytest.raises(ValueError, match="aligned"):
        synthetic_candles(btc, "1h", 1, 3)
