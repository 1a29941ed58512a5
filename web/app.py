"""The one ASGI app: Stripe and Telegram webhooks, REST API, dashboard, health and metrics."""

from __future__ import annotations

from fastapi import FastAPI

from robotrader.app import App
from web.routes import health, stripe_webhook


def create_app(app: App) -> FastAPI:
    api = FastAPI(title="RoboTrader", version="0.1.0", docs_url="/docs", redoc_url=None)
    api.state.robotrader = app
    api.include_router(health.router)
    api.include_router(stripe_webhook.router)
    return api
