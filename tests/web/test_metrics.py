"""/metrics: ticks, tick duration, orders by result, notifications sent/failed, queue depth."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from telegram import Bot as TelegramBot

from bots.telegram.delivery import TelegramDelivery
from db import outbox
from db.models import Platform
from engine.market_data.cache import MemoryCandleCache
from engine.market_data.feed import MarketDataFeed
from engine.metrics import observe_tick
from engine.tick import run_tick
from robotrader.logging_setup import redact
from tests.emulators.telegram import DEFAULT_TOKEN, TelegramEmulator
from tests.web.conftest import Web

NOW = 1_764_000_000_000
_chats = itertools.count(424_001)


@pytest.fixture(scope="module")
def telegram_emulator() -> Iterator[TelegramEmulator]:
    with TelegramEmulator() as emulator:
        yield emulator


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _notifications(result: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("robotrader_notifications_total", (("channel", "telegram"), ("result", result)))


def _samples(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_cover_the_engine_the_outbox_and_deliveries(
    web: Web, telegram_emulator: TelegramEmulator
) -> None:
    def delivered(samples: Samples, result: str) -> float:
        return samples.get(_notifications(result), 0.0)

    before = _samples((await web.client.get("/metrics")).text)

    # The engine ticks (as engine/runner.py does, observing each report) ...
    telegram_user = next(_chats)  # a new chat: Telegram's per-chat limit starts afresh
    telegram_emulator.add_user(telegram_user, "Met", language_code="en")
    from robotrader.use_cases.accounts import register

    account = await register(
        web.app, Platform.TELEGRAM, str(telegram_user), chat_id=str(telegram_user),
        client_language="en",
    )  # fmt: skip
    async with web.app.database.transaction() as session:
        from db.models import User

        user = await session.get(User, account.user_id)
        assert user is not None
        user.plan = "pro"  # type: ignore[assignment]
    await web.bot(account.user_id, running=True)
    feed = MarketDataFeed(web.app.pool, MemoryCandleCache(), mode="replay")
    report = await run_tick(web.app.database, feed, now_ms=NOW)
    assert report.orders_filled == 1
    observe_tick(report)

    pending = await outbox.pending_count(web.app.database, Platform.TELEGRAM)
    assert pending >= 1  # the fill is waiting for delivery
    metrics = await web.client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    samples = _samples(metrics.text)
    assert samples[("robotrader_outbox_pending", (("channel", "telegram"),))] == pending
    assert samples[("robotrader_ticks_total", ())] >= 1
    assert samples[("robotrader_tick_duration_seconds_count", ())] >= 1
    assert samples[("robotrader_orders_total", (("result", "filled"),))] >= 1
    runners = [k for k in samples if k[0] == "robotrader_engine_last_tick_age_seconds"]
    assert runners and all(samples[k] >= 0 for k in runners)

    # ... and the Telegram front end delivers, counting what it sent.
    redact(DEFAULT_TOKEN)  # as the Telegram service does: the token is in every request URL
    bot = TelegramBot(DEFAULT_TOKEN, base_url=telegram_emulator.api_base_url)
    async with bot:
        claimed = await TelegramDelivery(bot, web.app).deliver_pending()
    assert claimed == pending
    samples = _samples((await web.client.get("/metrics")).text)
    sent = delivered(samples, "sent") - delivered(before, "sent")
    # Telegram allows one message a second per chat: the second may be told to wait (retried).
    retried = delivered(samples, "retried") - delivered(before, "retried")
    assert sent >= 1 and sent + retried == pending
    assert _notifications("failed") in samples
    assert samples[("robotrader_outbox_pending", (("channel", "telegram"),))] == pending - sent
    assert re.search(r"^# TYPE robotrader_tick_duration_seconds histogram$", metrics.text, re.M)


async def test_healthz_reports_the_database_and_engine(web: Web) -> None:
    answer = await web.client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json()["database"] == "ok" and answer.json()["status"] == "ok"


async def test_metrics_can_require_a_bearer_token(web: Web) -> None:
    token = "FAKETOKEN-metrics-0001"
    assert (await web.client.get("/metrics")).status_code == 200  # unset: open, as before
    web.app.settings = web.app.settings.model_copy(update={"metrics_token": SecretStr(token)})
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
        answer = await web.client.get("/metrics", headers=headers)
        assert answer.status_code == 401, headers
        assert "robotrader_" not in answer.text
    answer = await web.client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and "robotrader_outbox_pending" in answer.text
