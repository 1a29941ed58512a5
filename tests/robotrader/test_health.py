"""What /healthz and /metrics report: the probes, the engine's ticks, the outbox backlog."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from db import outbox
from db.models import EngineHeartbeat, Platform
from db.notifications import KillSwitchNotice
from db.session import Database
from robotrader.app import App
from robotrader.settings import Settings
from robotrader.use_cases.accounts import register
from robotrader.use_cases.health import (
    STALE_TICKS,
    check_health,
    outbox_backlog,
    runner_ticks,
)


@pytest.fixture
async def app(settings: Settings, database: Database) -> App:
    return App.from_settings(settings, database)


async def _beat(app: App, runner: str, age: timedelta, seconds: float = 0.25) -> None:
    async with app.database.transaction() as session:
        session.add(
            EngineHeartbeat(
                runner=runner, last_tick_at=datetime.now(UTC) - age, last_tick_seconds=seconds
            )
        )


async def test_before_the_first_tick_the_product_is_healthy_and_says_so(app: App) -> None:
    health = await check_health(app)
    assert (health.database, health.redis, health.engine) == ("ok", "not configured", "no tick yet")
    assert health.engine_last_tick_seconds is None and health.healthy


async def test_a_recent_tick_is_ok_and_an_old_one_is_stale(app: App) -> None:
    await _beat(app, "main", timedelta(seconds=3))
    health = await check_health(app)
    assert health.engine == "ok" and health.healthy
    assert health.engine_last_tick_seconds is not None
    assert 3 <= health.engine_last_tick_seconds < 60

    stale = timedelta(seconds=STALE_TICKS * app.settings.tick_seconds + 30)
    async with app.database.transaction() as session:
        beat = await session.get(EngineHeartbeat, "main")
        assert beat is not None
        beat.last_tick_at = datetime.now(UTC) - stale
    health = await check_health(app)
    assert health.engine == "stale" and not health.healthy


async def test_an_unreachable_redis_makes_it_degraded(app: App) -> None:
    app.settings = app.settings.model_copy(update={"redis_url": "redis://127.0.0.1:9/0"})
    health = await check_health(app)
    assert health.redis.startswith("down: ") and not health.healthy


async def test_runner_ticks_and_the_backlog_per_chat_platform(app: App) -> None:
    await _beat(app, "shard-0", timedelta(seconds=2), seconds=0.5)
    [tick] = await runner_ticks(app)
    assert tick.runner == "shard-0" and tick.duration_seconds == 0.5
    assert 2 <= tick.age_seconds < 60

    assert await outbox_backlog(app) == {Platform.TELEGRAM: 0, Platform.DISCORD: 0}
    account = await register(app, Platform.TELEGRAM, "42", chat_id="42", client_language="en")
    async with app.database.transaction() as session:
        await outbox.add_notification(
            session, user_id=account.user_id, notice=KillSwitchNotice(bots=1, sold=0, waiting=0),
            dedupe_key="t1",
        )
    assert await outbox_backlog(app) == {Platform.TELEGRAM: 1, Platform.DISCORD: 0}
