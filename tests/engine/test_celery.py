"""Celery with a real worker on the real Redis: ticks fan out, orders are never doubled."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
from celery.contrib.testing.worker import start_worker
from sqlalchemy import func, select

from db.models import Order
from engine import celery_app
from engine.context import EngineConfig
from robotrader.app import App
from tests.engine.conftest import make_user, running_bot
from tests.services import REDIS_URL

# One key prefix per test run: runs sharing the machine's Redis never see each other's tasks.
# (Per test would not do: Celery's producer pool keeps the transport options it started with.)
RUN_PREFIX = f"rt-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def celery_engine(app: App) -> Iterator[None]:
    prefix = RUN_PREFIX
    config = EngineConfig(
        database_url=app.database.url, vault=app.vault, redis_url=REDIS_URL,
        market_data="replay", bots_per_shard=3,
    )  # fmt: skip
    celery_app.configure(config, REDIS_URL, namespace=prefix)

    with start_worker(
        celery_app.app, pool="solo", perform_ping_check=False, loglevel="WARNING",
        queues=["ticks", "orders"],
    ):  # fmt: skip
        yield
    celery_app.state.shutdown()
    celery_app.state.config = None


async def _orders(app: App) -> int:
    async with app.database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Order)) or 0)


async def _wait_for_orders(app: App, expected: int, within: float = 30) -> int:
    deadline = time.monotonic() + within
    count = await _orders(app)
    while count < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        count = await _orders(app)
    return count


async def test_worker_ticks_shards_and_duplicates_change_nothing(
    app: App, celery_engine: None
) -> None:
    user = await make_user(app)
    for i in range(7):  # 7 bots, 3 per shard -> 3 shards
        await running_bot(app, user, name=f"dca-{i}")

    celery_app.tick.delay()
    assert await _wait_for_orders(app, 7) == 7

    # The same shard tasks delivered again (a redelivery after a crash, a duplicate beat).
    now_ms = int(time.time() * 1000)
    for _ in range(2):
        for shard in range(3):
            celery_app.tick_shard.delay(shard, 3, now_ms)
    await asyncio.sleep(3)
    assert await _orders(app) == 7
