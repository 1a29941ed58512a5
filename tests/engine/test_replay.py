"""The offline feed: deterministic, aligned, closed candles, correct aggregation, any symbol."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pytest

from engine.market_data.replay import (
    SAMPLES_DIR,
    ReplayFeed,
    load_sample,
    price_decimals,
    random_walk_candles,
    sample_path,
    stable_seed,
)
from engine.market_data.samples.make_samples import SPECS, sample_candles, to_csv
from engine.market_data.timeframes import TIMEFRAME_MS, timeframe_ms
from engine.strategies.base import Candles
from engine.strategies.registry import STRATEGIES

NOW = 1_760_000_123_456  # 2025-10-09, mid-minute
DAY_MS = 86_400_000
SAMPLE_SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")


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


# --- the shipped samples ---------------------------------------------------------------


def test_sample_files_load_at_realistic_prices() -> None:
    levels = {"BTC/USDT": 90_000, "ETH/USDT": 3_000, "SOL/USDT": 150}
    for symbol, level in levels.items():
        path = sample_path(symbol)
        assert path is not None, symbol
        candles = load_sample(path)
        assert len(candles) >= 3 * 1440
        assert np.all(np.diff(candles.time) == 60_000)
        assert 0.7 * level < candles.close.min() < candles.close.max() < 1.3 * level
        assert (candles.high >= np.maximum(candles.open, candles.close)).all()
        assert (candles.low <= np.minimum(candles.open, candles.close)).all()
        assert (candles.volume > 0).all()
        # seamless loop: every open is the previous close, the first one the last close
        assert np.array_equal(candles.open, np.roll(candles.close, 1))


def test_samples_are_small() -> None:
    total = sum(path.stat().st_size for path in SAMPLES_DIR.glob("*_1m.csv.gz"))
    assert 0 < total < 1_000_000


def test_samples_are_reproducible_from_the_script() -> None:
    for spec in SPECS:
        path = sample_path(spec.symbol)
        assert path is not None
        shipped = gzip.decompress(path.read_bytes()).decode()
        regenerated = to_csv(sample_candles(spec), price_decimals(spec.start_price))
        assert shipped == regenerated, spec.symbol


def test_samples_move_enough_for_strategies_to_trade(feed: ReplayFeed) -> None:
    for symbol in SAMPLE_SYMBOLS:
        candles = feed.minutes(symbol)
        for name in ("sma_crossover", "rsi"):
            strategy = STRATEGIES[name]
            signal = strategy.compute(candles, strategy.defaults())
            assert (signal > 0).sum() >= 10 and (signal < 0).sum() >= 10, (symbol, name)
        # volatility clusters: big moves follow big moves
        moves = np.abs(np.diff(np.log(candles.close)))
        assert np.corrcoef(moves[:-10], moves[10:])[0, 1] > 0.03, symbol


def test_a_bad_sample_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "BAD_USDT_1m.csv.gz"
    path.write_bytes(gzip.compress(b"ts,o,h,l,c,v\n1,2,3,1,2,5\n"))
    with pytest.raises(ValueError, match="header"):
        load_sample(path)
    path.write_bytes(gzip.compress(b"time,open,high,low,close,volume\n0,2,3,1,2,5\n"))
    with pytest.raises(ValueError, match="consecutive"):
        load_sample(path)


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


def test_the_replay_never_runs_out(feed: ReplayFeed) -> None:
    week = 7 * DAY_MS
    now = NOW - NOW % week
    assert_candles_equal_prices(
        feed.candles("BTC/USDT", "1m", 3_000, now),
        feed.candles("BTC/USDT", "1m", 3_000, now + week),
    )
    long = feed.candles("BTC/USDT", "1m", 30_000, NOW)  # longer than the sample
    assert len(long) == 30_000
    assert np.array_equal(long.open[1:], long.close[:-1])  # no seam anywhere


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


def test_aggregation_wraps_round_a_sample_of_any_length(tmp_path: Path) -> None:
    # 1,500 minutes: neither hours nor days divide it, so buckets straddle the loop's end.
    walk = random_walk_candles(42, 25.0, 1_500, start_ms=1_700_000_000_000)
    text = to_csv(walk, 4)
    path = tmp_path / "ODD_USDT_1m.csv.gz"
    with gzip.GzipFile(fileobj=(buffer := io.BytesIO()), mode="wb") as out:
        out.write(text.encode())
    path.write_bytes(buffer.getvalue())
    feed = ReplayFeed(samples_dir=tmp_path)
    for timeframe in ("15m", "1h", "4h", "1d"):
        step = timeframe_ms(timeframe)
        candles = feed.candles("ODD/USDT", timeframe, 5, NOW)
        minutes = feed.history("ODD/USDT", "1m", int(candles.time[0]), int(candles.time[-1]) + step)
        assert_candles_equal(candles, aggregate(minutes, step // 60_000))
    assert feed.minutes("ODD/USDT").close[0] == pytest.approx(walk.close[0], abs=1e-4)


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


def test_odd_symbols_never_reach_the_file_system(feed: ReplayFeed) -> None:
    assert sample_path("../samples/BTC_USDT") is None
    assert sample_path("btc/usdt") is None
    assert sample_path("BTC/USDT:USDT") is None
    assert len(feed.candles("BTC/USDT:USDT", "1m", 5, NOW)) == 5


def test_random_walk_loops_without_a_seam() -> None:
    walk = random_walk_candles(7, 0.35, 2_000)
    assert walk.open[0] == walk.close[-1]
    assert np.array_equal(walk.open[1:], walk.close[:-1])
    with pytest.raises(ValueError):
        random_walk_candles(7, 0.0, 100)
