"""How the product is doing, as /healthz and /metrics report it.

The database and Redis answer a probe, the engine's runners their last tick,
the outbox how much waits for delivery. A probe reports; it never raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, text

from db import outbox
from db.models import EngineHeartbeat, Platform
from robotrader.app import App

# A tick older than this many tick intervals means the engine is not running.
STALE_TICKS = 6
# The channels whose queue depth /metrics reports (the console has no backlog worth a series).
QUEUED_CHANNELS = (Platform.TELEGRAM, Platform.DISCORD)


@dataclass(frozen=True)
class Health:
    database: str  # "ok" or "down: <error type>"
    redis: str  # "ok", "down: <error type>" or "not configured"
    engine: str  # "ok", "stale" or "no tick yet"
    engine_last_tick_seconds: float | None  # age of the newest tick, None before the first
    healthy: bool


@dataclass(frozen=True)
class RunnerTick:
    runner: str
    age_seconds: float
    duration_seconds: float


async def check_health(app: App) -> Health:
    """Probe the database, Redis (when configured) and the engine's last tick."""
    healthy = True
    last_tick: datetime | None = None
    try:
        async with app.database.sessions() as session:
            await session.execute(text("SELECT 1"))
            last_tick = await session.scalar(select(func.max(EngineHeartbeat.last_tick_at)))
        database = "ok"
    except Exception as exc:  # the probe reports, it never raises
        database = f"down: {type(exc).__name__}"
        healthy, last_tick = False, None
    if app.settings.redis_url:
        try:
            import redis.asyncio as aioredis

            client = aioredis.Redis.from_url(app.settings.redis_url, socket_timeout=2)
            await client.ping()
            await client.aclose()
            redis = "ok"
        except Exception as exc:
            redis = f"down: {type(exc).__name__}"
            healthy = False
    else:
        redis = "not configured"
    age: float | None = None
    if last_tick is None:
        engine = "no tick yet"
    else:
        age = (datetime.now(UTC) - last_tick).total_seconds()
        if age > STALE_TICKS * app.settings.tick_seconds:
            engine = "stale"
            healthy = False
        else:
            engine = "ok"
    return Health(
        database=database,
        redis=redis,
        engine=engine,
        engine_last_tick_seconds=age,
        healthy=healthy,
    )


async def outbox_backlog(app: App) -> dict[Platform, int]:
    """Notifications waiting for delivery, per chat platform."""
    return {
        channel: await outbox.pending_count(app.database, channel) for channel in QUEUED_CHANNELS
    }


async def runner_ticks(app: App) -> list[RunnerTick]:
    """Each engine runner's last tick: how long ago, and how long it took."""
    async with app.database.sessions() as session:
        beats = (await session.scalars(select(EngineHeartbeat))).all()
    now = datetime.now(UTC)
    return [
        RunnerTick(
            runner=beat.runner,
            age_seconds=(now - beat.last_tick_at).total_seconds(),
            duration_seconds=beat.last_tick_seconds,
        )
        for beat in beats
    ]
