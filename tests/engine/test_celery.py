"""Celery with a real worker on the real Redis: ticks fan out, orders are never doubled."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from sqlalchemy import func, select

from db.models import Backtest, BacktestStatus, EngineHeartbeat, Order
from db.models.bots import tick_bucket_of
from engine import celery_app
from engine.backtest.queue import CeleryBacktestQueue
from engine.context import EngineConfig
from engine.heartbeats import shard_runner
from engine.sharding import shard_of
from robotrader.app import App
from robotrader.use_cases.backtests import BacktestRequest, backtest_chart, start_backtest
from tests.engine.conftest import make_user, running_bot
from tests.services import REDIS_URL

# One key prefix per test run: runs sharing the machine's Redis never see each other's tasks.
# (Per test would not do: Celery's producer pool keeps the transport options it started with.)
RUN_PREFIX = f"rt-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def celery_engine(app: App, tmp_path: Path) -> Iterator[None]:
    prefix = RUN_PREFIX
    config = EngineConfig(
        database_url=app.database.url, vault=app.vault, redis_url=REDIS_URL,
        market_data="replay", tick_shards=4, backtest_cache_dir=tmp_path / "candles",
    )  # fmt: skip
    celery_app.configure(config, REDIS_URL, namespace=prefix)

    with start_worker(
        celery_app.app, pool="solo", perform_ping_check=False, loglevel="WARNING",
        queues=["ticks", "orders", "backtests"],
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
    users = [await make_user(app, f"u{i}") for i in range(4)]
    owners = [users[i % 4] for i in range(7)]  # 7 bots of 4 users in the 4 fixed shards
    for i, user in enumerate(owners):
        await running_bot(app, user, name=f"dca-{i}")

    celery_app.tick.delay()
    assert await _wait_for_orders(app, 7) == 7
    async with app.database.sessions() as session:
        heartbeats = {h.runner: h.bots_evaluated for h in await session.scalars(
            select(EngineHeartbeat)
        )}  # fmt: skip
    # Every shard of the setting was ticked, each with the bots of its owners' buckets;
    # four users in a row are in four different shards.
    per_shard = [0] * 4
    for user in owners:
        per_shard[shard_of(tick_bucket_of(user), 4)] += 1
    assert heartbeats == {shard_runner(shard, 4): n for shard, n in enumerate(per_shard)}
    assert sorted(per_shard) == [1, 2, 2, 2]

    # The same shard tasks delivered again (a redelivery after a crash, a duplicate beat).
    now_ms = int(time.time() * 1000)
    for _ in range(2):
        for shard in range(4):
            celery_app.tick_shard.delay(shard, 4, now_ms)
    await asyncio.sleep(3)
    assert await _orders(app) == 7


async def test_a_shard_taken_a_tick_after_its_moment_is_dropped(
    app: App, celery_engine: None
) -> None:
    """A task redelivered after its worker died: the next tick has the shard again."""
    user = await make_user(app)
    await running_bot(app, user, name="dca-late")
    assert celery_app.state.config is not None
    late = int((time.time() - 2 * celery_app.state.config.tick_seconds) * 1000)
    for shard in range(4):
        celery_app.tick_shard.delay(shard, 4, late)
    await asyncio.sleep(2)
    assert await _orders(app) == 0
    celery_app.tick.delay()  # the next tick evaluates the bot
    assert await _wait_for_orders(app, 1) == 1


async def test_a_backtest_asked_for_in_chat_runs_on_a_worker_once(
    app: App, celery_engine: None
) -> None:
    # The chat's side, as `robotrader telegram` builds it with a broker configured.
    settings = app.settings.model_copy(
        update={"redis_url": REDIS_URL, "celery_namespace": RUN_PREFIX}
    )
    chat = App.from_settings(settings, app.database)
    assert isinstance(chat.backtests, CeleryBacktestQueue)
    try:
        user = await make_user(app)
        request = BacktestRequest("sma_crossover", symbol="BTC/USDT", period="3d")
        job = await start_backtest(chat, user, request)

        deadline = time.monotonic() + 30
        row = None
        while time.monotonic() < deadline:
            async with app.database.sessions() as session:
                row = await session.get(Backtest, job.id, populate_existing=True)
            if row is not None and row.status == BacktestStatus.DONE:
                break
            await asyncio.sleep(0.2)
        assert row is not None and row.status == BacktestStatus.DONE, row and row.status
        assert row.summary is not None and row.summary["trade_count"] > 0
        png = await backtest_chart(chat, user, job.id)
        assert png is not None and png.startswith(b"\x89PNG")

        # Redis redelivers a task whose worker died: the job is claimed once, not rerun.
        celery_app.backtest.delay(job.id)
        await asyncio.sleep(2)
        async with app.database.sessions() as session:
            again = await session.get(Backtest, job.id, populate_existing=True)
        assert again is not None and again.attempts == 1 and again.finished_at == row.finished_at
    finally:
        await chat.backtests.close()
        await chat.pool.close()


def test_exchange_work_never_waits_in_the_ticks_queue() -> None:
    """Placing and reconciling orders can take a request timeout each: never ahead of a tick."""
    router = celery_app.app.amqp.router
    for task in ("engine.place_order", "engine.reconcile"):
        assert router.route({}, task)["queue"].name == "orders", task
    assert router.route({}, "engine.tick_shard")["queue"].name == "ticks"
