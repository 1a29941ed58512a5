"""Crash safety of notifications: the Telegram process is SIGKILLed mid-burst and restarted.

Every notification must reach the Bot API emulator, and none that was
acknowledged before the kill may be sent again.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from db import migrate
from db.models import BotMode, ChatIdentity, NotificationDelivery, OrderSide, Platform, User
from db.notifications import TradeOpenedNotice
from db.outbox import add_notification
from db.session import Database
from db.vault import generate_master_key
from tests import services
from tests.emulators.telegram import DEFAULT_TOKEN, TelegramEmulator

USERS = 40
PER_USER = 5  # 200 notifications, a digest of five per chat: 40 messages in ~2 s


@pytest.fixture
def crash_database() -> Iterator[str]:
    name = services.create_database("rt_crash")
    url = services.sqlalchemy_url(name)
    migrate.upgrade(url)
    yield url
    services.drop_database(name)


def _start(env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "robotrader", "telegram"],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def _acknowledged(database: Database) -> set[int]:
    async with database.sessions() as session:
        rows = await session.scalars(
            select(NotificationDelivery.notification_id).where(
                NotificationDelivery.delivered_at.is_not(None)
            )
        )
        return set(rows)


async def test_killed_delivery_loses_nothing_and_repeats_nothing_acknowledged(
    crash_database: str, tmp_path: Path
) -> None:
    database = Database(crash_database)
    with TelegramEmulator() as emulator:
        marker_of: dict[int, str] = {}
        async with database.transaction() as session:
            for u in range(USERS):
                chat = 700_000 + u
                emulator.add_user(chat, f"U{u}", language_code="en")
                user = User(language="en")
                session.add(user)
                await session.flush()
                session.add(
                    ChatIdentity(
                        user_id=user.id,
                        platform=Platform.TELEGRAM,
                        platform_user_id=str(chat),
                        chat_id=str(chat),
                    )
                )
                await session.flush()
                for n in range(PER_USER):
                    marker = f"crash-{u}-{n}"
                    notice = TradeOpenedNotice(
                        bot_id=n + 1, bot=marker, mode=BotMode.PAPER, symbol="BTC/USDT",
                        side=OrderSide.BUY, reason="entry", amount=Decimal("0.01"),
                        price=Decimal(90000), value=Decimal(900),
                    )  # fmt: skip
                    await add_notification(
                        session, user_id=user.id, notice=notice, dedupe_key=marker
                    )
        async with database.sessions() as session:
            from db.models import Notification

            for notification_id, key in await session.execute(
                select(Notification.id, Notification.dedupe_key)
            ):
                marker_of[notification_id] = key

        env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOTRADER_")}
        env.update(
            ROBOTRADER_DATABASE_URL=crash_database,
            ROBOTRADER_MASTER_KEY=generate_master_key(),
            ROBOTRADER_TELEGRAM_TOKEN=DEFAULT_TOKEN,
            ROBOTRADER_TELEGRAM_API_URL=emulator.api_base_url,
            ROBOTRADER_DATA_DIR=str(tmp_path),
            ROBOTRADER_WEB_PORT="0",
        )
        process = _start(env, tmp_path)
        deadline = time.monotonic() + 60
        # The process under test is another process: its progress can only be polled.
        while emulator.stats.messages_sent < 15 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        acknowledged = await _acknowledged(database)
        assert 0 < len(acknowledged) < USERS * PER_USER, "killed mid-burst"

        process = _start(env, tmp_path)
        try:
            deadline = time.monotonic() + 120
            while (  # noqa: ASYNC110 - polling another process's progress
                len(await _acknowledged(database)) < USERS * PER_USER
                and time.monotonic() < deadline
            ):
                await asyncio.sleep(0.5)
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr.decode()[-2000:]

        # Each notification's bot is named after it: alone ("bot crash-1-2 (...)") or as
        # the title of its rows in a digest ("crash-1-2 · paper").
        id_of = {marker: notification_id for notification_id, marker in marker_of.items()}
        sent: Counter[int] = Counter()
        for message in emulator.sent():
            for marker in re.findall(r"crash-\d+-\d+\b", message.get("text") or ""):
                sent[id_of[marker]] += 1
        assert set(sent) == set(marker_of), "every notification reached Telegram"
        repeated_after_ack = [marker_of[n] for n in acknowledged if sent[n] != 1]
        assert repeated_after_ack == []
        assert emulator.stats.rate_limited == 0
    await database.dispose()
