"""Bounded load tests (the full-size runs are bench/chat_load.py and bench/notify.py).

* 150 users at once through one ChatCore on PostgreSQL, a realistic mix of commands and
  button presses (some new users send two messages before the first is answered, as
  PTB's concurrent updates then handle them at once): every message answered, never with
  the internal-error apology.
* 300 notifications for 100 users through the real python-telegram-bot client and
  TelegramDelivery to the Bot API emulator with Telegram's limits: each delivered exactly
  once, no 429 ever answered.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select, text

from bots.core.context import ChatContext
from bots.core.core import ChatCore
from bots.core.rate_limit import RateLimiter
from bots.core.replies import Reply
from bots.telegram.delivery import TelegramDelivery
from bots.telegram.rate_limiter import TelegramRateLimiter
from bots.telegram.service import build_application
from db import outbox
from db.models import Base, ChatIdentity, NotificationDelivery, Plan, Platform, User
from db.session import Database
from db.vault import generate_master_key
from robotrader.app import App
from robotrader.settings import Settings
from tests.conftest import NOWHERE
from tests.emulators.telegram import DEFAULT_TOKEN, TelegramEmulator
from tests.notification_samples import SAMPLES  # a trade opened, then one closed

INTERNAL_ERROR = re.compile(r"\(ref [0-9a-f]{8}\)")


@pytest.fixture
async def pg_database(migrated_postgres: str) -> AsyncIterator[Database]:
    """The run's PostgreSQL database (these tests are about PostgreSQL under load)."""
    database = Database(migrated_postgres)
    yield database
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with database.transaction() as session:
        await session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await database.dispose()


def _settings(tmp_path: Path, url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": url,
        "master_key": SecretStr(generate_master_key()),
        "exchange_api_urls": {"binance": NOWHERE, "bybit": NOWHERE},
        "telegram_api_url": f"{NOWHERE}/bot",
        "discord_api_url": f"{NOWHERE}/api/v10",
        "stripe_api_base": NOWHERE,
        "market_data": "replay",
    }
    return Settings(_env_file=None, **{**values, **extra})  # type: ignore[call-arg]


# --- many users at once through the chat core ---------------------------------------------------

USERS = 150
MIX = (
    ("/help", 6), ("/bots", 10), ("/status", 10), ("/positions", 8), ("/profit", 8),
    ("/trades", 6), ("/plan", 5), ("/newbot", 8), ("/startbot", 6), ("/stopbot", 5),
    ("/language", 2), ("button", 14), ("unknown", 2), ("typo", 3), ("text", 2),
)  # fmt: skip


async def _act(
    core: ChatCore, ctx: ChatContext, payload: str, problems: list[str], latencies: list[float]
) -> Sequence[Reply]:
    started = time.perf_counter()
    try:
        if payload.startswith("v1:"):
            replies: Sequence[Reply] = await core.handle_action(ctx, payload)
        else:
            replies = await core.handle_text(ctx, payload)
    except Exception as exc:
        problems.append(f"{payload!r} raised {type(exc).__name__}: {exc}")
        return []
    latencies.append(time.perf_counter() - started)
    if not replies:
        problems.append(f"{payload!r}: no reply in a private chat")
    for reply in replies:
        if INTERNAL_ERROR.search(reply.plain()):
            problems.append(f"{payload!r}: {reply.plain()[:200]}")
    return replies


async def _user_session(
    core: ChatCore, index: int, problems: list[str], latencies: list[float]
) -> None:
    rng = random.Random(index)
    ctx = ChatContext(
        platform=Platform.TELEGRAM,
        platform_user_id=f"load{index}",
        chat_id=f"load{index}",
        is_private=True,
        client_language=rng.choice(("pt-br", "en")),
        display_name=f"Load {index}",
    )
    buttons: list[str] = []
    bots: list[str] = []
    confirm = False
    await asyncio.sleep(rng.uniform(0, 1.0))  # users arrive over a second
    for step in range(rng.randint(10, 16)):
        if step == 0:
            kind, payload = "/start", "/start"
        elif confirm:
            kind, payload, confirm = "button", "v1:nbc", False
        else:
            kind = rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
            payload = {
                "/newbot": f"/newbot binance {rng.choice(('BTC/USDT', 'ETH/USDT'))} "
                "sma_crossover 500",
                "/startbot": f"/startbot {bots[0]}" if bots else "/startbot",
                "/stopbot": f"/stopbot {bots[0]}" if bots else "/stopbot",
                "/language": "/language pt",
                "/trades": "/trades 5",
                "button": rng.choice(buttons) if buttons else "/bots",
                "unknown": "/sell BTC",
                "typo": "/stauts",
                "text": "quanto lucrei hoje?",
            }.get(kind, kind)
        payloads = [payload]
        if step == 0 and index % 10 == 0:  # a second message before /start is answered
            payloads.append("/help")
        answers = await asyncio.gather(*(_act(core, ctx, p, problems, latencies) for p in payloads))
        replies = answers[0]
        actions = [b.action for r in replies for row in r.buttons for b in row if b.action]
        if actions:
            buttons = actions
        confirm = kind == "/newbot" and "v1:nbc" in actions
        if payload == "v1:nbc":
            bots += re.findall(r"sma_crossover-\d+", " ".join(r.plain() for r in replies))
        await asyncio.sleep(rng.uniform(0.02, 0.2))  # think time, compressed


async def test_150_users_at_once_get_answers_never_apologies(
    pg_database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = App.from_settings(_settings(tmp_path, pg_database.url), pg_database)
    # Think time is compressed to fractions of a second here: the per-user limiter (12 at
    # once, then one a second) would answer "slow down" to what are 5-second pauses in life.
    core = ChatCore(app, rate_limiter=RateLimiter(rate=100, burst=100))
    problems: list[str] = []
    latencies: list[float] = []
    started = time.monotonic()
    with caplog.at_level(logging.ERROR):
        await asyncio.gather(*(_user_session(core, i, problems, latencies) for i in range(USERS)))
    elapsed = time.monotonic() - started
    await app.pool.close()
    bugs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("chat.error")]
    assert problems == [] and bugs == []
    assert len(latencies) >= USERS * 10
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)]
    assert elapsed < 60 and p99 < 5.0, (
        f"{len(latencies)} actions in {elapsed:.1f} s, p99 {p99:.2f} s"
    )


# --- notifications through the real Telegram client ---------------------------------------------

NOTIFY_USERS = 100
PER_USER = 3
TELEGRAM_IDS = 660_000_000


async def test_300_notifications_delivered_once_each_without_a_429(
    pg_database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    claimed_batches: list[tuple[int, int]] = []
    real_claim = outbox.claim

    async def recording_claim(*args: Any, **kwargs: Any) -> list[outbox.ClaimedNotification]:
        got = await real_claim(*args, **kwargs)
        claimed_batches.append((len({n.user_id for n in got}), kwargs.get("limit", 100)))
        return got

    monkeypatch.setattr(outbox, "claim", recording_claim)
    with TelegramEmulator() as emulator:  # Telegram's limits: 30/s, 1/s per chat, 429s
        async with pg_database.transaction() as session:
            for u in range(NOTIFY_USERS):
                chat = TELEGRAM_IDS + u
                emulator.add_user(chat, f"U{u}", language_code=("pt-br", "en")[u % 2])
                user = User(plan=Plan.PRO if u % 10 == 0 else Plan.FREE)
                session.add(user)
                await session.flush()
                session.add(
                    ChatIdentity(
                        user_id=user.id, platform=Platform.TELEGRAM,
                        platform_user_id=str(chat), chat_id=str(chat), client_language="en",
                    )
                )  # fmt: skip
        # Written at once (one engine tick after a big move), users interleaved.
        async with pg_database.transaction() as session:
            users = (await session.scalars(select(User.id).order_by(User.id))).all()
            for n in range(PER_USER):
                for user_id in users:
                    await outbox.add_notification(
                        session, user_id=user_id, notice=SAMPLES[n % 2],
                        dedupe_key=f"load:{user_id}:{n}", priority=0,
                    )  # fmt: skip

        settings = _settings(
            tmp_path,
            pg_database.url,
            telegram_token=SecretStr(DEFAULT_TOKEN),
            telegram_api_url=emulator.api_base_url,
        )
        app = App.from_settings(settings, pg_database)
        application = build_application(app)  # as production builds it
        limiter = application.bot.rate_limiter
        assert isinstance(limiter, TelegramRateLimiter)
        total = NOTIFY_USERS * PER_USER
        async with application:
            delivery = TelegramDelivery(application.bot, app)
            stop = asyncio.Event()
            runner = asyncio.create_task(delivery.run(stop))
            for _ in range(200):  # 40 s at most
                if delivery.stats.sent >= total:
                    break
                await asyncio.sleep(0.2)
            stop.set()
            await runner
        await app.pool.close()

        sends = [r for r in emulator.requests if r.method == "sendMessage" and r.status == 200]
        # Written before delivery started: each chat's three come as one digest.
        assert Counter(r.chat_id for r in sends) == {
            TELEGRAM_IDS + u: 1 for u in range(NOTIFY_USERS)
        }, "every chat once, none twice"
        assert all(text.startswith("🧾 3 ") for text in (m["text"] for m in emulator.sent()))
        assert emulator.stats.rate_limited == 0
        assert limiter.retries == 0 and delivery.stats.retried == 0
        async with pg_database.sessions() as session:
            rows = (
                await session.execute(
                    select(NotificationDelivery.outcome, NotificationDelivery.attempts)
                )
            ).all()
        assert len(rows) == total
        assert {(outcome, attempts) for outcome, attempts in rows} == {("sent", 1)}
        assert all(got <= limit for got, limit in claimed_batches), "a claim took over its limit"
        times = sorted(r.monotonic for r in sends)
        assert (len(sends) - 1) / (times[-1] - times[0]) >= 20  # near Telegram's pace (28/s)
