"""Historical candles for backtests: the exchange's public OHLCV, kept on disk, replay offline.

Candles come from ccxt's keyless ``fetch_ohlcv``, page by page (``since`` +
``limit`` until the period is covered), through ``ClientPool.public`` so the
project's URL rewriting (``EXCHANGE_API_URLS``) applies. Every fetched candle
is stored in a SQLite file under the cache directory, keyed by exchange,
symbol, timeframe and open time, together with the periods already asked for:
backtesting a cached period again makes no exchange call at all, and a longer
period fetches only what is missing. Only closed candles are stored.

When the exchange cannot be reached, or with ``offline=True``, the answer is
the replay feed's (shipped sample candles, or a seeded random walk) for the
whole period, and says so in ``source``, as paper bots do. An exchange that
answers with an error (an unknown symbol, say) is not unreachable: that error
is raised.

The file is bounded (``max_bytes``, from the CANDLE_CACHE_MB setting): every series
(exchange, symbol, timeframe) records when it was last read or written, and after a
write past the bound the least recently used series are dropped, whole, until the
file fits again, and the file is compacted so the disk gets the space back. The series
just written is never the one dropped: a single period larger than the bound stays
until the next write. Nor is a series used in the last ``in_use_seconds``: another
backtest may be between writing it and reading it back (the file then stays over the
bound a little while, rather than that backtest seeing a hole).
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine.exchanges.ccxt_errors import translate
from engine.exchanges.clients import ClientPool
from engine.exchanges.errors import ExchangeUnavailable
from engine.market_data.feed import last_closed_open_time
from engine.market_data.replay import ReplayFeed
from engine.market_data.timeframes import timeframe_ms
from engine.strategies.base import Candles

log = logging.getLogger(__name__)

Source = Literal["exchange", "replay"]
Row = tuple[int, float, float, float, float, float]
PAGE_LIMIT = 1000  # Binance's largest kline page; exchanges with smaller pages cap it
CACHE_FILE = "candles.sqlite3"
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
IN_USE_SECONDS = 120.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS candles (
    exchange TEXT NOT NULL,
    symbol TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    time INTEGER NOT NULL,
    open REAL NOT NULL,
    high REAL NOT NULL,
    low REAL NOT NULL,
    close REAL NOT NULL,
    volume REAL NOT NULL,
    PRIMARY KEY (exchange, symbol, timeframe, time)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS coverage (
    exchange TEXT NOT NULL,
    symbol TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    first_open INTEGER NOT NULL,
    last_open INTEGER NOT NULL,
    PRIMARY KEY (exchange, symbol, timeframe, first_open)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage (
    exchange TEXT NOT NULL,
    symbol TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    last_used INTEGER NOT NULL,
    PRIMARY KEY (exchange, symbol, timeframe)
) WITHOUT ROWID;
"""
_KEY = "exchange = ? AND symbol = ? AND timeframe = ?"


@dataclass(frozen=True)
class CandleHistory:
    candles: Candles
    source: Source
    exchange_calls: int  # fetch_ohlcv pages requested for this answer; 0 when all was cached


def _empty() -> Candles:
    return Candles.from_rows(np.empty((0, 6)))


def _gaps(
    covered: Iterable[tuple[int, int]], first: int, last: int, step: int
) -> list[tuple[int, int]]:
    """Parts of ``[first, last]`` (open times, inclusive) that no covered period contains."""
    gaps = []
    cursor = first
    for start, end in sorted(covered):
        if end < cursor:
            continue
        if start > last:
            break
        if start > cursor:
            gaps.append((cursor, start - step))
        cursor = max(cursor, end + step)
    if cursor <= last:
        gaps.append((cursor, last))
    return gaps


def _merged(periods: Iterable[tuple[int, int]], step: int) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(periods):
        if merged and start <= merged[-1][1] + step:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class CandleStore:
    """The SQLite file of fetched candles and of the periods they cover (blocking calls).

    At most ``max_bytes`` of it hold candles: past that, the least recently used series
    are evicted (see the module's docstring).
    """

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        in_use_seconds: float = IN_USE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.in_use_seconds = in_use_seconds
        self.clock = clock
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.executescript(_SCHEMA)

    def _touch(self, db: sqlite3.Connection, key: tuple[str, str, str], *, written: bool) -> None:
        # Microseconds, and always after the last use recorded: two uses in the same
        # instant (or a clock stepping back) still have an order.
        now = int(self.clock() * 1_000_000)
        if written:
            db.execute(
                "INSERT OR REPLACE INTO usage VALUES"
                " (?, ?, ?, MAX(?, (SELECT COALESCE(MAX(last_used), 0) + 1 FROM usage)))",
                (*key, now),
            )
        else:  # a read of what is not cached leaves no trace
            db.execute(
                "UPDATE usage SET last_used = MAX(?, (SELECT MAX(last_used) + 1 FROM usage))"
                " WHERE exchange = ? AND symbol = ? AND timeframe = ?",
                (now, *key),
            )

    @staticmethod
    def _used_bytes(db: sqlite3.Connection) -> int:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    def size_on_disk(self) -> int:
        """Bytes the cache takes on disk (the file and its write-ahead log)."""
        return sum(
            p.stat().st_size
            for p in (self.path, self.path.with_name(self.path.name + "-wal"))
            if p.exists()
        )

    def series(self) -> list[tuple[str, str, str]]:
        """The series held, least recently used first."""
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT c.exchange, c.symbol, c.timeframe FROM coverage c LEFT JOIN usage u"
                " ON u.exchange = c.exchange AND u.symbol = c.symbol"
                " AND u.timeframe = c.timeframe"
                " GROUP BY c.exchange, c.symbol, c.timeframe"
                " ORDER BY COALESCE(MAX(u.last_used), 0), c.exchange, c.symbol, c.timeframe"
            ).fetchall()
        return [(str(e), str(s), str(t)) for e, s, t in rows]

    def _evict(self, db: sqlite3.Connection, keep: tuple[str, str, str]) -> int:
        """Drop least recently used series (never ``keep``) until the file fits; how many."""
        evicted = 0
        in_use_since = int((self.clock() - self.in_use_seconds) * 1_000_000)
        while self._used_bytes(db) > self.max_bytes:
            victim = db.execute(
                "SELECT c.exchange, c.symbol, c.timeframe FROM coverage c LEFT JOIN usage u"
                " ON u.exchange = c.exchange AND u.symbol = c.symbol"
                " AND u.timeframe = c.timeframe"
                " WHERE NOT (c.exchange = ? AND c.symbol = ? AND c.timeframe = ?)"
                " AND COALESCE(u.last_used, 0) < ?"
                " ORDER BY COALESCE(u.last_used, 0) LIMIT 1",
                (*keep, in_use_since),
            ).fetchone()
            if victim is None:
                break
            for table in ("candles", "coverage", "usage"):
                db.execute(f"DELETE FROM {table} WHERE {_KEY}", victim)  # noqa: S608
            evicted += 1
        return evicted

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")  # workers read while one writes
        return db

    def gaps(
        self, key: tuple[str, str, str], first: int, last: int, step: int
    ) -> list[tuple[int, int]]:
        with closing(self._connect()) as db:
            covered = db.execute(
                "SELECT first_open, last_open FROM coverage"
                " WHERE exchange = ? AND symbol = ? AND timeframe = ?",
                key,
            ).fetchall()
        return _gaps(covered, first, last, step)

    def read(self, key: tuple[str, str, str], first: int, last: int) -> Candles:
        with closing(self._connect()) as db:
            with db:
                self._touch(db, key, written=False)  # read now: the last to be evicted
            rows = db.execute(
                "SELECT time, open, high, low, close, volume FROM candles"
                " WHERE exchange = ? AND symbol = ? AND timeframe = ? AND time BETWEEN ? AND ?"
                " ORDER BY time",
                (*key, first, last),
            ).fetchall()
        return Candles.from_rows(np.asarray(rows, dtype=np.float64)) if rows else _empty()

    def write(
        self, key: tuple[str, str, str], rows: Sequence[Row], first: int, last: int, step: int
    ) -> None:
        """Store ``rows`` and record ``[first, last]`` as fetched, in one transaction."""
        with closing(self._connect()) as db, db:
            db.executemany(
                "INSERT OR REPLACE INTO candles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*key, *row) for row in rows],
            )
            covered = db.execute(
                "SELECT first_open, last_open FROM coverage"
                " WHERE exchange = ? AND symbol = ? AND timeframe = ?",
                key,
            ).fetchall()
            db.execute(
                "DELETE FROM coverage WHERE exchange = ? AND symbol = ? AND timeframe = ?", key
            )
            db.executemany(
                "INSERT INTO coverage VALUES (?, ?, ?, ?, ?)",
                [(*key, start, end) for start, end in _merged([*covered, (first, last)], step)],
            )
            self._touch(db, key, written=True)
            evicted = self._evict(db, keep=key)
        if evicted:
            self._compact()

    def _compact(self) -> None:
        """Give the evicted pages back to the disk (a rewrite: rare, and bounded by the cap)."""
        try:
            with closing(self._connect()) as db:
                db.execute("VACUUM")
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError:
            # Busy with another process's backtest: SQLite reuses the freed pages anyway,
            # and the next eviction compacts.
            log.warning("candles.compact_skipped path=%s", self.path, exc_info=True)


def _valid_rows(page: Any, since: int, last: int) -> list[Row]:
    """ccxt rows inside ``[since, last]`` with finite positive prices, oldest first."""
    rows: list[Row] = []
    for raw in page or ():
        try:
            t = int(raw[0])
            o, h, low, c, v = (float(x) for x in raw[1:6])
        except (TypeError, ValueError, IndexError):
            raise ExchangeUnavailable("malformed candles") from None
        if not all(math.isfinite(x) for x in (o, h, low, c, v)):
            raise ExchangeUnavailable("malformed candles")
        if since <= t <= last and min(o, h, low, c) > 0:
            rows.append((t, o, h, low, c, v))
    rows.sort()
    return rows


class HistoricalCandles:
    """Candles of any past period for a backtest, fetched once and then read from disk."""

    def __init__(
        self,
        pool: ClientPool,
        cache_dir: Path,
        *,
        replay: ReplayFeed | None = None,
        page_limit: int = PAGE_LIMIT,
        clock: Callable[[], float] = time.time,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.pool = pool
        self.store = CandleStore(Path(cache_dir) / CACHE_FILE, max_bytes=max_bytes, clock=clock)
        self.replay = replay or ReplayFeed()
        self.page_limit = page_limit
        self.clock = clock

    async def history(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        start_ms: int,
        end_ms: int,
        *,
        offline: bool = False,
        progress: Callable[[float], None] | None = None,
    ) -> CandleHistory:
        """Every closed candle inside ``[start_ms, end_ms]``: opened at or after the start and
        closed by the end (``ReplayFeed.history``'s rule), oldest first.

        ``progress``, if given, is called with the fraction of the period fetched so far
        after each page asked of the exchange (nothing is reported for what is cached).
        """
        step = timeframe_ms(timeframe)
        if offline:
            return await self._replayed(symbol, timeframe, start_ms, end_ms, 0)
        exchange = exchange.strip().lower()
        key = (exchange, symbol, timeframe)
        first = -(-start_ms // step) * step
        last = min(
            (end_ms // step) * step - step,
            last_closed_open_time(int(self.clock() * 1000), timeframe),
        )
        if last < first:
            return CandleHistory(_empty(), "exchange", 0)
        gaps = await asyncio.to_thread(self.store.gaps, key, first, last, step)
        calls = 0
        span = max(last - first, 1)

        def fetched_up_to(open_time: int) -> None:
            if progress is not None:
                progress(min(max((open_time - first) / span, 0.0), 1.0))

        for gap_first, gap_last in gaps:
            try:
                calls += await self._fetch(key, gap_first, gap_last, step, fetched_up_to)
            except _Unreachable as unreachable:
                calls += unreachable.calls
                return await self._replayed(symbol, timeframe, start_ms, end_ms, calls)
        candles = await asyncio.to_thread(self.store.read, key, first, last)
        return CandleHistory(candles, "exchange", calls)

    async def _replayed(
        self, symbol: str, timeframe: str, start_ms: int, end_ms: int, calls: int
    ) -> CandleHistory:
        """The replay feed's candles for the whole period (loading a sample blocks: a thread)."""
        candles = await asyncio.to_thread(self.replay.history, symbol, timeframe, start_ms, end_ms)
        return CandleHistory(candles, "replay", calls)

    async def _fetch(
        self,
        key: tuple[str, str, str],
        first: int,
        last: int,
        step: int,
        fetched_up_to: Callable[[int], None],
    ) -> int:
        """Fetch ``[first, last]`` page by page into the store; the number of pages asked."""
        exchange, symbol, timeframe = key
        calls = 0
        since = first
        rows: list[Row] = []
        try:
            await self.pool.markets(exchange)
            client = self.pool.public(exchange)
            while since <= last:
                limit = min(self.page_limit, (last - since) // step + 1)
                calls += 1
                with translate():
                    page = await client.fetch_ohlcv(symbol, timeframe, since=since, limit=limit)
                fetched = _valid_rows(page, since, last)
                if not fetched:
                    break  # nothing more in this period (before the listing, or a halt)
                rows.extend(fetched)
                since = fetched[-1][0] + step
                fetched_up_to(fetched[-1][0])
        except ExchangeUnavailable:
            if rows:  # keep what did arrive: those candles are real and closed
                done = rows[-1][0]
                await asyncio.to_thread(self.store.write, key, rows, first, done, step)
            raise _Unreachable(calls) from None
        await asyncio.to_thread(self.store.write, key, rows, first, last, step)
        return calls


class _Unreachable(Exception):
    def __init__(self, calls: int) -> None:
        super().__init__("exchange unreachable")
        self.calls = calls
