"""The tick on a cluster: real Celery worker processes on Redis share the fixed shards of a tick.

PostgreSQL only, as in production: several worker processes write at once.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

import pytest
from celery import Celery
from pydantic import SecretStr
from sqlalchemy import select, update

from db import migrate
from db.models import Bot, EngineHeartbeat, Order
from db.vault import generate_master_key
from engine.heartbeats import runner_shard
from engine.market_data.feed import FETCH_CLAIM_SECONDS
from engine.sharding import shard_of
from robotrader.app import App
from robotrader.settings import Settings
from tests import services
from tests.emulators.exchange import ExchangeEmulator
from tests.engine.conftest import make_user, running_bot
from tests.engine.test_crash_safety import ROOT, Worker
from tests.engine.test_live_exchange import calm_market

SHARDS = 4
TICK_SECONDS = 3.0
BOTS = 16
MARKETS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


@pytest.fixture
def cluster_database() -> Iterator[str]:
    name = services.create_database("rt_cluster")
    url = services.sqlalchemy_url(name)
    migrate.upgrade(url)
    yield url
    services.drop_database(name)


@dataclass
class Cluster:
    app: App
    exchange: ExchangeEmulator
    workers: dict[str, Worker]
    sender: Celery

    def tick(self, moment_ms: int | None = None) -> int:
        """What beat's tick does: every shard for one moment, on the ticks queue."""
        moment = moment_ms if moment_ms is not None else int(time.time() * 1000)
        for shard in range(SHARDS):
            self.sender.send_task("engine.tick_shard", args=(shard, SHARDS, moment), queue="ticks")
        return moment

    async def shards_written(self, since: datetime) -> set[int]:
        async with self.app.database.sessions() as session:
            rows = await session.scalars(
                select(EngineHeartbeat.runner).where(EngineHeartbeat.last_tick_at >= since)
            )
            shards = {runner_shard(runner) for runner in rows}
            return {shard for shard in shards if shard is not None}

    async def orders_per_bot(self) -> Counter[int]:
        async with self.app.database.sessions() as session:
            return Counter(await session.scalars(select(Order.bot_id)))

    def klines(self) -> list[str]:
        return [c.path for c in self.exchange.calls if c.path.endswith("/klines")]


@asynccontextmanager
async def cluster(database_url: str, tmp_path: Path, workers: int) -> AsyncIterator[Cluster]:
    master_key = generate_master_key()
    namespace = f"rt-cluster-{uuid.uuid4().hex[:8]}"
    with ExchangeEmulator() as exchange:
        for symbol in [*MARKETS, "XRP/USDT"]:
            calm_market(exchange, "binance", symbol)
        settings = Settings(
            _env_file=None,
            data_dir=tmp_path,
            database_url=database_url,
            master_key=SecretStr(master_key),
            exchange_api_urls={"binance": exchange.base_url, "bybit": exchange.base_url},
        )
        app = App.from_settings(settings)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOTRADER_")}
        env.update(
            ROBOTRADER_DATABASE_URL=database_url,
            ROBOTRADER_REDIS_URL=services.REDIS_URL,
            ROBOTRADER_MASTER_KEY=master_key,
            ROBOTRADER_EXCHANGE_API_URLS=json.dumps({"binance": exchange.base_url}),
            ROBOTRADER_CELERY_NAMESPACE=namespace,
            ROBOTRADER_CELERY_VISIBILITY_TIMEOUT="3",
            ROBOTRADER_TICK_SECONDS=str(TICK_SECONDS),
            ROBOTRADER_TICK_SHARDS=str(SHARDS),
            ROBOTRADER_DATA_DIR=str(tmp_path),
            PYTHONPATH=str(ROOT),
        )
        sender = Celery("cluster-test", broker=services.REDIS_URL)
        sender.conf.update(
            broker_transport_options={"global_keyprefix": f"{namespace}:", "visibility_timeout": 3},
            task_serializer="json",
        )
        names = [f"w{i}" for i in range(workers)]
        pool = {name: Worker(env, tmp_path, name=name) for name in names}
        for worker in pool.values():
            worker.start()
        try:
            await asyncio.to_thread(_wait_for_workers, sender, set(names))
            yield Cluster(app, exchange, pool, sender)
        finally:
            for worker in pool.values():
                if worker.process is not None and worker.process.poll() is None:
                    worker.stop()
            await app.pool.close()
            await app.database.dispose()


def _wait_for_workers(sender: Celery, names: set[str], within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if _answering(sender) >= names:
            return
    raise AssertionError(f"the Celery workers {names} did not all start")


def _answering(sender: Celery) -> set[str]:
    replies = sender.control.ping(timeout=0.5)
    return {next(iter(reply)).split("@")[0] for reply in replies}


def _working_on(sender: Celery, names: set[str], shard: int) -> str:
    """The worker running ``shard``'s task now.

    A solo-pool worker busy with a task does not answer control commands: the one
    silent worker is it, unless one answers with the shard among its active tasks.
    """
    active = sender.control.inspect(timeout=1.0).active() or {}
    for hostname, tasks in active.items():
        if any(t["name"] == "engine.tick_shard" and t["args"][0] == shard for t in tasks):
            return str(hostname.split("@")[0])
    silent = names - {hostname.split("@")[0] for hostname in active}
    assert len(silent) == 1, f"no worker is on shard {shard}: {active}"
    return silent.pop()


async def _bots(app: App) -> dict[int, int]:
    """Bot id -> its shard: BOTS bots of SHARDS users in a row (one user in each shard)."""
    users = [await make_user(app, f"u{i}") for i in range(SHARDS)]
    bots = [
        await running_bot(
            app, users[i % SHARDS], name=f"c{i}", symbols=[MARKETS[i % len(MARKETS)]]
        )
        for i in range(BOTS)
    ]
    async with app.database.sessions() as session:
        rows = await session.execute(select(Bot.id, Bot.tick_bucket).where(Bot.id.in_(bots)))
        shards = {bot: shard_of(bucket, SHARDS) for bot, bucket in rows}
    assert set(shards.values()) == set(range(SHARDS))
    return shards


async def _wait(condition: Callable[[], Awaitable[bool]], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await condition():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_shards_on_two_worker_processes_fetch_each_market_once(
    cluster_database: str, tmp_path: Path
) -> None:
    async with cluster(cluster_database, tmp_path, workers=2) as c:
        bots = await _bots(c.app)
        # The first BTC answer takes a second: meanwhile the other worker's shards need
        # BTC too, and find its fetch claimed instead of fetching it again.
        c.exchange.inject("binance", "timeout", "symbol=BTCUSDT", times=1, delay=1.0)
        c.exchange.reset_calls()
        started = datetime.now().astimezone()
        c.tick()
        assert await _wait(lambda: _all_shards(c, started), within=30)
        assert len(c.klines()) == len(MARKETS), c.klines()
        assert await c.orders_per_bot() == Counter(dict.fromkeys(bots, 1))


async def _all_shards(c: Cluster, since: datetime) -> bool:
    return await c.shards_written(since) == set(range(SHARDS))


async def test_a_worker_killed_mid_shard_leaves_it_to_the_next_tick_without_doubling(
    cluster_database: str, tmp_path: Path
) -> None:
    async with cluster(cluster_database, tmp_path, workers=2) as c:
        bots = await _bots(c.app)
        slow = next(iter(bots.values()))
        async with c.app.database.transaction() as session:
            await session.execute(
                update(Bot)
                .where(Bot.id.in_([b for b, shard in bots.items() if shard == slow]))
                .values(symbols=["XRP/USDT"])
            )
        # The slow shard's market answers after 30 s: its worker is mid-shard when killed.
        c.exchange.inject("binance", "timeout", "symbol=XRPUSDT", times=1, delay=30)
        started = datetime.now().astimezone()
        first = c.tick()
        others = set(range(SHARDS)) - {slow}
        assert await _wait(lambda: _written(c, started, others), within=30)
        assert slow not in await c.shards_written(started)
        c.workers[_working_on(c.sender, set(c.workers), slow)].kill()
        killed_at = time.monotonic()

        # Beat's next tick, one tick after the first.
        await asyncio.sleep(max(0.0, first / 1000 + TICK_SECONDS - time.time()))
        c.tick()
        assert await _wait(lambda: _every_bot_ordered(c, bots), within=TICK_SECONDS + 15)
        recovery = time.monotonic() - killed_at
        print(f"\ncluster: shard {slow} re-evaluated {recovery:.2f} s after its worker was killed")
        assert recovery < TICK_SECONDS + FETCH_CLAIM_SECONDS + 5

        # Redis hands the dead worker's task back after the visibility timeout: stale by
        # then, it is dropped. Later ticks re-evaluate every bot: nothing is doubled.
        await asyncio.sleep(4)
        for _ in range(2):
            since = datetime.now().astimezone()
            c.tick()
            assert await _wait(partial(_all_shards, c, since), within=30)
        assert await c.orders_per_bot() == Counter(dict.fromkeys(bots, 1))


async def _written(c: Cluster, since: datetime, shards: set[int]) -> bool:
    return shards <= await c.shards_written(since)


async def _every_bot_ordered(c: Cluster, bots: dict[int, int]) -> bool:
    return set(await c.orders_per_bot()) == set(bots)
