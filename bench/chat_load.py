"""Load through the chat core: many users typing commands and pressing buttons at once.

Issue: 1,000 simulated users issuing a realistic mix of commands concurrently against
PostgreSQL; 0 errors, and the p50/p99 latency printed.

Run from the repository root (PostgreSQL on 127.0.0.1:5432, trust auth)::

    .venv/bin/python bench/chat_load.py                        # 1,000 users; 1 then 2 processes
    .venv/bin/python bench/chat_load.py --users 200 --processes 1
    .venv/bin/python bench/chat_load.py --processes 1,2,4 --think 1 4
    .venv/bin/python bench/chat_load.py --processes 1 --profile

What it does, per run (a fresh PostgreSQL database each, dropped at the end):

1. Migrates the database and seeds the returning users (``--returning``, 40% by default):
   registered earlier, a paper bot or two (Pro users), closed trades and open positions,
   so /positions, /trades, /profit and /status read real rows. Everyone else meets the bot
   for the first time: their /start registers them.
2. Starts ``--processes`` chat processes (``multiprocessing``, spawn). Each builds the
   product as a chat front end does (``App.from_settings`` -> ``Database`` with its default
   pool, one ``ChatCore`` with the production per-user rate limiter) and serves its share of
   the users (a user always talks to the same process: dialogs live in its memory). Every
   outside service points at a closed local port; the market data is the offline replay.
3. Each user runs one session of 10-20 actions with think time between them (``--think``,
   uniform, seconds), users starting spread over ``--ramp`` seconds, all concurrently on
   the process's event loop: /start first, then a weighted mix of /help, /bots, /status,
   /positions, /profit, /trades, /plan, the /newbot one-liner
   (``/newbot binance BTC/USDT sma_crossover 500``) followed by a press of its Create
   button, /startbot and /stopbot of their bot, /language pt, presses of buttons of the
   last reply (as a user taps them), an unknown command, a typo, plain text.

Figures:

- latency: ``ChatCore.handle_text`` / ``handle_action`` from call to replies, per kind of
  action and overall: p50, p95, p99, max in milliseconds.
- throughput: actions completed per second of wall time (first to last action).
- errors: actions answered with the internal-error apology (``error.internal``, "(ref
  <trace>)"), or with nothing, or that raised out of the core; and, apart, the core's
  ``chat.error`` log lines (one per apology). Both must be 0. Rate-limited replies (the
  per-user limiter) are counted apart.
- CPU: each chat process's CPU time over the run's wall time (100% = one core busy).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import logging
import math
import multiprocessing
import os
import pstats
import queue
import random
import re
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

# `python bench/chat_load.py` puts bench/, not the repository root, on the import path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import SecretStr
from sqlalchemy import event, insert, text

from bots.core.context import ChatContext
from bots.core.core import ChatCore
from bots.core.replies import Reply
from db import migrate
from db.models import Bot, BotMode, BotStatus, ChatIdentity, Plan, Platform, Position, Trade, User
from db.session import Database
from db.vault import generate_master_key
from engine.strategies.registry import get_strategy
from robotrader.app import App
from robotrader.i18n import Translator
from robotrader.settings import Settings
from tests import services

NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing outside 127.0.0.0/8 is contacted
TELEGRAM_ID_BASE = 770_000_000
INTERNAL_ERROR = re.compile(r"\(ref [0-9a-f]{8}\)")
RATE_LIMITED = {Translator(lang)("error.rate_limited") for lang in ("en", "pt-BR")}
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "DOGE/USDT")
UNKNOWN = ("/sell", "/buy BTC", "/balance2", "/price btc", "/admin", "/foo")
TYPOS = ("/stauts", "/bost", "/positons", "/hlep", "/proft", "/statsu", "/newbto")
CHATTER = ("oi", "hello?", "quanto lucrei hoje?", "is my bot running", "obrigado!", "👍")
# Weights of the next action after /start (a pending confirm or button comes first).
MIX = (
    ("/help", 7),
    ("/bots", 10),
    ("/status", 10),
    ("/positions", 9),
    ("/profit", 8),
    ("/trades", 7),
    ("/plan", 5),
    ("/newbot", 6),
    ("/startbot", 6),
    ("/stopbot", 5),
    ("/language", 2),
    ("button", 12),
    ("unknown", 2),
    ("typo", 3),
    ("text", 2),
)


# --- the population -------------------------------------------------------------------------


@dataclass(frozen=True)
class SimUser:
    index: int
    telegram_id: int
    language: str
    returning: bool
    plan: Plan
    bots: tuple[str, ...]  # names of the bots seeded for a returning user


def make_users(count: int, returning_share: float, rng: random.Random) -> list[SimUser]:
    users = []
    for i in range(count):
        returning = rng.random() < returning_share
        plan = Plan.PRO if returning and rng.random() < 0.2 else Plan.FREE
        bots: tuple[str, ...] = ()
        if returning:
            bots = ("rsi-1", "sma_crossover-2")[: 2 if plan == Plan.PRO else 1]
        language = "pt-br" if rng.random() < 0.6 else "en"
        users.append(SimUser(i, TELEGRAM_ID_BASE + i, language, returning, plan, bots))
    return users


async def seed_returning(database: Database, users: Sequence[SimUser], seed: int) -> None:
    """Returning users as earlier sessions and the engine left them: bots, trades, positions."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    returning = [u for u in users if u.returning]
    user_rows, identity_rows, bot_rows = [], [], []
    for db_id, user in enumerate(returning, start=1):
        user_rows.append({"id": db_id, "plan": user.plan, "language": None, "muted_kinds": []})
        identity_rows.append(
            {
                "user_id": db_id,
                "platform": Platform.TELEGRAM,
                "platform_user_id": str(user.telegram_id),
                "chat_id": str(user.telegram_id),
                "display_name": f"Trader {user.index}",
                "client_language": user.language,
                "reachable": True,
                "extra": {},
            }
        )
        for name in user.bots:
            strategy = name.rsplit("-", 1)[0]
            bot_rows.append(
                {
                    "user_id": db_id,
                    "name": name,
                    "exchange": "binance",
                    "symbols": [SYMBOLS[rng.randrange(3)]],
                    "timeframe": "1m",
                    "strategy": strategy,
                    "parameters": get_strategy(strategy).defaults(),
                    "capital": Decimal(rng.choice((100, 250, 500, 1000))),
                    "mode": BotMode.PAPER,
                    "status": rng.choice((BotStatus.RUNNING, BotStatus.STOPPED)),
                    "market_data_source": "replay",
                }
            )
    async with database.transaction() as session:
        if user_rows:
            await session.execute(insert(User), user_rows)
            await session.execute(insert(ChatIdentity), identity_rows)
            await session.execute(text("SELECT setval('users_id_seq', :n)"), {"n": len(user_rows)})
        bots = (
            (
                await session.execute(
                    insert(Bot).returning(Bot.id, Bot.user_id, Bot.symbols), bot_rows
                )
            ).all()
            if bot_rows
            else []
        )
        trade_rows, position_rows = [], []
        for bot_id, user_id, symbols in bots:
            symbol = symbols[0]
            base = Decimal(rng.choice((97000, 3400, 180)))
            for _ in range(rng.randrange(0, 40)):
                entry = base * Decimal(str(round(rng.uniform(0.95, 1.05), 4)))
                exit_ = entry * Decimal(str(round(rng.gauss(1, 0.02), 4)))
                amount = (Decimal(100) / entry).quantize(Decimal("0.000001"))
                closed = now - timedelta(minutes=rng.randrange(1, 60 * 24 * 40))
                trade_rows.append(
                    {
                        "bot_id": bot_id, "user_id": user_id, "symbol": symbol,
                        "mode": BotMode.PAPER, "amount": amount, "entry_price": entry,
                        "exit_price": exit_, "pnl": amount * (exit_ - entry),
                        "pnl_pct": (exit_ - entry) / entry * 100, "fees": Decimal("0.1"),
                        "exit_reason": rng.choice(("exit", "take_profit", "stop_loss")),
                        "opened_at": closed - timedelta(hours=3), "closed_at": closed,
                    }
                )  # fmt: skip
            if rng.random() < 0.5:
                amount = (Decimal(100) / base).quantize(Decimal("0.000001"))
                position_rows.append(
                    {
                        "bot_id": bot_id, "user_id": user_id, "symbol": symbol,
                        "amount": amount, "average_entry": base, "cost": amount * base,
                        "entries": 1, "opened_at": now - timedelta(hours=rng.randrange(1, 72)),
                    }
                )  # fmt: skip
        if trade_rows:
            await session.execute(insert(Trade), trade_rows)
        if position_rows:
            await session.execute(insert(Position), position_rows)


# --- one simulated user ---------------------------------------------------------------------


@dataclass
class Outcome:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    rate_limited: int = 0
    first: float = math.inf
    last: float = 0.0


def _action_buttons(replies: Sequence[Reply]) -> list[str]:
    return [b.action for r in replies for row in r.buttons for b in row if b.action]


async def _act(
    core: ChatCore, ctx: ChatContext, kind: str, is_text: bool, payload: str, outcome: Outcome
) -> list[Reply]:
    """One message or button press, timed and checked."""
    started = time.perf_counter()
    try:
        if is_text:
            replies = await core.handle_text(ctx, payload)
        else:
            replies = await core.handle_action(ctx, payload)
    except Exception as exc:
        outcome.errors.append(f"{kind} {payload!r}: {type(exc).__name__}: {exc}")
        return []
    outcome.latencies[kind].append(time.perf_counter() - started)
    for reply in replies:
        plain = reply.plain()
        if INTERNAL_ERROR.search(plain):
            outcome.errors.append(f"{kind} {payload!r}: {plain[:200]}")
        if plain in RATE_LIMITED:
            outcome.rate_limited += 1
    if not replies:
        outcome.errors.append(f"{kind} {payload!r}: no reply in a private chat")
    return replies


async def session(
    core: ChatCore,
    user: SimUser,
    rng: random.Random,
    start_at: float,
    think: tuple[float, float],
    actions: int,
    double: float,
    outcome: Outcome,
) -> None:
    ctx = ChatContext(
        platform=Platform.TELEGRAM,
        platform_user_id=str(user.telegram_id),
        chat_id=str(user.telegram_id),
        is_private=True,
        client_language=user.language,
        display_name=f"Trader {user.index}",
    )
    bots = list(user.bots)
    buttons: list[str] = []
    pending: str | None = None  # a button the user is about to press (the /newbot confirm)
    language_set = False
    await asyncio.sleep(max(0.0, start_at - time.time()))
    for step in range(actions):
        if step == 0:
            kind, is_text, payload = "/start", True, "/start"
        elif pending is not None:
            kind, is_text, payload = "button:nbc (confirm)", False, pending
            pending = None
        else:
            choice = rng.choices([m for m, _ in MIX], [w for _, w in MIX])[0]
            if choice == "button" and not buttons:
                choice = "/bots"
            if choice == "/language" and language_set:
                choice = "/help"
            kind, is_text = choice, True
            if choice == "/newbot":
                payload = f"/newbot binance {rng.choice(SYMBOLS[:3])} sma_crossover 500"
            elif choice in ("/startbot", "/stopbot"):
                payload = f"{choice} {rng.choice(bots)}" if bots else choice
            elif choice == "/language":
                payload, language_set = "/language pt", True
            elif choice == "/trades":
                payload = rng.choice(("/trades", "/trades 5", "/trades 20"))
            elif choice == "button":
                payload, is_text = rng.choice(buttons), False
                kind = "button:" + payload.split(":")[1]
            elif choice == "unknown":
                payload = rng.choice(UNKNOWN)
            elif choice == "typo":
                payload = rng.choice(TYPOS)
            elif choice == "text":
                payload = rng.choice(CHATTER)
            else:
                payload = choice
        steps = [(kind, is_text, payload)]
        if step == 0 and rng.random() < double:  # a second message before the first answer
            second = rng.choice(("/help", "oi", "/bots"))
            steps.append((second if second.startswith("/") else "text", True, second))
        elif not is_text and rng.random() < double:  # a double tap on the button
            steps.append((kind, is_text, payload))
        outcome.first = min(outcome.first, time.time())
        answers = await asyncio.gather(*(_act(core, ctx, *s, outcome) for s in steps))
        outcome.last = max(outcome.last, time.time())
        replies = answers[0]
        new_buttons = _action_buttons(replies)
        if new_buttons:
            buttons = new_buttons
        if kind == "/newbot" and "v1:nbc" in new_buttons:
            pending = "v1:nbc"
        if kind.startswith("button:nbc"):
            for reply in replies:
                for name in re.findall(r"sma_crossover-\d+", reply.plain()):
                    if name not in bots:
                        bots.append(name)
        await asyncio.sleep(rng.uniform(*think))


# --- a chat process -------------------------------------------------------------------------


class _ChatErrors(logging.Handler):
    """Counts the core's ``chat.error`` log lines (bugs turned into apologies)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("chat.error"):
            detail = ""
            if record.exc_info and record.exc_info[1] is not None:
                detail = f" {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
            self.records.append(record.getMessage() + detail)


class Diagnostics:
    """Where a chat process's time goes besides its CPU: the event loop, SQL, the pool."""

    def __init__(self, database: Database) -> None:
        self.loop_lag: list[float] = []
        self.statements: list[tuple[float, str]] = []
        self.connects: list[float] = []
        self.pool_samples: list[int] = []
        self.pool_size = database.engine.pool.size() + database.engine.pool._max_overflow  # type: ignore[attr-defined]
        self.pool = database.engine.pool
        engine = database.engine.sync_engine
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "do_connect", self._connecting)
        event.listen(engine, "connect", self._connected)
        self._connecting_since: list[float] = []

    def _before(self, conn: Any, _cursor: Any, _statement: str, *_args: Any) -> None:
        conn.info["bench_t0"] = time.perf_counter()

    def _after(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        started = conn.info.pop("bench_t0", None)
        if started is not None:
            self.statements.append((time.perf_counter() - started, statement))

    def _connecting(self, *_args: Any) -> None:
        self._connecting_since.append(time.perf_counter())

    def _connected(self, *_args: Any) -> None:
        if self._connecting_since:
            self.connects.append(time.perf_counter() - self._connecting_since.pop(0))

    async def watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.05)
            self.loop_lag.append(time.perf_counter() - started - 0.05)
            self.pool_samples.append(self.pool.checkedout())

    def summary(self) -> dict[str, Any]:
        slowest = sorted(self.statements, reverse=True)[:3]
        durations = [d for d, _ in self.statements]
        return {
            "lag_p99": percentile(self.loop_lag, 99) if self.loop_lag else 0.0,
            "lag_max": max(self.loop_lag, default=0.0),
            "sql_n": len(durations),
            "sql_p50": percentile(durations, 50) if durations else 0.0,
            "sql_p99": percentile(durations, 99) if durations else 0.0,
            "sql_max": max(durations, default=0.0),
            "slowest": [(d, " ".join(s.split())[:90]) for d, s in slowest],
            "connects": len(self.connects),
            "connect_seconds": sum(self.connects),
            "pool_full": (
                sum(1 for n in self.pool_samples if n >= self.pool_size) / len(self.pool_samples)
                if self.pool_samples
                else 0.0
            ),
            "pool_max": max(self.pool_samples, default=0),
        }


def worker_main(
    url: str,
    users: list[SimUser],
    seed: int,
    start_at: float,
    ramp: float,
    total_users: int,
    think: tuple[float, float],
    actions: tuple[int, int],
    double: float,
    profile: bool,
    results: Any,
) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    errors = _ChatErrors()
    logging.getLogger().addHandler(errors)
    profiler = cProfile.Profile() if profile else None
    outcome, cpu, diagnostics = asyncio.run(
        _serve(url, users, seed, start_at, ramp, total_users, think, actions, double, profiler)
    )
    text_profile = ""
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(35)
        text_profile = out.getvalue()
    results.put(
        {
            "latencies": dict(outcome.latencies),
            "errors": outcome.errors,
            "logged": errors.records,
            "rate_limited": outcome.rate_limited,
            "first": outcome.first,
            "last": outcome.last,
            "cpu": cpu,
            "diagnostics": diagnostics,
            "profile": text_profile,
        }
    )


async def _serve(
    url: str,
    users: list[SimUser],
    seed: int,
    start_at: float,
    ramp: float,
    total_users: int,
    think: tuple[float, float],
    actions: tuple[int, int],
    double: float,
    profiler: cProfile.Profile | None,
) -> tuple[Outcome, float, dict[str, Any]]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=Path(tempfile.gettempdir()) / f"rt_bench_chat_{os.getpid()}",
        database_url=url,
        master_key=SecretStr(generate_master_key()),
        exchange_api_urls={"binance": NOWHERE, "bybit": NOWHERE},
        telegram_api_url=f"{NOWHERE}/bot",
        discord_api_url=f"{NOWHERE}/api/v10",
        stripe_api_base=NOWHERE,
        market_data="replay",
    )
    app = App.from_settings(settings)  # its own Database with the default pool, as in production
    core = ChatCore(app)
    outcome = Outcome()
    diagnostics = Diagnostics(app.database)
    stop = asyncio.Event()
    try:
        async with app.database.sessions() as warm:  # connect once before the clock starts
            await warm.execute(text("SELECT 1"))
        watcher = asyncio.create_task(diagnostics.watch(stop))
        cpu0 = time.process_time()
        if profiler is not None:
            profiler.enable()
        await asyncio.gather(
            *(
                session(
                    core,
                    user,
                    random.Random(seed * 1_000_003 + user.index),
                    start_at + ramp * user.index / total_users,
                    think,
                    random.Random(seed + user.index).randint(*actions),
                    double,
                    outcome,
                )
                for user in users
            )
        )
        if profiler is not None:
            profiler.disable()
        cpu = time.process_time() - cpu0
        stop.set()
        await watcher
    finally:
        await app.close()
        shutil.rmtree(settings.data_dir, ignore_errors=True)
    return outcome, cpu, diagnostics.summary()


def cpu_by_pid() -> dict[int, float]:
    """CPU seconds (user + system) of every process on the machine, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    return found


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, every core (/proc/stat)."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / ticks, sum(values) / ticks


def outside_cpu(before: dict[int, float], after: dict[int, float], ours: set[int]) -> float:
    """CPU seconds used meanwhile by processes that were already running and are not ours
    (other benchmarks, other sessions of PostgreSQL...): what competed with this run."""
    return sum(after[p] - before[p] for p in before.keys() & after.keys() if p not in ours)


# --- a run ------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


def run(args: argparse.Namespace, processes: int) -> bool:
    rng = random.Random(args.seed)
    users = make_users(args.users, args.returning, rng)
    name = services.create_database("rt_bench_chat")
    try:
        url = services.sqlalchemy_url(name)
        migrate.upgrade(url)
        database = Database(url)

        async def seed() -> None:
            try:
                await seed_returning(database, users, args.seed)
            finally:
                await database.dispose()

        asyncio.run(seed())
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        start_at = time.time() + 3.0 + processes  # every process set up before the first user
        workers = [
            context.Process(
                target=worker_main,
                args=(
                    url,
                    [u for u in users if u.index % processes == p],
                    args.seed,
                    start_at,
                    args.ramp,
                    len(users),
                    tuple(args.think),
                    (args.min_actions, args.max_actions),
                    args.double,
                    args.profile,
                    results,
                ),
                name=f"chat-{p}",
            )
            for p in range(processes)
        ]
        before = cpu_by_pid()
        busy_before = machine_busy()
        for worker in workers:
            worker.start()
        parts: list[dict[str, Any]] = []
        while len(parts) < len(workers):
            try:
                parts.append(results.get(timeout=5))
            except queue.Empty:
                failed = [w for w in workers if w.exitcode not in (None, 0)]
                if failed:
                    raise RuntimeError(f"chat process {failed[0].name} failed") from None
        outside = outside_cpu(before, cpu_by_pid(), {os.getpid()})
        busy_after = machine_busy()
        busy = (busy_after[0] - busy_before[0]) / (busy_after[1] - busy_before[1])
        for worker in workers:
            worker.join()
    finally:
        with contextlib.suppress(Exception):
            services.drop_database(name)
    return report(args, processes, users, parts, outside, busy)


def report(
    args: argparse.Namespace,
    processes: int,
    users: Sequence[SimUser],
    parts: list[dict[str, Any]],
    outside: float,
    busy: float,
) -> bool:
    latencies: dict[str, list[float]] = defaultdict(list)
    for part in parts:
        for kind, values in part["latencies"].items():
            latencies[kind].extend(values)
    errors = [e for part in parts for e in part["errors"]]
    logged = [e for part in parts for e in part["logged"]]
    rate_limited = sum(part["rate_limited"] for part in parts)
    wall = max(p["last"] for p in parts) - min(p["first"] for p in parts)
    every = [v for values in latencies.values() for v in values]
    returning = sum(1 for u in users if u.returning)
    print(
        f"\n== {processes} chat process{'es' if processes > 1 else ''}: {len(users)} users "
        f"({returning} returning, {len(users) - returning} new), think {args.think[0]:g}-"
        f"{args.think[1]:g} s, {args.min_actions}-{args.max_actions} actions each, "
        f"ramp {args.ramp:g} s, {args.double:.0%} double sends/taps, pool 10+10 per process"
    )
    print(f"{'kind':<24}{'n':>7}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for kind in sorted(latencies, key=lambda k: (-len(latencies[k]), k)):
        values = latencies[kind]
        print(
            f"{kind:<24}{len(values):>7}{percentile(values, 50) * 1000:>10.1f}"
            f"{percentile(values, 95) * 1000:>10.1f}{percentile(values, 99) * 1000:>10.1f}"
            f"{max(values) * 1000:>10.1f}"
        )
    print(
        f"{'overall':<24}{len(every):>7}{percentile(every, 50) * 1000:>10.1f}"
        f"{percentile(every, 95) * 1000:>10.1f}{percentile(every, 99) * 1000:>10.1f}"
        f"{max(every) * 1000:>10.1f}"
    )
    cpu = ", ".join(f"{p['cpu'] / wall * 100:.0f}%" for p in parts)
    print(
        f"throughput {len(every) / wall:.1f} actions/s over {wall:.1f} s; "
        f"chat process CPU (of one core): {cpu}"
    )
    print(
        f"machine: {busy * 100:.0f}% of its {os.cpu_count()} cores busy (chat processes, "
        f"PostgreSQL, everything); processes outside this run (other benchmarks...) took "
        f"{outside / wall * 100:.0f}% of one core"
    )
    for number, part in enumerate(parts):
        d = part["diagnostics"]
        print(
            f"process {number}: event-loop lag p99 {d['lag_p99'] * 1000:.0f} ms max "
            f"{d['lag_max'] * 1000:.0f} ms; SQL {d['sql_n']} statements p50 "
            f"{d['sql_p50'] * 1000:.1f} ms p99 {d['sql_p99'] * 1000:.1f} ms max "
            f"{d['sql_max'] * 1000:.0f} ms; pool at its limit {d['pool_full'] * 100:.1f}% of the "
            f"time (max {d['pool_max']} out); {d['connects']} connections opened "
            f"({d['connect_seconds']:.1f} s connecting)"
        )
        if args.verbose:
            for duration, statement in d["slowest"]:
                print(f"    {duration * 1000:.0f} ms  {statement}")
    print(
        f"errors {len(errors)} (internal-error apologies, exceptions, no reply); "
        f"chat.error logged {len(logged)}; rate-limited replies {rate_limited}"
    )
    for error in errors[:5] + logged[:5]:
        print(f"  {error}")
    for part in parts:
        if part["profile"]:
            print(part["profile"])
    return not errors and not logged


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Concurrent users through the chat core.")
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument(
        "--processes", default="1,2", help="chat processes, comma separated: one run each"
    )
    parser.add_argument("--think", type=float, nargs=2, default=(2.0, 8.0), metavar=("MIN", "MAX"))
    parser.add_argument("--min-actions", type=int, default=10)
    parser.add_argument("--max-actions", type=int, default=20)
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which users start")
    parser.add_argument("--returning", type=float, default=0.4, help="share of returning users")
    parser.add_argument(
        "--double",
        type=float,
        default=0.1,
        help="chance that a first contact is two messages at once, and that a press is a "
        "double tap (handled concurrently, as PTB's concurrent_updates does)",
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--profile", action="store_true", help="cProfile each chat process")
    parser.add_argument("--verbose", action="store_true", help="the slowest SQL statements")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    counts = [int(p) for p in str(args.processes).split(",") if p.strip()]
    missing = services.missing_services()
    if any("PostgreSQL" in m for m in missing):
        raise SystemExit("\n".join(missing))
    print(f"bench/chat_load.py: {args.users} users, processes {counts}, {os.cpu_count()} CPUs")
    ok = True
    for processes in counts:
        ok = run(args, processes) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
