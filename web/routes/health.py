"""/healthz (database, Redis, engine tick age) and /metrics (Prometheus).

/metrics serves this process's counters (ticks, tick duration, orders by result
when the engine runs here; notifications sent/failed when a chat front end does)
and, read from the database at each scrape so they hold whichever process did
the work, the outbox queue depth and the last tick of each engine runner.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

import robotrader.metrics  # noqa: F401  (registers the engine and notification series)
from robotrader.use_cases.health import check_health, outbox_backlog, runner_ticks
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


@router.get("/healthz", include_in_schema=False)
async def healthz(app: AppDep) -> JSONResponse:
    health = await check_health(app)
    checks: dict[str, Any] = {"database": health.database, "redis": health.redis}
    if health.engine_last_tick_seconds is not None:
        checks["engine_last_tick_seconds"] = round(health.engine_last_tick_seconds, 1)
    checks["engine"] = health.engine
    checks["status"] = "ok" if health.healthy else "degraded"
    return JSONResponse(checks, status_code=200 if health.healthy else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(app: AppDep, request: Request) -> Response:
    token = app.settings.metrics_token
    if token is not None:
        # Prometheus' ``authorization: {credentials: ...}`` / ``bearer_token`` sends this.
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise ApiError(401, "metrics_token_needed")
    for channel, pending in (await outbox_backlog(app)).items():
        QUEUE_DEPTH.labels(str(channel)).set(pending)
    for tick in await runner_ticks(app):
        LAST_TICK_AGE.labels(tick.runner).set(tick.age_seconds)
        LAST_TICK_SECONDS.labels(tick.runner).set(tick.duration_seconds)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
