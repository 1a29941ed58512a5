"""/healthz (database, Redis, engine tick age) and /metrics (Prometheus).

/metrics serves this process's counters (ticks, tick duration, orders by result
when the engine runs here; notifications sent/failed when a chat front end does)
and, read from the database at each scrape so they hold whichever process did
the work, the outbox queue depth and the last tick of each engine runner.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from sqlalchemy import func, select, text

import robotrader.metrics  # noqa: F401  (registers the engine and notification series)
from db import outbox
from db.models import EngineHeartbeat, Platform
from web.dependencies import AppDep
from web.errors import ApiError

router = APIRouter(tags=["health"])

QUEUE_DEPTH = Gauge("robotrader_outbox_pending", "Notifications waiting for delivery", ["channel"])
LAST_TICK_AGE = Gauge(
    "robotrader_engine_last_tick_age_seconds", "Seconds since a runner's last tick", ["runner"]
)
LAST_TICK_SECONDS = Gauge(
    "robotrader_engine_last_tick_seconds", "Duration of a runner's last tick", ["runner"]
)
# A tick older than this many tick intervals means the engine is not running.
STALE_TICKS = 6


@router.get("/healthz", include_in_schema=False)
async def healthz(app: AppDep) -> JSONResponse:
    checks: dict[str, Any] = {}
    healthy = True
    try:
        async with app.database.sessions() as session:
            await session.execute(text("SELECT 1"))
            last_tick = await session.scalar(select(func.max(EngineHeartbeat.last_tick_at)))
        checks["database"] = "ok"
    except Exception as exc:  # the probe reports, it never raises
        checks["database"] = f"down: {type(exc).__name__}"
        healthy, last_tick = False, None
    if app.settings.redis_url:
        try:
            import redis.asyncio as aioredis

            client = aioredis.Redis.from_url(app.settings.redis_url, socket_timeout=2)
            await client.ping()
            await client.aclose()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"down: {type(exc).__name__}"
            healthy = False
    else:
        checks["redis"] = "not configured"
    if last_tick is None:
        checks["engine"] = "no tick yet"
    else:
        age = (datetime.now(UTC) - last_tick).total_seconds()
        checks["engine_last_tick_seconds"] = round(age, 1)
        if age > STALE_TICKS * app.settings.tick_seconds:
            checks["engine"] = "stale"
            healthy = False
        else:
            checks["engine"] = "ok"
    checks["status"] = "ok" if healthy else "degraded"
    return JSONResponse(checks, status_code=200 if healthy else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(app: AppDep, request: Request) -> Response:
    token = app.settings.metrics_token
    if token is not None:
        # Prometheus' ``authorization: {credentials: ...}`` / ``bearer_token`` sends this.
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise ApiError(401, "metrics_token_needed")
    for channel in (Platform.TELEGRAM, Platform.DISCORD):
        QUEUE_DEPTH.labels(str(channel)).set(await outbox.pending_count(app.database, channel))
    async with app.database.sessions() as session:
        beats = (await session.scalars(select(EngineHeartbeat))).all()
    now = datetime.now(UTC)
    for beat in beats:
        LAST_TICK_AGE.labels(beat.runner).set((now - beat.last_tick_at).total_seconds())
        LAST_TICK_SECONDS.labels(beat.runner).set(beat.last_tick_seconds)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
