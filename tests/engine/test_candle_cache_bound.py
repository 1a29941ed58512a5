"""The backtests' candle cache is bounded on disk: least recently used series go first.

Before, ``DATA_DIR/candles/candles.sqlite3`` grew with every pair and timeframe ever
backtested. Now CANDLE_CACHE_MB bounds it; the bound reaches the engine through
EngineConfig and the in-process backtest queue (the engine reads no settings).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from pydantic import SecretStr

from db.vault import generate_master_key
from engine.backtest.candles import CACHE_FILE, CandleStore, HistoricalCandles
from engine.backtest.queue import ThreadBacktestQueue
from engine.exchanges.clients import ClientPool
from robotrader.app import backtest_queue
from robotrader.engine_config import engine_config
from robotrader.settings import Settings

STEP = 60_000
ROWS = 3_000


def _series(store: CandleStore, symbol: str) -> tuple[str, str, str]:
    key = ("binance", symbol, "1m")
    rows = [(i * STEP, 100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i, 3.0) for i in range(ROWS)]
    store.write(key, rows, 0, (ROWS - 1) * STEP, STEP)
    return key


def _cached(store: CandleStore, key: tuple[str, str, str]) -> bool:
    return not store.gaps(key, 0, (ROWS - 1) * STEP, STEP)


def _used(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:
        return CandleStore._used_bytes(db)


def test_filling_past_the_bound_evicts_the_least_recently_used(tmp_path: Path) -> None:
    path = tmp_path / CACHE_FILE
    probe = CandleStore(tmp_path / "probe.sqlite3", max_bytes=1 << 40)
    empty = _used(probe.path)
    _series(probe, "ONE/USDT")
    per_series = _used(probe.path) - empty

    # Room for three series and a half.
    store = CandleStore(path, max_bytes=empty + int(per_series * 3.5), in_use_seconds=0)
    a = _series(store, "AAA/USDT")
    b = _series(store, "BBB/USDT")
    c = _series(store, "CCC/USDT")
    assert all(_cached(store, k) for k in (a, b, c))  # under the bound: nothing evicted
    store.read(a, 0, STEP * 10)  # A is read again: B is now the least recently used

    d = _series(store, "DDD/USDT")

    assert not _cached(store, b), "the least recently used series is evicted"
    assert store.series() == [c, a, d]  # least recently used first
    assert len(store.read(b, 0, ROWS * STEP).close) == 0
    for survivor in (c, a, d):
        assert _cached(store, survivor)
        assert len(store.read(survivor, 0, ROWS * STEP).close) == ROWS
    assert store.series() == [c, a, d]  # least recently used first
    # The space went back to the disk, not only to SQLite's free list.
    assert store.size_on_disk() <= store.max_bytes

    e = _series(store, "EEE/USDT")  # C is next, then A (read after B), never the newest
    assert not _cached(store, c) and _cached(store, e)
    assert store.series()[-1] == e and b not in store.series()


def test_a_series_larger_than_the_bound_stays_until_the_next_write(tmp_path: Path) -> None:
    store = CandleStore(tmp_path / CACHE_FILE, max_bytes=4096, in_use_seconds=0)
    a = _series(store, "AAA/USDT")
    assert _cached(store, a)  # the backtest that fetched it can still read it
    b = _series(store, "BBB/USDT")
    assert not _cached(store, a) and _cached(store, b)


def test_a_series_another_backtest_just_used_is_not_dropped(tmp_path: Path) -> None:
    now = [1_000_000.0]
    store = CandleStore(
        tmp_path / CACHE_FILE, max_bytes=4096, in_use_seconds=120, clock=lambda: now[0]
    )
    a = _series(store, "AAA/USDT")
    now[0] += 10
    b = _series(store, "BBB/USDT")
    # A was written 10 s ago: its backtest may not have read it back yet.
    assert _cached(store, a) and _cached(store, b)
    now[0] += 300
    c = _series(store, "CCC/USDT")
    assert not _cached(store, a) and not _cached(store, b) and _cached(store, c)


def test_the_bound_comes_from_the_setting_through_engine_config_and_the_queue(
    tmp_path: Path,
) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        master_key=SecretStr(generate_master_key()),
        candle_cache_mb=3,
    )
    assert engine_config(settings).backtest_cache_max_bytes == 3 * 1024 * 1024
    queue = backtest_queue(settings)
    assert isinstance(queue, ThreadBacktestQueue) and queue.cache_max_bytes == 3 * 1024 * 1024
    history = HistoricalCandles(ClientPool({}), tmp_path / "candles", max_bytes=3 << 20)
    assert history.store.max_bytes == 3 << 20
    assert Settings(_env_file=None).candle_cache_mb == 512  # type: ignore[call-arg]
