"""/healthz (database, Redis, engine tick age) and /metrics (Prometheus)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from sqlalchemy import func, select, text

from db import outbox
from db.models import EngineHeartbeat, Platform
from web.dependencies import AppDep

router = APIRouter(tags=["health"])

QUEUE_DEPTH = Gauge("robotrader_outbox_pending", "Notifications waiting for delivery", ["channel"])
# A tick older than this many tick intervals means the engine is not running.
STALE_TICKS = 6


@router.get("/healthz")
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


@router.get("/metrics")
async def metrics(app: AppDep) -> Response:
    for channel in (Platform.TELEGRAM, Platform.DISCORD):
        QUEUE_DEPTH.labels(str(channel)).set(await outbox.pending_count(app.database, channel))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
