"""Crash safety of orders: a real Celery worker is SIGKILLed at random points, twenty times.

Paper and emulated-live bots (signal strategy: every round brings a decision
per bot) run on a worker that is killed mid-tick and restarted. Afterwards no
decision produced two orders, at the exchange or in the database, and every
order the exchange accepted is recorded (reconciliation looks orders up by
client order id).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from pydantic import SecretStr
from sqlalchemy import func, select

from db import migrate
from db.credential_secrets import CredentialSecrets
from db.models import Bot, BotMode, BotSignal, BotStatus, Order, OrderStatus, Plan, Platform, User
from db.session import Database
from db.vault import generate_master_key
from robotrader.app import App
from robotrader.settings import Settings
from robotrader.use_cases.accounts import register
from robotrader.use_cases.bots import BotSpec, create_bot, set_mode, start_bot
from robotrader.use_cases.exchanges import connect_exchange
from tests import services
from tests.emulators.exchange import ExchangeEmulator
from tests.engine.test_live_exchange import calm_market

KILLS = 20
PAPER_BOTS = 6
LIVE_BOTS = 4
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def crash_database() -> Iterator[str]:
    name = services.create_database("rt_kill")
    url = services.sqlalchemy_url(name)
    migrate.upgrade(url)
    yield url
    services.drop_database(name)


class Worker:
    """A real Celery worker process (solo pool, so SIGKILL kills the one process doing the work)."""

    def __init__(self, env: dict[str, str], cwd: Path, name: str | None = None) -> None:
        self.env, self.cwd, self.name = env, cwd, name
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            *(sys.executable, "-m", "celery", "-A", "robotrader.worker", "worker"),
            *("-Q", "ticks,orders", "--pool=solo", "-l", "WARNING"),
            *("--without-gossip", "--without-mingle", "--without-heartbeat"),
            *(("-n", f"{self.name}@%h") if self.name else ()),
        ]
        self.process = subprocess.Popen(
            command, env=self.env, cwd=self.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def wait_ready(self, sender: Celery, within: float = 60) -> None:
        """Until the worker answers a ping: killing it while it imports would test nothing."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if sender.control.ping(timeout=0.5):
                return
        assert self.process is not None
        raise AssertionError(f"the Celery worker did not start (exit {self.process.poll()})")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> str:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            _, stderr = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
        return stderr.decode(errors="replace")


async def _signal_all(database: Database, bot_ids: list[int], action: str) -> None:
    async with database.transaction() as session:
        session.add_all(BotSignal(bot_id=bot_id, action=action) for bot_id in bot_ids)


async def _unsettled(database: Database) -> tuple[int, int]:
    async with database.sessions() as session:
        # Alerts of a paused bot stay unread (a live bot pauses when the exchange does not
        # answer, as on a machine under load); only running bots must have caught up.
        signals = await session.scalar(
            select(func.count())
            .select_from(BotSignal)
            .join(Bot, Bot.id == BotSignal.bot_id)
            .where(BotSignal.consumed_at.is_(None), Bot.status == BotStatus.RUNNING)
        )

        pending = await session.scalar(
            select(func.count())
            .select_from(Order)
            .where(Order.status.in_([OrderStatus.PENDING, OrderStatus.OPEN]))
        )
    return int(signals or 0), int(pending or 0)


async def test_sigkilled_worker_never_doubles_an_order_and_loses_none(
    crash_database: str, tmp_path: Path
) -> None:
    master_key = generate_master_key()
    namespace = f"rt-kill-{uuid.uuid4().hex[:8]}"
    rng = random.Random(20261125)
    with ExchangeEmulator() as exchange:
        calm_market(exchange, "binance", "BTC/USDT")
        calm_market(exchange, "binance", "ETH/USDT")
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            data_dir=tmp_path,
            database_url=crash_database,
            master_key=SecretStr(master_key),
            exchange_api_urls={"binance": exchange.base_url, "bybit": exchange.base_url},
        )
        app = App.from_settings(settings)
        account = await register(app, Platform.TELEGRAM, "killer", chat_id="killer")
        async with app.database.transaction() as session:
            user = await session.get(User, account.user_id)
            assert user is not None
            user.plan = Plan.PREMIUM
        key, secret = "FAKEKEYcrash0001", "FAKESECRETcrash0001"
        exchange.add_account("binance", key, secret, balances={"USDT": 1_000_000})
        await connect_exchange(
            app, account.user_id, "binance", CredentialSecrets(SecretStr(key), SecretStr(secret))
        )
        bot_ids = []
        for i in range(PAPER_BOTS + LIVE_BOTS):
            symbol = ["BTC/USDT", "ETH/USDT"][i % 2]
            bot = await create_bot(
                app, account.user_id, BotSpec("binance", [symbol], "signal", "200", name=f"k{i}")
            )
            if i >= PAPER_BOTS:
                await set_mode(app, account.user_id, bot.id, BotMode.LIVE, confirmed=True)
            await start_bot(app, account.user_id, bot.id)
            bot_ids.append(bot.id)

        env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOTRADER_")}
        env.update(
            ROBOTRADER_DATABASE_URL=crash_database,
            ROBOTRADER_REDIS_URL=services.REDIS_URL,
            ROBOTRADER_MASTER_KEY=master_key,
            ROBOTRADER_EXCHANGE_API_URLS=json.dumps({"binance": exchange.base_url}),
            ROBOTRADER_CELERY_NAMESPACE=namespace,
            ROBOTRADER_CELERY_VISIBILITY_TIMEOUT="3",
            ROBOTRADER_DATA_DIR=str(tmp_path),
            PYTHONPATH=str(ROOT),
        )
        # The test sends tasks through a Celery app of its own: the engine's app object may
        # already hold a connection pool for another namespace (from other tests).
        sender = Celery("crash-test", broker=services.REDIS_URL)
        sender.conf.update(
            broker_transport_options={"global_keyprefix": f"{namespace}:", "visibility_timeout": 3},
            task_serializer="json",
        )

        def send(task: str, *args: object) -> None:
            sender.send_task(task, args=args, queue="ticks")

        worker = Worker(env, tmp_path)
        worker.start()
        try:
            for round_ in range(KILLS):
                await asyncio.to_thread(worker.wait_ready, sender)
                await _signal_all(app.database, bot_ids, "buy" if round_ % 2 == 0 else "close")
                now_ms = int(time.time() * 1000)
                for _ in range(rng.randint(1, 2)):  # sometimes a duplicate tick
                    send("engine.tick_shard", 0, 1, now_ms)
                # Somewhere in the tick: loading, placing live orders, or booking them.
                await asyncio.sleep(rng.uniform(0.0, 1.2))
                worker.kill()
                worker.start()

            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                signals, pending = await _unsettled(app.database)
                if not signals and not pending:
                    break
                if signals:
                    send("engine.tick_shard", 0, 1, int(time.time() * 1000))
                if pending:
                    send("engine.reconcile")
                await asyncio.sleep(3)
        finally:
            log = worker.stop()
        assert await _unsettled(app.database) == (0, 0), log[-3000:]

        accepted = exchange.orders("binance", key)
        assert accepted, "live bots did trade"
        per_decision = Counter(o.client_order_id for o in accepted)
        assert max(per_decision.values()) == 1, "an exchange order was sent twice for one decision"
        async with app.database.sessions() as session:
            recorded = {
                o.client_order_id: o
                for o in await session.scalars(select(Order).where(Order.mode == BotMode.LIVE))
            }
            paper_orders = await session.scalar(
                select(func.count()).select_from(Order).where(Order.mode == BotMode.PAPER)
            )
        for order in accepted:
            assert order.client_order_id in recorded, "accepted by the exchange but not recorded"
            assert recorded[order.client_order_id].exchange_order_id == order.id
        # One decision per bot and round at most (a buy when flat, a close when holding).
        outcomes = Counter(f"{o.status} {o.side}" for o in recorded.values())
        print(f"\ncrash test: {len(accepted)} live orders at the exchange {dict(outcomes)}")
        print(f"crash test: {paper_orders} paper orders over {KILLS} kills")
        # At most one decision per bot and round (a buy when flat, a close when holding),
        # and enough of them got through the kills to prove something. A live bot whose
        # order was being sent when the worker died decides nothing more until that order
        # is settled (its claim runs out, then a reconciliation looks it up), so fewer
        # live rounds get through than paper ones.
        assert paper_orders is not None
        assert PAPER_BOTS * KILLS // 2 <= paper_orders <= PAPER_BOTS * KILLS
        assert LIVE_BOTS * KILLS // 8 <= len(recorded) <= LIVE_BOTS * KILLS
        assert all(o.status == OrderStatus.FILLED for o in recorded.values()), dict(outcomes)
        await app.close()
