"""How fast is one engine tick, and how much does the shared design save over a per-bot loop?

Run from the repository root (PostgreSQL on 127.0.0.1:5432 with trust auth; Redis only
for ``--cache redis``)::

    .venv/bin/python bench/tick.py                       # 10k bots / 200 markets, then 100k
    .venv/bin/python bench/tick.py --bots 10000 --markets 200 --users 2000 --ticks 20 \
        --database postgresql --also 100000
    .venv/bin/python bench/tick.py --database sqlite --also      # 10k on SQLite only
    .venv/bin/python bench/tick.py --market-data replay  # no emulator: the offline replay feed
    .venv/bin/python bench/tick.py --ccxt-limiter leakyBucket  # what-if, see below
    .venv/bin/python bench/tick.py --verbose --profile   # one line per tick, cProfile at the end
    .venv/bin/python bench/tick.py --workers 1 2 --ticks 10   # real Celery workers: see
                                                              # bench/tick_cluster.py

Each run (10k, then each ``--also`` size) happens in a fresh child process, so memory
figures start clean. A run:

1. Creates its own database (``rt_bench_<pid>_...`` on PostgreSQL, dropped at the end; a
   temp file on SQLite), migrates it, and bulk-inserts users and running paper bots with
   SQLAlchemy Core, rows built as ``register`` / ``create_bot`` / ``start_bot`` build them
   (validated parameters, audit rows, a Telegram identity per user): sma_crossover and rsi
   with a handful of parameter sets, a few dca and grid bots (grids around their market's
   price), most on one symbol, some on two or three, spread over K markets ``C001/USDT``...
   (a few far more popular than the rest), stop losses and daily loss limits on some.
2. Market data takes the real path: ccxt's binance client from ``ClientPool`` against the
   exchange emulator (``tests/emulators/exchange.py``), run in a separate process as a
   real exchange is another machine. The emulator's clock is virtual: the bench moves it
   one minute before each measured tick, so every measured tick is the first tick after
   a 1m candle closed (every market's cache entry expired: the dearest tick of a minute)
   and the strategies see a new candle, new signals and new orders each time.
   ``--market-data replay`` uses the offline replay feed instead (no exchange calls).
3. One warm-up tick (ccxt loads markets, each bot's data source is recorded, DCA base
   buys), not measured; then ANALYZE (PostgreSQL), as autovacuum would have by then.
   Then ``--ticks`` measured candle-close ticks, then ``--steady-ticks`` ticks inside the
   same candle (cache warm: what the other ticks of the minute cost).
4. Memory, two ways: the peak of memory traced by ``tracemalloc`` during one extra
   candle-close tick (the tick's own working set), and the process's peak RSS (``VmHWM``,
   reset after the warm-up) during the measured ticks minus its RSS before the first
   tick. Both divided by the bots.
5. The design RoboTrader replaces: the same bots, each fetching its own candles through
   ccxt and computing its own indicators, in a plain sequential ``for bot in bots: fetch;
   compute; decide`` loop, on a random sample (``--baseline-sample``) for
   ``--baseline-ticks`` new candles, extrapolated linearly to every bot. Once with ccxt's
   rate limiter as the product configures its client, once with it off (CPU and emulator
   only; a real exchange would ban the IP). The loop writes nothing, so it is compared
   both with the whole tick and with the tick minus its write phase.

What the figures mean:

- per phase p50 / p99 / mean: seconds in each phase of ``run_tick`` (``TickReport.phases``:
  load bots, fetch market data, compute strategies, decide, write orders/outbox) over the
  measured ticks; "bots/s" is bots evaluated per second of that phase (on the mean).
- TOTAL: ``run_tick``'s wall time measured from outside, p50 / p99 (with 20 ticks the p99
  is about the maximum); "of which CPU" is this process's CPU time during the tick (the
  rest is waiting on the database, the exchange, or other processes on the machine).
- exchange calls / tick: klines requests the emulator logged during the tick, checked
  against ``TickReport.exchange_calls`` and against the markets whose cache entry had
  expired before the tick: they must be equal, and never the number of bots.
- computations / tick: distinct (market, strategy, parameters) computed.
- write phase ms per order: the write phase divided by the orders it placed.
- the machine's load average is printed at the start and the end: other work on the
  machine slows every figure (this is a shared 2-core box).

``--ccxt-limiter leakyBucket`` is a what-if, not the product: ccxt's default limiter
paces the binance client at 20 ms per klines request (leaky bucket without burst), so 200
markets cost 4 s of fetch on every candle close even though they use 400 of Binance's
6,000 weight a minute. The product's market-data client (``ClientPool.public``) uses
ccxt's rolling window over the exchange's own window with the same budget; the flag
puts the leaky bucket back to show what that choice saves. The per-bot loop of the
design replaced always uses ccxt's default (leaky bucket): its calls per tick exceed the
per-minute budget anyway.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

# `python bench/tick.py` puts bench/, not the repository root, on the import path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from sqlalchemy import insert, text

from db import migrate
from db.models import AuditEntry, Bot, BotMode, BotStatus, ChatIdentity, Plan, Platform, User
from db.session import Database
from engine.exchanges.clients import ClientPool, build_client
from engine.market_data.cache import CandleCache, MemoryCandleCache, RedisCandleCache
from engine.market_data.feed import (
    STANDARD_WINDOW,
    MarketDataFeed,
    MarketKey,
    MarketSnapshot,
    closed_candles,
    last_closed_open_time,
)
from engine.market_data.replay import ReplayFeed
from engine.strategies.base import Candles
from engine.strategies.registry import get_strategy
from engine.tick import BotState, TickReport, decide_for_bot, load_bots, run_tick
from robotrader.use_cases.bots import normalize_symbol, parse_capital

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_DSN = os.environ.get(
    "ROBOTRADER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("ROBOTRADER_TEST_REDIS", "redis://127.0.0.1:6379")
EXCHANGE = "binance"
TIMEFRAME = "1m"
MINUTE_MS = 60_000
PHASES = ("load", "fetch", "compute", "decide", "write")
TARGET_SECONDS = 1.0  # 10,000 bots over 200 markets
TARGET_BYTES_PER_BOT = 50 * 1024
NEXT_GOAL_SECONDS = 3.0  # 100,000 bots
BINANCE_WEIGHT_PER_MINUTE = 6_000
KLINES_WEIGHT = 2  # Binance klines weight for 100 <= limit < 500

# Parameter sets users pick, most popular first (the defaults lead).
SMA_SETS: tuple[dict[str, Any], ...] = (
    {"fast": 9, "slow": 21},
    {"fast": 5, "slow": 20},
    {"fast": 12, "slow": 26},
    {"fast": 10, "slow": 30},
    {"fast": 20, "slow": 50},
)
RSI_SETS: tuple[dict[str, Any], ...] = (
    {"period": 14, "oversold": 30, "overbought": 70},
    {"period": 14, "oversold": 25, "overbought": 75},
    {"period": 7, "oversold": 30, "overbought": 70},
    {"period": 10, "oversold": 20, "overbought": 80},
)
DCA_SETS: tuple[dict[str, Any], ...] = (
    {},
    {"base_order_pct": 10, "safety_orders": 6, "safety_step_pct": 1.5, "take_profit_pct": 1},
    {"base_order_pct": 25, "safety_orders": 3, "safety_step_pct": 3, "take_profit_pct": 2},
)
GRID_LEVELS = (6, 10, 20)
SET_POPULARITY = (0.5, 0.2, 0.15, 0.1, 0.05)
STRATEGY_MIX = (("sma_crossover", 0.50), ("rsi", 0.35), ("dca", 0.08), ("grid", 0.07))
CAPITALS = ("100", "250", "500", "1000", "2000")


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------
def proc_status_kb(field_name: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise KeyError(field_name)


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs); False if not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else 0.0


def mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else 0.0


def human_bytes(n: float) -> str:
    return f"{n / 1024 / 1024:,.1f} MiB" if n >= 1024 * 1024 else f"{n / 1024:,.1f} KiB"


def say(*parts: Any) -> None:
    print(*parts, flush=True)


# --------------------------------------------------------------------------------------------
# the emulator, in a process of its own, with a clock the bench moves
# --------------------------------------------------------------------------------------------
def serve_emulator() -> None:
    """Child process: the exchange emulator on a free port; ``/_emulator/clock`` sets its time."""
    from aiohttp import web

    import tests.emulators.exchange as emulated

    virtual = {"ms": 0}
    real_now_ms = emulated.now_ms

    def clock() -> int:
        return virtual["ms"] or real_now_ms()

    # The candles read the module's clock; its rate limits count in real time, so each
    # move of the clock to a new minute starts their windows over (a minute passed).
    emulated.now_ms = clock

    class ClockedEmulator(emulated.ExchangeEmulator):
        async def _control(self, request: web.Request) -> web.Response:
            if request.match_info["action"] == "clock" and request.method == "POST":
                data = await request.json()
                with self._lock:
                    new_minute = int(data["now_ms"]) // 60_000 != virtual["ms"] // 60_000
                    virtual["ms"] = int(data["now_ms"])
                if new_minute:
                    self.reset_rate_limits()
                return web.json_response({"ok": True})
            return await super()._control(request)

    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    with ClockedEmulator(0) as emulator:
        print(emulator.base_url, flush=True)
        done.wait()


class EmulatorProcess:
    """Starts ``serve_emulator`` in a subprocess; stops it by its own pid."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-emulator"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"exchange emulator did not start: {line!r}")
        self.base_url = line

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class EmulatorProbe:
    """The emulator's control endpoints: clock, synthetic markets, call log."""

    def __init__(self, base_url: str | None) -> None:
        self.base_url = base_url
        self._session: Any = None

    async def _http(self) -> Any:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _request(self, method: str, action: str, payload: Any = None) -> Any:
        if self.base_url is None:
            return None
        session = await self._http()
        async with session.request(
            method, f"{self.base_url}/_emulator/{action}", json=payload
        ) as response:
            response.raise_for_status()
            return await response.json()

    async def add_markets(self, n: int) -> list[str]:
        answer = await self._request("POST", "markets/synthetic", {"exchange": EXCHANGE, "n": n})
        return list(answer["symbols"])

    async def set_clock(self, now_ms: int) -> None:
        await self._request("POST", "clock", {"now_ms": now_ms})

    async def reset_calls(self) -> None:
        await self._request("DELETE", "calls")

    async def klines_calls(self) -> tuple[int, int]:
        """(klines requests, requests refused with 418/429) since the last reset."""
        calls = await self._request("GET", "calls") or []
        klines = [c for c in calls if c["exchange"] == EXCHANGE and c["path"].endswith("/klines")]
        refused = sum(1 for c in klines if c["status"] in (418, 429))
        return len(klines), refused

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


# --------------------------------------------------------------------------------------------
# the population: users and running paper bots, rows as the use cases build them
# --------------------------------------------------------------------------------------------
@dataclass
class Population:
    users: list[dict[str, Any]]
    identities: list[dict[str, Any]]
    bots: list[dict[str, Any]]
    audit: list[dict[str, Any]]
    markets: list[str]

    def strategy_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for bot in self.bots:
            counts[bot["strategy"]] = counts.get(bot["strategy"], 0) + 1
        return counts

    def bot_symbols(self) -> int:
        return sum(len(bot["symbols"]) for bot in self.bots)


def _pick(rng: random.Random, options: Sequence[Any]) -> Any:
    return rng.choices(options, weights=SET_POPULARITY[: len(options)])[0]


def _pct(value: str | None) -> Decimal | None:
    """As ``create_bot`` stores a percentage: a Decimal in (0, 100], or None (rule off)."""
    if value is None:
        return None
    number = Decimal(value)
    assert Decimal(0) < number <= Decimal(100)
    return number


def build_population(
    n_bots: int, n_users: int, markets: Sequence[str], prices: dict[str, float], seed: int
) -> Population:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    per_user = [0] * n_users
    # Bots are spread over users round-robin: `n_bots / n_users` each.
    owner = [i % n_users for i in range(n_bots)]
    for u in owner:
        per_user[u] += 1
    users, identities, audit = [], [], []
    for u in range(n_users):
        uid = u + 1
        # Pro allows 5 bots, Premium 50: a user over 5 bots (or 30 % of them anyway) is Premium.
        plan = Plan.PREMIUM if per_user[u] > 5 or rng.random() < 0.3 else Plan.PRO
        if per_user[u] > 50:
            raise SystemExit(f"{per_user[u]} bots for one user exceed the Premium plan: add users")
        users.append(
            {"id": uid, "plan": plan.value, "language": None, "created_at": now,
             "muted_kinds": [], "daily_summary_hour": 20, "stripe_customer_id": None}
        )  # fmt: skip
        language = "pt-br" if rng.random() < 0.6 else "en"
        identities.append(
            {"id": uid, "user_id": uid, "platform": Platform.TELEGRAM.value,
             "platform_user_id": str(1_000_000 + uid), "chat_id": str(1_000_000 + uid),
             "display_name": None, "client_language": language, "reachable": True,
             "created_at": now, "extra": {}}
        )  # fmt: skip
        audit.append(
            {"user_id": uid, "platform": Platform.TELEGRAM.value,
             "platform_user_id": str(1_000_000 + uid), "chat_id": str(1_000_000 + uid),
             "action": "register", "detail": {}, "created_at": now}
        )  # fmt: skip

    # A few markets are far more popular than the rest (BTC-like), every market has bots.
    popularity = [1.0 / (rank + 1) ** 0.8 for rank in range(len(markets))]
    names = [s for s, _ in STRATEGY_MIX]
    weights = [w for _, w in STRATEGY_MIX]
    bots = []
    count_of_user = [0] * n_users
    for i in range(n_bots):
        u = owner[i]
        count_of_user[u] += 1
        first = markets[i] if i < len(markets) else rng.choices(markets, weights=popularity)[0]
        extra = rng.choices((0, 1, 2), weights=(0.85, 0.10, 0.05))[0]
        symbols = [first]
        while len(symbols) < 1 + extra:
            other = rng.choices(markets, weights=popularity)[0]
            if other not in symbols:
                symbols.append(other)
        symbols = list(dict.fromkeys(normalize_symbol(s) for s in symbols))
        strategy_name = rng.choices(names, weights=weights)[0]
        strategy = get_strategy(strategy_name)
        if strategy_name == "sma_crossover":
            raw = _pick(rng, SMA_SETS)
        elif strategy_name == "rsi":
            raw = _pick(rng, RSI_SETS)
        elif strategy_name == "dca":
            raw = _pick(rng, DCA_SETS)
        else:  # a grid around the price of the bot's first market, as a user would set it
            price = prices[symbols[0]]
            raw = {
                "lower": float(f"{price * 0.97:.6g}"),
                "upper": float(f"{price * 1.03:.6g}"),
                "levels": _pick(rng, GRID_LEVELS),
            }
        parameters = strategy.validate(raw)  # exactly what create_bot stores
        stop_loss = rng.choice(("3", "5")) if rng.random() < 0.30 else None
        take_profit = "4" if rng.random() < 0.15 else None
        daily_limit = "10" if rng.random() < 0.10 else None
        max_position = Decimal("500") if rng.random() < 0.05 else None
        bot_id = i + 1
        bots.append(
            {"id": bot_id, "user_id": u + 1, "name": f"{strategy.info.name}-{count_of_user[u]}",
             "exchange": EXCHANGE, "credential_id": None, "symbols": symbols,
             "timeframe": TIMEFRAME, "strategy": strategy.info.name, "parameters": parameters,
             "capital": parse_capital(rng.choice(CAPITALS)), "quote": "USDT",
             "mode": BotMode.PAPER.value, "status": BotStatus.RUNNING.value,
             "pause_reason": None, "stop_loss_pct": _pct(stop_loss),
             "take_profit_pct": _pct(take_profit), "max_position": max_position,
             "daily_loss_limit_pct": _pct(daily_limit), "signal_secret": None,
             "market_data_source": None, "created_at": now, "started_at": now}
        )  # fmt: skip
        audit.append(
            {"user_id": u + 1, "platform": "api", "platform_user_id": None, "chat_id": None,
             "action": "bot.create", "detail": {"bot_id": bot_id}, "created_at": now}
        )  # fmt: skip
    return Population(users, identities, bots, audit, list(markets))


async def insert_population(database: Database, population: Population) -> None:
    """Bulk inserts with SQLAlchemy Core, in chunks (keeps the bench's own memory flat)."""

    def chunks(rows: list[dict[str, Any]], size: int = 5_000) -> Iterable[list[dict[str, Any]]]:
        for start in range(0, len(rows), size):
            yield rows[start : start + size]

    async with database.engine.begin() as conn:
        for table, rows in (
            (User.__table__, population.users),
            (ChatIdentity.__table__, population.identities),
            (Bot.__table__, population.bots),
            (AuditEntry.__table__, population.audit),
        ):
            for chunk in chunks(rows):
                await conn.execute(insert(table), chunk)
        if not database.is_sqlite:
            # Explicit ids were inserted: move the sequences past them, as the use cases would.
            for table in ("users", "chat_identities", "bots"):
                await conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
    if not database.is_sqlite:
        async with database.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE"))


# --------------------------------------------------------------------------------------------
# databases
# --------------------------------------------------------------------------------------------
async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@dataclass
class BenchDatabase:
    kind: str
    url: str
    name: str

    @classmethod
    def create(cls, kind: str) -> BenchDatabase:
        if kind == "sqlite":
            path = Path(tempfile.mkdtemp(prefix="rt_bench_")) / "bench.db"
            url = f"sqlite+aiosqlite:///{path}"
            migrate.upgrade(url)
            return cls(kind, url, str(path))
        name = f"rt_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
        base, _, _ = POSTGRES_ADMIN_DSN.rpartition("/")
        url = f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)
        try:
            migrate.upgrade(url)
        except BaseException:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            raise
        return cls(kind, url, name)

    def drop(self) -> None:
        if self.kind == "sqlite":
            path = Path(self.name)
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                path.parent.rmdir()
        else:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))

    async def server_version(self, database: Database) -> str:
        async with database.engine.connect() as conn:
            if self.kind == "sqlite":
                version = (await conn.execute(text("select sqlite_version()"))).scalar()
                return f"SQLite {version} (aiosqlite, WAL)"
            version = (await conn.execute(text("show server_version"))).scalar()
            return f"PostgreSQL {str(version).split()[0]} (asyncpg)"


# --------------------------------------------------------------------------------------------
# ticks
# --------------------------------------------------------------------------------------------
@dataclass
class TickSample:
    report: TickReport
    wall: float
    cpu: float  # CPU seconds of this process during the tick (the rest is waiting)
    klines: int  # requests the emulator received
    refused: int
    expired: int  # markets whose cache entry had expired before the tick


@dataclass
class RunResult:
    samples: list[TickSample] = field(default_factory=list)
    steady: list[TickSample] = field(default_factory=list)


async def expired_markets(cache: CandleCache, keys: Iterable[MarketKey], now_ms: int) -> int:
    missing = 0
    for key in keys:
        if await cache.get(key.cache_key(last_closed_open_time(now_ms, key.timeframe))) is None:
            missing += 1
    return missing


async def timed_tick(
    database: Database,
    feed: MarketDataFeed,
    probe: EmulatorProbe,
    keys: Sequence[MarketKey],
    now_ms: int,
) -> TickSample:
    await probe.set_clock(now_ms)
    expired = await expired_markets(feed.cache, keys, now_ms)
    if expired:
        # A new candle: a minute passed for the exchange (its windows started over), so
        # it passed for the client's rolling window too, as between two real candles.
        for client in feed.pool._public.values():
            client.throttler.timestamps.clear()
    await probe.reset_calls()
    cpu_started = time.process_time()
    started = time.perf_counter()
    report = await run_tick(database, feed, runner="bench", now_ms=now_ms)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    klines, refused = await probe.klines_calls()
    return TickSample(report, wall, cpu, klines, refused, expired)


def candle_close(t0: int, index: int) -> int:
    """A moment 2 s after the ``index``-th 1m candle since ``t0`` closed."""
    return t0 + index * MINUTE_MS + 2_000


# --------------------------------------------------------------------------------------------
# the design RoboTrader replaces: every bot fetches and computes for itself
# --------------------------------------------------------------------------------------------
@dataclass
class BaselineResult:
    label: str
    seconds_per_tick: list[float]
    calls_per_tick: int
    refused: int
    failures: int
    decisions: int


async def per_bot_loop(
    label: str,
    bots: Sequence[BotState],
    fetch: Any,
    probe: EmulatorProbe,
    moments: Sequence[int],
) -> BaselineResult:
    """``for bot in bots: fetch; compute; decide`` -- sequential, no sharing, no cache."""
    seconds, failures, decisions, refused, calls = [], 0, 0, 0, 0
    for now_ms in moments:
        await probe.set_clock(now_ms)
        await probe.reset_calls()
        calls = 0
        started = time.perf_counter()
        for bot in bots:
            strategy = get_strategy(bot.strategy)
            window = max(strategy.warmup(bot.parameters) + 2, STANDARD_WINDOW)
            for symbol in bot.symbols:
                calls += 1
                try:
                    candles = await fetch(symbol, bot.timeframe, window, now_ms)
                except Exception:  # a naive loop skips the bot and carries on
                    failures += 1
                    continue
                computed = strategy.compute(candles, bot.parameters)
                signal_now = int(computed[-1]) if len(computed) else 0
                snapshot = MarketSnapshot(candles, "exchange")
                if decide_for_bot(bot, symbol, snapshot, signal_now) is not None:
                    decisions += 1
        seconds.append(time.perf_counter() - started)
        refused += (await probe.klines_calls())[1]
    return BaselineResult(label, seconds, calls, refused, failures, decisions)


def ccxt_fetcher(client: Any) -> Any:
    async def fetch(symbol: str, timeframe: str, window: int, now_ms: int) -> Candles:
        rows = await client.fetch_ohlcv(symbol, timeframe, limit=window + 1)
        return closed_candles(rows, now_ms, timeframe)

    return fetch


def replay_fetcher(replay: ReplayFeed) -> Any:
    async def fetch(symbol: str, timeframe: str, window: int, now_ms: int) -> Candles:
        return replay.candles(symbol, timeframe, window, now_ms)

    return fetch


# --------------------------------------------------------------------------------------------
# one run (in its own process)
# --------------------------------------------------------------------------------------------
def phase_table(samples: Sequence[TickSample], bots: int) -> list[str]:
    lines = [
        f"  {'phase':<26}{'p50 s':>9}{'p99 s':>9}{'mean s':>9}{'bots/s':>13}",
    ]
    labels = {
        "load": "load bots",
        "fetch": "fetch market data",
        "compute": "compute strategies",
        "decide": "decide",
        "write": "write orders/outbox",
    }
    for phase in PHASES:
        values = [s.report.phases.get(phase, 0.0) for s in samples]
        rate = bots / mean(values) if mean(values) > 0 else float("inf")
        lines.append(
            f"  {labels[phase]:<26}{pct(values, 50):>9.3f}{pct(values, 99):>9.3f}"
            f"{mean(values):>9.3f}{rate:>13,.0f}"
        )
    walls = [s.wall for s in samples]
    lines.append(
        f"  {'TOTAL (tick wall time)':<26}{pct(walls, 50):>9.3f}{pct(walls, 99):>9.3f}"
        f"{mean(walls):>9.3f}{bots / mean(walls):>13,.0f}"
    )
    cpus = [s.cpu for s in samples]
    lines.append(
        f"  {'  of which CPU (bench)':<26}{pct(cpus, 50):>9.3f}{pct(cpus, 99):>9.3f}"
        f"{mean(cpus):>9.3f}{'':>13}"
    )
    return lines


def use_leaky_bucket(client: Any) -> None:
    """ccxt's default limiter on ``client`` (each request spaced by its cost)."""
    client.rateLimiterAlgorithm = "leakyBucket"
    client.rollingWindowSize = 0.0
    client.tokenBucket = None
    client.init_rest_rate_limiter()


async def run(args: argparse.Namespace, bench_db: BenchDatabase) -> int:
    rss_start_kb = proc_status_kb("VmRSS")
    market_data = args.market_data
    probe = EmulatorProbe(args.emulator_url if market_data == "exchange" else None)
    rng_seed = args.seed
    t0 = (int(time.time() * 1000) // MINUTE_MS) * MINUTE_MS

    if market_data == "exchange":
        markets = await probe.add_markets(args.markets)
        from tests.emulators.exchange import default_price

        prices = {s: float(default_price(s)) for s in markets}
    else:
        width = max(3, len(str(args.markets)))
        markets = [f"C{i:0{width}d}/USDT" for i in range(1, args.markets + 1)]
        replay = ReplayFeed()
        prices = {s: float(replay.candles(s, TIMEFRAME, 1, t0).close[-1]) for s in markets}

    keys = [MarketKey(EXCHANGE, s, TIMEFRAME) for s in markets]
    setup_started = time.perf_counter()
    population = build_population(args.bots, args.users, markets, prices, rng_seed)
    database = Database(bench_db.url)
    pool = ClientPool({EXCHANGE: args.emulator_url} if args.emulator_url else {})
    cache: CandleCache
    redis_prefix = f"rt:bench:{os.getpid()}:candles:"
    if args.cache == "redis":
        cache = RedisCandleCache(REDIS_URL, prefix=redis_prefix)
    else:
        cache = MemoryCandleCache()
    feed = MarketDataFeed(pool, cache, mode=market_data)
    if market_data == "exchange" and args.ccxt_limiter == "leakyBucket":
        use_leaky_bucket(pool.public(EXCHANGE))  # what-if: ccxt's default limiter
    baseline_pool = ClientPool({EXCHANGE: args.emulator_url} if args.emulator_url else {})
    use_leaky_bucket(baseline_pool.public(EXCHANGE))
    unthrottled: Any = None
    try:
        await insert_population(database, population)
        setup_seconds = time.perf_counter() - setup_started
        version = await bench_db.server_version(database)
        counts = population.strategy_counts()
        say("=" * 96)
        say(
            f"RoboTrader tick benchmark: {args.bots:,} bots, {args.users:,} users, "
            f"{len(markets):,} markets ({EXCHANGE} {TIMEFRAME}), paper mode"
        )
        say(f"  database     {version}, own database created for the run and dropped after")
        source = (
            "exchange emulator through ccxt (ClientPool -> tests/emulators/exchange.py, "
            "separate process)"
            if market_data == "exchange"
            else "replay feed (offline, no exchange calls)"
        )
        say(f"  market data  {source}; candle cache: {args.cache}")
        say(
            "  bots         "
            + ", ".join(f"{name} {n:,}" for name, n in sorted(counts.items(), key=lambda x: -x[1]))
            + f"; {population.bot_symbols():,} bot-symbols"
        )
        say(
            f"  machine      {os.cpu_count()} cores, Python {sys.version.split()[0]}, load "
            f"average {os.getloadavg()[0]:.1f} at start; setup (rows built + inserted) "
            f"{setup_seconds:.1f} s"
        )
        if market_data == "exchange":
            limiter = (
                "ccxt rolling window over Binance's 60 s, as ClientPool builds it (product)"
                if args.ccxt_limiter == "rollingWindow"
                else "WHAT-IF: ccxt's default leaky bucket, 20 ms per klines (not the product's)"
            )
            say(f"  rate limit   {limiter}")

        # Warm-up: ccxt loads markets, each bot's data source is recorded, DCA base buys.
        rss_before_kb = proc_status_kb("VmRSS")
        warm = await timed_tick(database, feed, probe, keys, candle_close(t0, 0))
        say(
            f"  warm-up tick {warm.wall:.2f} s (not measured: first data-source record per bot, "
            f"{warm.report.orders_filled:,} fills, {warm.klines} klines calls)"
        )
        if not database.is_sqlite:
            # Stats as autovacuum would have them: tables the warm-up filled are not empty.
            async with database.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("ANALYZE"))
        hwm_reset = reset_peak_rss()

        profiler = cProfile.Profile() if args.profile else None
        result = RunResult()
        for index in range(1, args.ticks + 1):
            if profiler:
                profiler.enable()
            sample = await timed_tick(database, feed, probe, keys, candle_close(t0, index))
            if profiler:
                profiler.disable()
            result.samples.append(sample)
            if args.verbose:
                r = sample.report
                say(
                    f"    tick {index:>3}: wall {sample.wall:.3f}s cpu {sample.cpu:.3f}s "
                    + " ".join(f"{p}={r.phases.get(p, 0):.3f}" for p in PHASES)
                    + f" calls={sample.klines} decisions={r.decisions} filled={r.orders_filled}"
                )
        last = candle_close(t0, args.ticks)
        for step in range(1, args.steady_ticks + 1):
            sample = await timed_tick(database, feed, probe, keys, last + step * 5_000)
            result.steady.append(sample)
            if args.verbose:
                r = sample.report
                say(
                    f"    steady {step:>2}: wall {sample.wall:.3f}s cpu {sample.cpu:.3f}s "
                    + " ".join(f"{p}={r.phases.get(p, 0):.3f}" for p in PHASES)
                    + f" calls={sample.klines} decisions={r.decisions} filled={r.orders_filled}"
                )
        hwm_kb = proc_status_kb("VmHWM")

        # The tick's own working set, traced (slow under tracemalloc, so not timed).
        tracemalloc.start()
        tracemalloc.reset_peak()
        traced_before = tracemalloc.get_traced_memory()[0]
        mem_tick = await timed_tick(database, feed, probe, keys, candle_close(t0, args.ticks + 1))
        traced_peak = tracemalloc.get_traced_memory()[1] - traced_before
        tracemalloc.stop()

        # The per-bot loop, on a sample of the same bots, on new candles.
        async with database.sessions() as session:
            loaded = await load_bots(session)
        sample_bots = random.Random(rng_seed).sample(loaded, min(args.baseline_sample, len(loaded)))
        rounds = max(1, args.baseline_ticks)

        def moments(variant: int) -> list[int]:
            first = args.ticks + 2 + variant * rounds  # each variant on candles of its own
            return [candle_close(t0, first + i) for i in range(rounds)]

        baselines: list[BaselineResult] = []
        if market_data == "exchange":
            baseline_client = baseline_pool.public(EXCHANGE)
            await baseline_pool.markets(EXCHANGE)  # once, like the engine's pool (not timed)
            baselines.append(
                await per_bot_loop(
                    "per-bot loop, ccxt's default rate limiter on",
                    sample_bots, ccxt_fetcher(baseline_client), probe, moments(0),
                )
            )  # fmt: skip
            # The emulator counts Binance request weight per real minute: start the unpaced
            # loop in a fresh one, so the first loop's weight is not held against it.
            await asyncio.sleep(60 - time.time() % 60 + 0.5)
            unthrottled = build_client(EXCHANGE, {EXCHANGE: args.emulator_url})
            unthrottled.enableRateLimit = False
            unthrottled.set_markets(baseline_client.markets, baseline_client.currencies)
            baselines.append(
                await per_bot_loop(
                    "per-bot loop, rate limiter off (CPU + emulator only)",
                    sample_bots, ccxt_fetcher(unthrottled), probe, moments(1),
                )
            )  # fmt: skip
        else:
            baselines.append(
                await per_bot_loop(
                    "per-bot loop on the replay feed", sample_bots,
                    replay_fetcher(ReplayFeed()), probe, moments(0),
                )
            )  # fmt: skip

        report_run(
            args, population, result, mem_tick, traced_peak, rss_before_kb, hwm_kb, hwm_reset,
            rss_start_kb, baselines, len(sample_bots), len(loaded),
        )  # fmt: skip
        if profiler:
            say("\n  cProfile of the measured ticks (top 30 by cumulative time):")
            stats = pstats.Stats(profiler, stream=sys.stdout)
            stats.sort_stats("cumulative").print_stats(30)
        return 0
    finally:
        await probe.close()
        await pool.close()
        await baseline_pool.close()
        if unthrottled is not None:
            await unthrottled.close()
        if isinstance(cache, RedisCandleCache):
            redis = cache._redis
            keys_left = [k async for k in redis.scan_iter(match=redis_prefix + "*")]
            if keys_left:
                await redis.delete(*keys_left)
            await cache.close()
        await database.dispose()


def report_run(
    args: argparse.Namespace,
    population: Population,
    result: RunResult,
    mem_tick: TickSample,
    traced_peak: int,
    rss_before_kb: int,
    hwm_kb: int,
    hwm_reset: bool,
    rss_start_kb: int,
    baselines: Sequence[BaselineResult],
    sample_size: int,
    running_bots: int,
) -> None:
    samples = result.samples
    bots = samples[0].report.bots if samples else running_bots
    say("")
    say(
        f"  {len(samples)} measured ticks, each the first after a 1m candle closed "
        f"(every market's cache entry expired; warm-up excluded)"
    )
    for line in phase_table(samples, bots):
        say(line)
    calls = [s.klines for s in samples]
    expired = [s.expired for s in samples]
    reported = [s.report.exchange_calls for s in samples]
    consistent = calls == expired == reported
    say(
        f"  exchange calls / tick   {mean(calls):,.0f} klines requests (emulator's call log); "
        f"markets expired {mean(expired):,.0f}; TickReport {mean(reported):,.0f}; "
        f"bots {bots:,} -> {'OK, one per expired market' if consistent else 'MISMATCH'}"
    )
    if any(s.refused for s in samples):
        say(f"  !! the emulator refused {sum(s.refused for s in samples)} requests (rate limit)")
    fills = sum(s.report.orders_filled + s.report.orders_rejected for s in samples)
    write_total = sum(s.report.phases.get("write", 0.0) for s in samples)
    if fills:
        say(
            f"  write phase             {write_total / fills * 1000:,.1f} ms per order placed "
            f"(paper fill + bookkeeping + outbox, booked together, one flush per tick)"
        )
    say(
        f"  per tick                markets {mean([s.report.markets for s in samples]):,.0f}, "
        f"computations {mean([s.report.computations for s in samples]):,.0f}, "
        f"decisions {mean([s.report.decisions for s in samples]):,.1f}, "
        f"orders filled {mean([s.report.orders_filled for s in samples]):,.1f}, "
        f"rejected {mean([s.report.orders_rejected for s in samples]):,.1f}, "
        f"paused {sum(s.report.paused for s in samples)} in all"
    )
    if result.steady:
        steady_walls = [s.wall for s in result.steady]
        fetches = [s.report.phases.get("fetch", 0.0) for s in result.steady]
        say(
            f"  steady ticks ({len(result.steady)}, same candle, cache warm): wall p50 "
            f"{pct(steady_walls, 50):.3f} s, p99 {pct(steady_walls, 99):.3f} s, fetch p50 "
            f"{pct(fetches, 50):.3f} s, exchange calls {sum(s.klines for s in result.steady)} "
            f"(expired {sum(s.expired for s in result.steady)}), decisions "
            f"{mean([s.report.decisions for s in result.steady]):,.1f}/tick"
        )
    per_bot_traced = traced_peak / max(mem_tick.report.bots, 1)
    growth = max(0, hwm_kb - rss_before_kb) * 1024
    per_bot_rss = growth / max(bots, 1)
    say("  memory per active bot")
    say(
        f"    tracemalloc peak during one candle-close tick: {human_bytes(traced_peak)} "
        f"-> {per_bot_traced / 1024:,.1f} KiB/bot (Python + numpy allocations of the tick)"
    )
    hwm_note = "" if hwm_reset else " (VmHWM could not be reset: includes the warm-up)"
    say(
        f"    peak RSS during the measured ticks - RSS before the first tick: "
        f"{human_bytes(growth)} -> {per_bot_rss / 1024:,.1f} KiB/bot{hwm_note}"
    )
    say(
        f"    (process RSS: {rss_start_kb / 1024:,.0f} MiB at start, {rss_before_kb / 1024:,.0f} "
        f"MiB before the first tick, peak {hwm_kb / 1024:,.0f} MiB)"
    )

    say(
        f"  the design replaced: each bot fetches its own candles and computes its own "
        f"indicators ({sample_size:,}-bot sample x {len(baselines[0].seconds_per_tick)} ticks, "
        f"extrapolated to {running_bots:,} bots)"
    )
    engine_wall = pct([s.wall for s in samples], 50)
    engine_no_write = pct(
        [s.report.seconds - s.report.phases.get("write", 0.0) for s in samples], 50
    )
    scale = running_bots / max(sample_size, 1)
    for baseline in baselines:
        per_tick = mean(baseline.seconds_per_tick) * scale
        calls = baseline.calls_per_tick * scale
        weight = calls * KLINES_WEIGHT
        say(f"    {baseline.label}")
        say(
            f"      sample {mean(baseline.seconds_per_tick):.2f} s/tick -> {per_tick:,.1f} s per "
            f"tick for all bots (extrapolated); {calls:,.0f} exchange calls/tick = "
            f"{weight:,.0f} Binance weight (limit {BINANCE_WEIGHT_PER_MINUTE:,}/min per IP)"
        )
        say(
            f"      vs the engine: {per_tick / engine_wall:,.1f}x the engine's whole tick "
            f"(p50 {engine_wall:.3f} s), {per_tick / max(engine_no_write, 1e-9):,.1f}x its "
            f"load+fetch+compute+decide (p50 {engine_no_write:.3f} s; the loop writes nothing)"
        )
        if baseline.failures or baseline.refused:
            say(
                f"      {baseline.failures} fetches failed, {baseline.refused} refused by the "
                "exchange's rate limit"
            )

    say(f"  machine load average at the end: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    if args.bots == 10_000 and args.markets == 200:
        ok_time = pct([s.wall for s in samples], 99) < TARGET_SECONDS
        ok_mem = max(per_bot_traced, per_bot_rss) < TARGET_BYTES_PER_BOT
        say(
            f"  target 10k/200: tick < {TARGET_SECONDS:.0f} s: "
            f"{'MET' if ok_time else 'MISSED'} (p50 {engine_wall:.3f} s, p99 "
            f"{pct([s.wall for s in samples], 99):.3f} s); < 50 KiB/bot: "
            f"{'MET' if ok_mem else 'MISSED'} (worse of the two memory figures)"
        )
    elif args.bots >= 100_000:
        ok_time = pct([s.wall for s in samples], 99) < NEXT_GOAL_SECONDS
        say(
            f"  next goal 100k in one {NEXT_GOAL_SECONDS:.0f} s tick: "
            f"{'MET' if ok_time else 'not yet'} (p50 {engine_wall:.3f} s, p99 "
            f"{pct([s.wall for s in samples], 99):.3f} s)"
        )


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time the engine tick (per phase) and compare it with a per-bot loop."
    )
    parser.add_argument("--bots", type=int, default=10_000)
    parser.add_argument("--markets", type=int, default=200)
    parser.add_argument("--users", type=int, default=None, help="default: bots / 5")
    parser.add_argument("--ticks", type=int, default=20, help="measured candle-close ticks")
    parser.add_argument("--steady-ticks", type=int, default=5, help="ticks inside one candle")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument(
        "--also", type=int, nargs="*", default=[100_000],
        help="bot counts to run after the first (users scaled alike); none: --also",
    )  # fmt: skip
    parser.add_argument("--market-data", choices=("exchange", "replay"), default="exchange")
    parser.add_argument("--cache", choices=("memory", "redis"), default="memory")
    parser.add_argument(
        "--ccxt-limiter", choices=("leakyBucket", "rollingWindow"), default="rollingWindow",
        help="rollingWindow: the product's client as is; leakyBucket: what-if (see header)",
    )  # fmt: skip
    parser.add_argument("--baseline-sample", type=int, default=500)
    parser.add_argument("--baseline-ticks", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="cProfile the measured ticks")
    parser.add_argument("--verbose", action="store_true", help="one line per measured tick")
    parser.add_argument(
        "--workers", type=int, nargs="*", default=None,
        help="tick on this many real Celery worker processes (each count in turn): "
        "bench/tick_cluster.py",
    )  # fmt: skip
    parser.add_argument("--shards", type=int, default=16, help="TICK_SHARDS with --workers")
    parser.add_argument(
        "--tick-seconds", type=float, default=5.0, help="TICK_SECONDS with --workers"
    )
    parser.add_argument("--serve-emulator", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--single-run", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--emulator-url", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.users is None:
        args.users = max(1, args.bots // 5)
    return args


def child_argv(args: argparse.Namespace, bots: int, users: int, emulator_url: str | None) -> list:
    argv = [
        sys.executable, str(Path(__file__).resolve()), "--single-run",
        "--bots", str(bots), "--users", str(users), "--markets", str(args.markets),
        "--ticks", str(args.ticks), "--steady-ticks", str(args.steady_ticks),
        "--database", args.database, "--market-data", args.market_data, "--cache", args.cache,
        "--ccxt-limiter", args.ccxt_limiter,
        "--baseline-sample", str(args.baseline_sample),
        "--baseline-ticks", str(args.baseline_ticks), "--seed", str(args.seed),
    ]  # fmt: skip
    if emulator_url:
        argv += ["--emulator-url", emulator_url]
    if args.profile:
        argv.append("--profile")
    if args.verbose:
        argv.append("--verbose")
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_emulator:
        serve_emulator()
        return 0
    if args.workers:
        import tick_cluster  # bench/ is on the path: this file's folder

        return tick_cluster.main(args)
    if args.single_run:
        # Alembic runs its own event loop: the database is made (and dropped) outside ours.
        bench_db = BenchDatabase.create(args.database)
        try:
            return asyncio.run(run(args, bench_db))
        finally:
            bench_db.drop()

    emulator: EmulatorProcess | None = None
    if args.market_data == "exchange":
        try:
            import tests.emulators.exchange  # noqa: F401
        except ImportError as exc:
            say(f"exchange emulator unavailable ({exc}); falling back to --market-data replay")
            args.market_data = "replay"
    runs = [(args.bots, args.users)]
    for extra in args.also or []:
        if extra > 0:
            runs.append((extra, max(1, round(args.users * extra / args.bots))))
    status = 0
    try:
        for bots, users in runs:
            # A fresh emulator per run: its call log and markets start empty.
            if args.market_data == "exchange":
                emulator = EmulatorProcess()
            completed = subprocess.run(
                child_argv(args, bots, users, emulator.base_url if emulator else None),
                cwd=ROOT,
                check=False,
            )
            status = status or completed.returncode
            if emulator is not None:
                emulator.stop()
                emulator = None
    finally:
        if emulator is not None:
            emulator.stop()
    return status


if __name__ == "__main__":
    sys.exit(main())
