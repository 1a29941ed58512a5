"""A chat with only fills due waits a moment for more (one digest), never billing, never long.

Through the real Telegram front end and its delivery loop, against the Bot API emulator.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import select

from db.models import NotificationDelivery
from db.notifications import Notice, PaymentFailedNotice
from db.outbox import add_notification
from robotrader.use_cases.notification_delivery import LONGEST_HOLD_IN_QUIET_TIMES
from tests.bots.telegram.conftest import RunningBot
from tests.bots.telegram.test_digests import _delivered, _registered, _rows_of, _texts, fills

HOLD_SECONDS = 1.5
LONGEST_SECONDS = HOLD_SECONDS * LONGEST_HOLD_IN_QUIET_TIMES


@pytest.fixture
def extra_settings() -> dict[str, Any]:
    return {"digest_hold_ms": int(HOLD_SECONDS * 1000)}


async def _write(bot: RunningBot, user_id: int, notice: Notice, key: str) -> float:
    """``notice`` in a transaction of its own (a live order booked, a shard written)."""
    async with bot.app.database.transaction() as session:
        await add_notification(session, user_id=user_id, notice=notice, dedupe_key=key)
    return time.time()


def _accepted_at(bot: RunningBot, chat: int) -> list[float]:
    return [
        r.time
        for r in bot.emulator.requests
        if r.method == "sendMessage" and r.chat_id == chat and r.status == 200
    ]


async def test_fills_written_moments_apart_go_as_one_digest(telegram_bot: RunningBot) -> None:
    chat, user_id = await _registered(telegram_bot, "en")
    before = len(_texts(telegram_bot, chat))
    trades = fills(3)
    for n, notice in enumerate(trades):
        await _write(telegram_bot, user_id, notice, f"apart:{n}")
        await asyncio.sleep(0.3)
    await _delivered(telegram_bot)
    texts = _texts(telegram_bot, chat)[before:]
    assert len(texts) == 1 and texts[0].startswith("🧾 3 trades"), texts
    for notice in trades:
        assert _rows_of(texts[0], notice, "en") == 1


async def test_a_trickle_waits_no_longer_than_the_bound_and_billing_never_waits(
    telegram_bot: RunningBot,
) -> None:
    chat, user_id = await _registered(telegram_bot, "en")
    payer_chat, payer_id = await _registered(telegram_bot, "en")
    before = len(_texts(telegram_bot, chat))
    payer_before = len(_accepted_at(telegram_bot, payer_chat))
    trades = fills(30)
    first_written = billing_written = 0.0
    for n, notice in enumerate(trades):  # a fill every 0.3 s: never quiet for 1.5 s
        written = await _write(telegram_bot, user_id, notice, f"trickle:{n}")
        first_written = first_written or written
        if n == 5:  # a fill of the payer's, then a billing notice: neither may wait
            await _write(telegram_bot, payer_id, fills(1, start=40)[0], "payer:fill")
            portal = PaymentFailedNotice(portal_url="https://billing.example/portal")
            billing_written = await _write(telegram_bot, payer_id, portal, "payer:billing")
        await asyncio.sleep(0.3)
    await _delivered(telegram_bot)

    payer_times = _accepted_at(telegram_bot, payer_chat)[payer_before:]
    assert len(payer_times) == 2  # the billing notice, then the fill: at once
    assert payer_times[0] - billing_written < HOLD_SECONDS

    accepted = _accepted_at(telegram_bot, chat)
    texts = _texts(telegram_bot, chat)[before:]
    assert len(texts) == len(accepted[-len(texts) :]) >= 2
    first_sent = accepted[-len(texts)]
    # Held while fills kept coming, but out by the bound (plus a claim round and a send).
    assert LONGEST_SECONDS - 0.2 <= first_sent - first_written <= LONGEST_SECONDS + 1.5
    assert texts[0].startswith("🧾"), texts[0]
    # Every fill exactly once, each delivery claimed once.
    for notice in trades:
        assert sum(_rows_of(t, notice, "en") for t in texts) == 1, notice
    async with telegram_bot.app.database.sessions() as session:
        rows = (
            await session.execute(
                select(NotificationDelivery.outcome, NotificationDelivery.attempts).where(
                    NotificationDelivery.user_id == user_id
                )
            )
        ).all()
    assert len(rows) == 30 and set(rows) == {("sent", 1)}
