"""Notification delivery to Telegram within Telegram's limits: messages/s, 429s and latency.

Issue: 10,000 notifications for 2,000 users delivered through the real python-telegram-bot
client to a Bot API emulator on 127.0.0.1 that enforces Telegram's limits (about 30
messages/s overall, 1/s per chat, 429 with retry_after when exceeded). Goals: steady, 27
fills/s kept up with (the last accepted within 10 s of the last write; a chat's fills
go as one digest, so messages/s alone no longer say it); burst, all 10,000 delivered
within 90 s of the first write; 0 429s and exactly once in both.

Run from the repository root (PostgreSQL on 127.0.0.1:5432, trust auth)::

    .venv/bin/python bench/notify.py                             # 10,000 / 2,000, both phases
    .venv/bin/python bench/notify.py --notifications 1000 --users 200
    .venv/bin/python bench/notify.py --phases burst --profile
    .venv/bin/python bench/notify.py --fill-rate 30             # fills outpace Telegram

What it does:

1. Creates its own PostgreSQL database (dropped at the end), migrates it with
   ``db.migrate.upgrade``, and inserts ``--users`` users, each with a Telegram identity
   whose chat id is the Telegram user id registered in the emulator (a mix of Portuguese
   and English clients, ~12% on paid plans, whose notifications have a higher priority).
2. Starts the Telegram Bot API emulator (``tests/emulators/telegram.py``) in a process of
   its own, as Telegram is another machine, with its default limits: 30 sends in any
   sliding second bot-wide, 1 per sliding second per chat; over them, 429 + retry_after.
3. Builds the Telegram front end exactly as production does
   (``bots.telegram.service.build_application``: real PTB ``Application`` with the
   ``TelegramRateLimiter``) and runs ``TelegramDelivery.run`` (claim under a lease, send
   concurrently, acknowledge once the Bot API accepted) for the whole phase.
4. A producer process (the engine's role) writes the notifications as the engine does:
   realistic trade_opened / trade_closed payloads as ``engine/bookkeeping.py`` writes them,
   five per user. The "fill" time of a notification is its ``created_at``, written at the
   moment the producer stores it. The engine writes them two ways, and so does the bench:

   * paper fills, by the tick (``engine/tick.py``): every ``--tick`` seconds (default the
     engine's ``tick_seconds``, 5 s), the fills of each shard (``bots_per_shard`` bots,
     ``Bot.id % shards``) in one transaction: recipients loaded once, one batched
     ``db.outbox.add_notifications``, as ``Ledger.write`` does;
   * live fills, by the orders queue (``engine/live_orders.py``): the tick queues its live
     orders in decision order (market by market, bot by bot); ``--order-workers`` (default
     2, Celery's concurrency on this 2-CPU machine) settle them one at a time, each an
     exchange round trip (``--order-ms``, default 0: the bench leaves it out, a real
     exchange spreads live fills further) then its fill booked in a transaction of its
     own, as ``settle_order`` does.

   Phases:

   * ``steady``: fills arrive at ``--fill-rate`` per second (default 27/s, the goal), each
     user's bot alternating buys and sells on one symbol, users interleaved at random;
     each tick writes the fills of its period. ``--tick 0``: each fill in its own
     transaction at its own moment. This is the honest measure of "fill-to-send" latency.
   * ``burst``: one candle close: every bot decides in the same tick, each Free user's
     bot on five of its symbols (one decision per symbol and candle: ``client_order_id``),
     each paying user's on five bots of theirs, whose ids put them in different shards
     (2,000 users make some 3,000 bots: two shards of the engine's 2,000, written one
     after the other, as one worker does).
     Earlier versions of this bench wrote the 10,000 rows one by one (100 per
     transaction, ~30 s): the engine never writes that way, and each chat that got a
     message during those 30 s needed a second one. A Free user may hold 3 symbols, so in
     production their five fills span two candles; here they come in one tick (the same
     one message a chat, a longer digest). Delivery waits ``digest_hold_ms`` after a
     chat's newest fill for more (``--digest-hold-ms`` to compare).

Figures:

- sustained msgs/s: accepted sendMessage calls over the span between the first and the
  last acceptance, from the emulator's own acceptance times; "busiest second" is the
  maximum number of acceptances in any sliding second (the emulator's limit is 30).
- 429s: answered by the emulator (its ``stats.rate_limited``), seen by the client
  (``TelegramRateLimiter.retries``: waited out and retried once) and released back to the
  outbox by ``TelegramDelivery`` (``stats.retried``).
- latency: notification ``created_at`` (fill) -> the Bot API accepted the message (the
  client got the answer), p50/p99/max over every delivered notification.
- backlog: undelivered deliveries in the outbox, sampled every second (max).
- exactly once: every delivery acknowledged ``sent`` in the database, and the emulator
  accepted exactly the expected number of messages in every chat.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import io
import math
import multiprocessing
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

# `python bench/notify.py` puts bench/, not the repository root, on the import path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from pydantic import SecretStr
from sqlalchemy import insert, select, text

from bots.telegram.delivery import TelegramDelivery
from bots.telegram.rate_limiter import TelegramRateLimiter
from bots.telegram.service import build_application
from db import migrate, outbox
from db.models import (
    BotMode,
    ChatIdentity,
    Notification,
    NotificationDelivery,
    OrderSide,
    Plan,
    Platform,
    User,
)
from db.notifications import TradeClosedNotice, TradeOpenedNotice
from db.session import Database
from db.vault import generate_master_key
from engine.context import EngineConfig
from robotrader import languages
from robotrader.app import App
from robotrader.formatting import amount, price
from robotrader.settings import Settings
from tests import services
from tests.emulators.telegram import DEFAULT_TOKEN

ROOT = Path(__file__).resolve().parent.parent
NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing outside 127.0.0.0/8 is contacted
TELEGRAM_ID_BASE = 880_000_000
GOAL_RATE = 27.0
GOAL_BURST_SECONDS = 90.0  # burst: 1st write -> last accepted
KEEP_UP_LAG_SECONDS = 10.0  # steady: last write -> last accepted
SYMBOLS = (
    ("BTC/USDT", Decimal("97000")),
    ("ETH/USDT", Decimal("3400")),
    ("SOL/USDT", Decimal("180")),
    ("BNB/USDT", Decimal("650")),
    ("XRP/USDT", Decimal("2.2")),
    ("DOGE/USDT", Decimal("0.31")),
    ("ADA/USDT", Decimal("0.92")),
    ("AVAX/USDT", Decimal("38")),
    ("LINK/USDT", Decimal("21")),
    ("DOT/USDT", Decimal("7.4")),
    ("LTC/USDT", Decimal("105")),
    ("TRX/USDT", Decimal("0.26")),
)
STRATEGIES = ("sma_crossover", "rsi", "dca", "grid")
# As the engine writes them (Order.reason; every one has a catalog entry "reason.<x>").
OPEN_REASONS = ("entry", "entry", "entry", "base", "safety", "grid_buy", "signal_buy")
CLOSE_REASONS = ("exit", "exit", "take_profit", "stop_loss", "grid_sell", "signal_sell")
PRIORITY = {Plan.FREE: 0, Plan.PRO: 1, Plan.PREMIUM: 2}


# --- the population -------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchUser:
    user_id: int
    telegram_id: int
    plan: Plan
    client_language: str


@dataclass(frozen=True)
class Fill:
    user_id: int
    notice: TradeOpenedNotice | TradeClosedNotice
    dedupe_key: str
    priority: int
    at: float = 0.0  # seconds after the start: when its bot decided it

    @property
    def live(self) -> bool:
        return self.notice.mode == BotMode.LIVE

    def new_notification(self) -> outbox.NewNotification:
        return outbox.NewNotification(self.user_id, self.notice, self.dedupe_key, self.priority)


def make_users(count: int, rng: random.Random) -> list[BenchUser]:
    users = []
    for i in range(1, count + 1):
        roll = rng.random()
        plan = Plan.PREMIUM if roll < 0.02 else Plan.PRO if roll < 0.12 else Plan.FREE
        language = "pt-br" if rng.random() < 0.6 else "en"
        users.append(BenchUser(i, TELEGRAM_ID_BASE + i, plan, language))
    return users


def make_fills(
    users: Sequence[BenchUser], total: int, rng: random.Random, phase: str, rate: float
) -> list[Fill]:
    """``total`` trade notifications spread evenly over the users.

    ``steady``: each user's bot trades one symbol, alternating buys and sells (as
    bookkeeping reports them), the users interleaved at random, one fill every 1/``rate`` s.
    ``burst``: one candle close, when every bot decides at once: each user's bot fills on
    as many of its symbols (one decision per symbol and candle) as the user has fills.
    """
    per_user = [
        total // len(users) + (1 if i < total % len(users) else 0) for i in range(len(users))
    ]
    if phase == "burst" and max(per_user) > len(SYMBOLS):
        raise SystemExit(f"burst: at most {len(SYMBOLS)} fills a user (one per symbol)")
    sequences: dict[int, list[Fill]] = {}
    for user, count in zip(users, per_user, strict=True):
        first = rng.randrange(len(SYMBOLS))
        strategies = [STRATEGIES[rng.randrange(len(STRATEGIES))] for _ in range(count)]
        # burst: a paying user's fills come from bots of theirs (up to five), each with a
        # stable id of its own, so they may fall in different shards of the tick
        paying = phase == "burst" and user.plan != Plan.FREE
        mode = BotMode.PAPER if rng.random() < 0.8 else BotMode.LIVE
        entry = Decimal(0)
        fills: list[Fill] = []
        for n in range(count):
            k = n % 5 if paying else 0
            bot_id, bot = user.user_id * 100 + k, f"{strategies[k]}-{k + 1}"
            # steady: one symbol, its price moving; burst: a symbol a fill, all at one candle
            symbol, base = SYMBOLS[(first + (n if phase == "burst" else 0)) % len(SYMBOLS)]
            if phase == "burst" or n == 0:
                price = base * Decimal(str(round(rng.uniform(0.97, 1.03), 4)))
                amount = (Decimal(rng.choice((100, 250, 500, 1000))) / price).quantize(
                    Decimal("0.000001")
                )
                entry = price
            price = (price * Decimal(str(round(rng.gauss(1, 0.01), 5)))).quantize(Decimal("0.0001"))
            buying = n % 2 == 0 if phase == "steady" else rng.random() < 0.5
            if buying:
                entry = price
                notice: TradeOpenedNotice | TradeClosedNotice = TradeOpenedNotice(
                    bot_id=bot_id, bot=bot, mode=mode, symbol=symbol, side=OrderSide.BUY,
                    reason=rng.choice(OPEN_REASONS), amount=amount,
                    price=price, value=(amount * price).quantize(Decimal("0.01")),
                )  # fmt: skip
            else:
                pnl = (amount * (price - entry)).quantize(Decimal("0.01"))
                pnl_pct = ((price - entry) / entry * 100).quantize(Decimal("0.01"))
                notice = TradeClosedNotice(
                    bot_id=bot_id, bot=bot, mode=mode, symbol=symbol, side=OrderSide.SELL,
                    reason=rng.choice(CLOSE_REASONS), amount=amount,
                    price=price, entry_price=entry, pnl=pnl,
                    pnl_pct=pnl_pct, closed=True,
                )  # fmt: skip
            fills.append(
                Fill(
                    user.user_id,
                    notice,
                    f"bench:{phase}:fill:{user.user_id}:{n}",
                    PRIORITY[user.plan],
                )
            )
        sequences[user.user_id] = fills
    if phase == "burst":
        # The order the tick decides in: market by market, bot by bot.
        every = [fill for fills in sequences.values() for fill in fills]
        every.sort(key=lambda f: (f.notice.symbol, f.notice.bot_id))
        return every
    order = [uid for uid, fills in sequences.items() for _ in fills]
    rng.shuffle(order)
    cursors: Counter[int] = Counter()
    interleaved = []
    for i, uid in enumerate(order):
        fill = sequences[uid][cursors[uid]]
        interleaved.append(dataclasses.replace(fill, at=i / rate))
        cursors[uid] += 1
    return interleaved


async def seed_users(database: Database, users: Sequence[BenchUser]) -> None:
    async with database.transaction() as session:
        for start in range(0, len(users), 1000):
            chunk = users[start : start + 1000]
            await session.execute(
                insert(User),
                [
                    {"id": u.user_id, "plan": u.plan, "language": None, "muted_kinds": []}
                    for u in chunk
                ],
            )
            await session.execute(
                insert(ChatIdentity),
                [
                    {
                        "user_id": u.user_id,
                        "platform": Platform.TELEGRAM,
                        "platform_user_id": str(u.telegram_id),
                        "chat_id": str(u.telegram_id),
                        "display_name": f"Trader {u.user_id}",
                        "client_language": u.client_language,
                        "reachable": True,
                        "extra": {},
                    }
                    for u in chunk
                ],
            )
        await session.execute(text("SELECT setval('users_id_seq', :n)"), {"n": len(users)})


# --- the producer (the engine's part), in a process of its own ------------------------------


def producer_main(
    url: str, fills: list[Fill], options: ProducerOptions, start_at: float, report: Any
) -> None:
    """Write ``fills`` as the engine does (`_produce`); ``report`` gets its timings."""
    report.put(asyncio.run(_produce(url, fills, options, start_at)))


@dataclass(frozen=True)
class ProducerOptions:
    tick: float  # seconds between ticks; 0: each fill in its own transaction, at its time
    bots_per_shard: int  # the engine's shards (EngineConfig.bots_per_shard)
    order_workers: int  # processes settling live orders (Celery's `orders` queue)
    order_seconds: float  # the exchange's round trip for one order


def tick_moments(fills: Sequence[Fill], tick: float) -> list[tuple[float, list[Fill]]]:
    """The ticks that write ``fills``: each fill goes with the tick of the period ``at`` is in."""
    ticks: dict[float, list[Fill]] = {}
    for fill in fills:
        moment = math.floor(fill.at / tick + 1e-9) * tick if tick > 0 else fill.at
        ticks.setdefault(moment, []).append(fill)
    return sorted(ticks.items(), key=lambda item: item[0])


async def _produce(
    url: str, fills: list[Fill], options: ProducerOptions, start_at: float
) -> dict[str, float]:
    """The engine's writes, as `engine/tick.py` and `engine/live_orders.py` make them.

    At each tick, the paper fills of each shard in one transaction (the tick's
    `Ledger.write`: recipients loaded once, one `add_notifications`); the live orders the
    tick decided go to the orders queue in decision order, where ``order_workers`` take
    them one by one, each an exchange round trip then its fill booked in a transaction
    of its own (`settle_order`). ``tick`` 0: each fill alone at its own moment.
    """
    database = Database(url, pool_size=options.order_workers + 2)
    timings = {
        "late": 0.0, "bots": 0.0, "shards": 0.0,
        "tick_write_max": 0.0, "last_paper": 0.0, "last_live": 0.0,
    }  # fmt: skip
    orders: asyncio.Queue[Fill | None] = asyncio.Queue()

    async def settle_orders() -> None:
        while (fill := await orders.get()) is not None:
            if options.order_seconds:
                await asyncio.sleep(options.order_seconds)
            async with database.transaction() as session:
                await outbox.add_notifications(session, [fill.new_notification()])
            timings["last_live"] = time.time() - start_at

    workers = [asyncio.create_task(settle_orders()) for _ in range(options.order_workers)]
    try:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        timings["late"] = max(0.0, time.time() - start_at)  # the process took long to start
        for moment, due in tick_moments(fills, options.tick):
            await asyncio.sleep(max(0.0, start_at + moment - time.time()))
            began = time.time()
            paper = [f for f in due if not f.live]
            bots = len({f.notice.bot_id for f in due})
            shards = max(1, math.ceil(bots / options.bots_per_shard))
            timings["bots"] = max(timings["bots"], bots)
            timings["shards"] = max(timings["shards"], shards)
            for shard in range(shards):  # Bot.id % shards, as engine/tick.py splits them
                mine = [f for f in paper if f.notice.bot_id % shards == shard]
                if mine:
                    owners = {f.user_id for f in mine}
                    async with database.transaction() as session:
                        recipients = await outbox.load_recipients(session, owners)
                        notifications = [f.new_notification() for f in mine]
                        await outbox.add_notifications(session, notifications, recipients)
            if paper:
                timings["last_paper"] = time.time() - start_at
                timings["tick_write_max"] = max(timings["tick_write_max"], time.time() - began)
            for fill in due:
                if fill.live:
                    orders.put_nowait(fill)
        for _ in workers:
            orders.put_nowait(None)
        await asyncio.gather(*workers)
        return timings
    finally:
        for worker in workers:
            worker.cancel()
        await database.dispose()


# --- the emulator, in a process of its own ----------------------------------------------------


class EmulatorProcess:
    """``python -m tests.emulators.telegram`` and its ``/_emulator`` control API."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.base_url = ""

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.emulators.telegram", "--port", "0",
             "--token", DEFAULT_TOKEN],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"the Telegram emulator did not start: {line!r}")
        self.base_url = line.split("listening on ", 1)[1].split()[0]

    @property
    def api_base_url(self) -> str:
        return f"{self.base_url}/bot"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu_seconds(self) -> float:
        assert self.process is not None
        return _cpu_seconds(self.process.pid)

    async def call(self, method: str, name: str, body: dict[str, Any] | None = None) -> Any:
        async with aiohttp.ClientSession() as http:
            return await self._call(http, method, name, body)

    async def _call(
        self, http: aiohttp.ClientSession, method: str, name: str, body: dict[str, Any] | None
    ) -> Any:
        async with http.request(method, f"{self.base_url}/_emulator/{name}", json=body) as answer:
            data = await answer.json()
            if not data.get("ok"):
                raise RuntimeError(f"emulator {name}: {data}")
            return data["result"]

    async def add_users(self, users: Sequence[BenchUser]) -> None:
        async with aiohttp.ClientSession() as http:
            for start in range(0, len(users), 50):
                await asyncio.gather(
                    *(
                        self._call(
                            http,
                            "POST",
                            "users",
                            {
                                "user_id": u.telegram_id,
                                "first_name": f"Trader{u.user_id}",
                                "language_code": u.client_language,
                            },
                        )
                        for u in users[start : start + 50]
                    )
                )

    async def fresh_windows(self) -> None:
        """Forget the request log and the limit windows (between phases)."""
        await self.call("POST", "reset")
        await self.call("POST", "limits", {})


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def outside_cpu(before: dict[int, float], after: dict[int, float], ours: set[int]) -> float:
    """CPU seconds used meanwhile by processes that were already running and are not ours
    (other benchmarks, other sessions of PostgreSQL...): what competed with this run."""
    return sum(after[p] - before[p] for p in before.keys() & after.keys() if p not in ours)


# --- one phase --------------------------------------------------------------------------------


@dataclass
class PhaseResult:
    name: str
    notifications: int
    users: int
    fill_rate: float
    write_seconds: float = 0.0
    accepted: int = 0
    span_seconds: float = 0.0
    total_seconds: float = 0.0
    busiest_second: int = 0
    min_chat_gap: float = math.inf
    emulator_429: int = 0
    limited_chat: int = 0
    limited_global: int = 0
    client_retries: int = 0
    released: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    latencies_by_priority: dict[int, list[float]] = field(default_factory=dict)
    max_backlog: int = 0
    delivery_cpu: float = 0.0
    emulator_cpu: float = 0.0
    outside_cpu: float = 0.0
    not_sent_in_db: int = 0
    claimed_again: int = 0
    duplicate_chats: int = 0
    missing_chats: int = 0
    fills_shown: int = 0  # fills found in their user's chat, each on a row of its own
    fills_missing: int = 0
    fills_repeated: int = 0
    digests: int = 0  # messages holding more than one fill
    digest_hold_ms: int = 0
    producer: ProducerOptions | None = None
    producer_timings: dict[str, float] = field(default_factory=dict)
    timed_out: bool = False
    profile: str = ""

    @property
    def rate(self) -> float:
        return (self.accepted - 1) / self.span_seconds if self.span_seconds > 0 else 0.0


def classify_429s(requests: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """(per-chat, bot-wide) 429s: per-chat if that chat had a send accepted in the second before."""
    accepted: dict[int, list[float]] = {}
    chat_limited = global_limited = 0
    for r in sorted(requests, key=lambda r: r["monotonic"]):
        if r["method"] != "sendMessage" or r["chat_id"] is None:
            continue
        chat = int(r["chat_id"])
        if r["status"] == 200:
            accepted.setdefault(chat, []).append(r["monotonic"])
        elif r["status"] == 429:
            recent = accepted.get(chat, [])
            if recent and recent[-1] > r["monotonic"] - 1.0:
                chat_limited += 1
            else:
                global_limited += 1
    return chat_limited, global_limited


def fill_key(fill: Fill, language: str) -> tuple[str, str]:
    """What shows a fill on a line of its chat: its amount and its price, as the user reads them."""
    return (amount(fill.notice.amount, language), price(fill.notice.price, language))


def verify_content(
    result: PhaseResult,
    fills: Sequence[Fill],
    users: Sequence[BenchUser],
    sent: Sequence[dict[str, Any]],
) -> None:
    """Every fill's amount and price on a line of its own user's chat, exactly once.

    A fill goes alone (one fill due) or as a row of a digest table; either way one line
    shows both its amount and its price, as separate words.
    """
    by_user = {u.user_id: u for u in users}
    expected: dict[int, Counter[tuple[str, str]]] = {}
    for fill in fills:
        user = by_user[fill.user_id]
        language = languages.from_client(user.client_language)
        expected.setdefault(user.telegram_id, Counter())[fill_key(fill, language)] += 1
    lines: dict[int, list[set[str]]] = {}
    for message in sent:
        text = message.get("text") or ""
        chat = int(message["chat"]["id"])
        words = [set(line.split()) for line in text.splitlines()]
        lines.setdefault(chat, []).extend(words)
        if text.startswith("🧾"):
            result.digests += 1
    for chat, wanted in expected.items():
        found: Counter[tuple[str, str]] = Counter()
        for words in lines.get(chat, []):
            for key in wanted:
                if key[0] in words and key[1] in words:
                    found[key] += 1
        missing = sum(max(0, count - found[key]) for key, count in wanted.items())
        repeated = sum(max(0, found[key] - count) for key, count in wanted.items())
        result.fills_shown += sum(min(count, found[key]) for key, count in wanted.items())
        result.fills_missing += missing
        result.fills_repeated += repeated
        result.missing_chats += bool(missing)
        result.duplicate_chats += bool(repeated)


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


async def run_phase(
    args: argparse.Namespace,
    name: str,
    url: str,
    database: Database,
    emulator: EmulatorProcess,
    users: Sequence[BenchUser],
    rng: random.Random,
) -> PhaseResult:
    fill_rate = args.fill_rate if name == "steady" else 0.0
    fills = make_fills(users, args.notifications, rng, name, fill_rate)
    result = PhaseResult(name, len(fills), len(users), fill_rate)
    await emulator.fresh_windows()

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=Path(args.data_dir),
        database_url=url,
        master_key=SecretStr(generate_master_key()),
        exchange_api_urls={"binance": NOWHERE, "bybit": NOWHERE},
        telegram_token=SecretStr(DEFAULT_TOKEN),
        telegram_api_url=emulator.api_base_url,
        discord_api_url=f"{NOWHERE}/api/v10",
        stripe_api_base=NOWHERE,
        market_data="replay",
        **({} if args.digest_hold_ms is None else {"digest_hold_ms": args.digest_hold_ms}),
    )
    result.digest_hold_ms = settings.digest_hold_ms
    app = App.from_settings(settings, database)
    application = build_application(app)  # exactly the production front end
    limiter = application.bot.rate_limiter
    assert isinstance(limiter, TelegramRateLimiter)

    start_at = time.time() + 3.0  # a spawned process imports the product first
    options = ProducerOptions(
        tick=args.tick,
        bots_per_shard=EngineConfig.bots_per_shard,
        order_workers=args.order_workers,
        order_seconds=args.order_ms / 1000,
    )
    result.producer = options
    spawn = multiprocessing.get_context("spawn")
    timings = spawn.Queue()
    producer = spawn.Process(
        target=producer_main,
        args=(url, fills, options, start_at, timings),
        name=f"producer-{name}",
    )
    producer.start()
    profiler = cProfile.Profile() if args.profile else None
    async with application:  # initialize(): getMe against the emulator
        delivery = TelegramDelivery(application.bot, app)
        stop = asyncio.Event()
        cpu0, emu_cpu0 = time.process_time(), emulator.cpu_seconds()
        before = cpu_by_pid()
        if profiler is not None:
            profiler.enable()
        runner = asyncio.create_task(delivery.run(stop))
        deadline = (
            time.monotonic() + 120 + len(fills) / 20 + (len(fills) / fill_rate if fill_rate else 0)
        )
        write_done: float | None = None
        while True:
            await asyncio.sleep(1.0)
            backlog = await outbox.pending_count(database, Platform.TELEGRAM)
            result.max_backlog = max(result.max_backlog, backlog)
            if write_done is None and not producer.is_alive():
                if producer.exitcode != 0:
                    raise RuntimeError(f"the producer failed (exit code {producer.exitcode})")
                write_done = time.time()
            done = delivery.stats.sent + delivery.stats.failed + delivery.stats.unreachable
            if write_done is not None and done >= len(fills) and backlog == 0:
                break
            if runner.done() or time.monotonic() > deadline:
                result.timed_out = True
                break
        async with database.sessions() as session:  # our own PostgreSQL sessions
            ours = set(
                await session.scalars(
                    text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
                )
            )
        ours |= {os.getpid(), emulator.pid}
        result.outside_cpu = outside_cpu(before, cpu_by_pid(), ours)
        stop.set()
        await runner
        if profiler is not None:
            profiler.disable()
        result.delivery_cpu = time.process_time() - cpu0
        result.emulator_cpu = emulator.cpu_seconds() - emu_cpu0
    result.producer_timings = timings.get(timeout=30)
    producer.join(timeout=30)
    start_at += result.producer_timings["late"]  # the first write
    result.write_seconds = (write_done or time.time()) - start_at
    result.client_retries = limiter.retries
    result.released = delivery.stats.retried
    result.failed = delivery.stats.failed + delivery.stats.unreachable
    result.latencies = list(delivery.stats.latencies)

    # What the database says: every delivery acknowledged "sent"; latency per priority.
    async with database.sessions() as session:
        rows = (
            await session.execute(
                select(
                    NotificationDelivery.priority,
                    NotificationDelivery.outcome,
                    NotificationDelivery.delivered_at,
                    NotificationDelivery.attempts,
                    Notification.created_at,
                )
                .join(Notification, Notification.id == NotificationDelivery.notification_id)
                .where(Notification.dedupe_key.like(f"bench:{name}:%"))
            )
        ).all()
    result.not_sent_in_db = sum(1 for row in rows if row.outcome != "sent")
    result.claimed_again = sum(1 for row in rows if row.attempts > 1)
    for row in rows:
        if row.delivered_at is not None:
            result.latencies_by_priority.setdefault(row.priority, []).append(
                (row.delivered_at - row.created_at).total_seconds()
            )

    # What the emulator saw.
    requests = await emulator.call("GET", "requests")
    stats = await emulator.call("GET", "stats")
    result.emulator_429 = int(stats["rate_limited"])
    sends = sorted(
        (r for r in requests if r["method"] == "sendMessage" and r["status"] == 200),
        key=lambda r: r["monotonic"],
    )
    result.accepted = len(sends)
    if sends:
        times = [r["monotonic"] for r in sends]
        result.span_seconds = times[-1] - times[0]
        result.total_seconds = sends[-1]["time"] - start_at
        lo = 0
        for hi, t in enumerate(times):
            while times[lo] <= t - 1.0:
                lo += 1
            result.busiest_second = max(result.busiest_second, hi - lo + 1)
        last_in_chat: dict[int, float] = {}
        for r in sends:
            chat = int(r["chat_id"])
            if chat in last_in_chat:
                result.min_chat_gap = min(result.min_chat_gap, r["monotonic"] - last_in_chat[chat])
            last_in_chat[chat] = r["monotonic"]
    result.limited_chat, result.limited_global = classify_429s(requests)
    verify_content(result, fills, users, await emulator.call("GET", "sent"))
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        result.profile = out.getvalue()
    await app.pool.close()
    return result


def report(result: PhaseResult) -> bool:
    lat = result.latencies
    ok = (
        (result.total_seconds <= GOAL_BURST_SECONDS or result.name == "steady")
        and result.emulator_429 == 0
        and result.client_retries == 0
        and result.released == 0
    )
    exactly_once = (
        result.fills_shown == result.notifications
        and result.fills_repeated == 0
        and result.not_sent_in_db == 0
        and result.duplicate_chats == 0
        and result.missing_chats == 0
    )
    assert result.producer is not None
    producer = result.producer
    t = result.producer_timings
    if result.fill_rate:
        how = f"steady: {result.fill_rate:g} fills/s"
    else:
        how = "burst: one candle close, every bot decides in the same tick"
    if producer.tick or not result.fill_rate:
        how += f", paper fills written per tick (every {producer.tick:g} s) and shard"
    else:
        how += ", each fill in its own transaction"
    print(f"\n== {result.name}: {result.notifications} notifications, {result.users} users ({how})")
    print(
        f"  engine side            {t.get('bots', 0):.0f} bots deciding in a tick at most, "
        f"{t.get('shards', 0):.0f} shards of {producer.bots_per_shard}; "
        f"live orders settled by {producer.order_workers} workers, "
        f"{producer.order_seconds * 1000:g} ms exchange round trip each; "
        f"digest hold {result.digest_hold_ms} ms"
    )
    print(
        f"  written in             {result.write_seconds:8.1f} s      (slowest tick write "
        f"{t.get('tick_write_max', 0):.2f} s, last paper fill at {t.get('last_paper', 0):.1f} s, "
        f"last live fill at {t.get('last_live', 0):.1f} s)"
    )
    print(
        f"  sustained              {result.rate:8.2f} msgs/s  "
        f"({result.accepted} accepted over {result.span_seconds:.1f} s, first to last; "
        f"{result.notifications / max(result.span_seconds, 1e-9):.2f} notifications/s)"
    )
    print(
        f"  messages               {result.accepted:8d}        ({result.digests} digests; "
        f"{result.notifications / max(result.accepted, 1):.2f} notifications a message)"
    )
    print(f"  busiest second         {result.busiest_second:8d} msgs   (emulator limit 30)")
    print(f"  closest two in a chat  {result.min_chat_gap:8.3f} s      (emulator limit 1.000)")
    print(
        f"  429s                   {result.emulator_429:8d} answered by the emulator, "
        f"{result.client_retries} retried by the client, {result.released} released to the outbox"
    )
    if result.emulator_429:
        print(
            f"    of which             {result.limited_chat} per-chat (1/s), "
            f"{result.limited_global} bot-wide (30/s)"
        )
    print(
        f"  fill -> accepted       p50 {percentile(lat, 50):7.2f} s   "
        f"p99 {percentile(lat, 99):7.2f} s   max {max(lat, default=math.nan):7.2f} s"
    )
    by_priority = "   ".join(
        f"{label} p50 {percentile(values, 50):.2f} s p99 {percentile(values, 99):.2f} s"
        for priority, label in ((0, "free"), (1, "pro"), (2, "premium"))
        if (values := result.latencies_by_priority.get(priority))
    )
    print(f"  by plan (db ack time)  {by_priority}")
    print(f"  outbox backlog max     {result.max_backlog:8d}")
    print(f"  total (1st write -> last accepted) {result.total_seconds:8.1f} s")
    print(
        f"  CPU                    delivery process {result.delivery_cpu:.1f} s, "
        f"emulator {result.emulator_cpu:.1f} s; outside this run (other benchmarks...) "
        f"{result.outside_cpu:.1f} s"
    )
    print(
        "  exactly once           "
        + ("yes" if exactly_once else "NO")
        + f"  (fills shown in their chat: {result.fills_shown}/{result.notifications}, "
        f"missing {result.fills_missing}, repeated {result.fills_repeated}; "
        f"db not sent: {result.not_sent_in_db}, claimed more than once: "
        f"{result.claimed_again}, chats with duplicates: "
        f"{result.duplicate_chats}, chats missing some: {result.missing_chats}, "
        f"failed: {result.failed})"
    )
    if result.timed_out:
        print("  TIMED OUT before everything was delivered")
    if result.profile:
        print(result.profile)
    goal = "met" if ok and exactly_once and not result.timed_out else "MISSED"
    if result.name == "steady":
        # A digest holds several fills: messages/s no longer measure keeping up; a backlog
        # that grows does, and it shows at the end as a long wait after the last write.
        lag = result.total_seconds - result.write_seconds
        keep_up = lag <= KEEP_UP_LAG_SECONDS
        print(
            f"  goal (keeps up with {result.fill_rate:g}/s: last accepted {lag:.1f} s after the "
            f"last write, at most {KEEP_UP_LAG_SECONDS:g}; 0 429s, exactly once): "
            + ("met" if keep_up and goal == "met" else "MISSED")
        )
        return keep_up and goal == "met"
    print(f"  goal (all within {GOAL_BURST_SECONDS:g} s, 0 429s, exactly once): {goal}")
    return goal == "met"


# --- main ---------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, url: str, emulator: EmulatorProcess) -> bool:
    rng = random.Random(args.seed)
    users = make_users(args.users, rng)
    database = Database(url)
    try:
        t0 = time.perf_counter()
        await seed_users(database, users)
        await emulator.add_users(users)
        print(
            f"setup: {len(users)} users with Telegram identities in PostgreSQL and the emulator "
            f"({time.perf_counter() - t0:.1f} s)"
        )
        ok = True
        phases = ("steady", "burst") if args.phases == "both" else (args.phases,)
        for name in phases:
            result = await run_phase(args, name, url, database, emulator, users, rng)
            ok = report(result) and ok
            await asyncio.sleep(2)  # let every per-chat window of the emulator expire
        return ok
    finally:
        await database.dispose()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Outbox -> real python-telegram-bot -> Bot API emulator with real limits."
    )
    parser.add_argument("--notifications", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--phases", choices=("steady", "burst", "both"), default="both")
    parser.add_argument(
        "--fill-rate", type=float, default=GOAL_RATE, help="steady phase: fills per second"
    )
    parser.add_argument(
        "--tick",
        type=float,
        default=EngineConfig.tick_seconds,
        help="seconds between the engine's ticks, each writing its fills together "
        "(steady with 0: each fill in its own transaction at its own time)",
    )
    parser.add_argument(
        "--order-workers",
        type=int,
        default=2,
        help="processes settling live orders (Celery's default concurrency: the CPUs)",
    )
    parser.add_argument(
        "--order-ms", type=float, default=0.0, help="the exchange's round trip for one order"
    )
    parser.add_argument(
        "--digest-hold-ms", type=int, default=None, help="the setting (default: its default)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="cProfile the delivery process")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rt_bench_notify_") as data_dir:
        args.data_dir = data_dir
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    if args.users < 1 or args.notifications < 1:
        raise SystemExit("--users and --notifications must be positive")
    missing = services.missing_services()
    if any("PostgreSQL" in m for m in missing):
        raise SystemExit("\n".join(missing))
    print(
        f"bench/notify.py: {args.notifications} notifications for {args.users} users, "
        f"phases={args.phases}, {os.cpu_count()} CPUs"
    )
    name = services.create_database("rt_bench_notify")
    emulator = EmulatorProcess()
    try:
        url = services.sqlalchemy_url(name)
        migrate.upgrade(url)
        emulator.start()
        print(f"emulator: {emulator.base_url} (own process, default limits: 30/s, 1/s per chat)")
        ok = asyncio.run(run(args, url, emulator))
    finally:
        emulator.stop()
        with contextlib.suppress(Exception):
            services.drop_database(name)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
