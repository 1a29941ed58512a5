"""The one ASGI app: Stripe and Telegram webhooks, REST API, signals, dashboard, health, metrics."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from robotrader.app import App
from web.errors import install_error_handlers
from web.pages import STATIC
from web.request_bodies import DEFAULT_MAX_BODY
from web.routes import (
    api,
    dashboard,
    health,
    key_intake,
    reference,
    signals,
    stripe_webhook,
    telegram_webhook,
)

DESCRIPTION = """\
The RoboTrader REST API (Premium): your bots, positions, trades, profit and balances —
the same operations and rules as in the chat.

Authenticate with a personal API token: send `/token` in a private chat with the bot,
then `Authorization: Bearer rt_...`. `/token revoke` in the chat revokes every token.
Money and quantities are decimal strings. Errors are JSON: `{"error": code, "message": text}`.
"""


def create_app(app: App) -> FastAPI:
    api_app = FastAPI(
        title="RoboTrader",
        version="0.1.0",
        description=DESCRIPTION,
        # /docs is our own page (web/routes/reference.py): Swagger UI comes from a CDN.
        docs_url=None,
        redoc_url=None,
        # Every body is capped while it streams; webhooks raise their own cap per route.
        max_body_size=DEFAULT_MAX_BODY,
    )
    api_app.state.robotrader = app
    install_error_handlers(api_app)
    api_app.include_router(health.router)
    api_app.include_router(stripe_webhook.router)
    api_app.include_router(telegram_webhook.router)
    api_app.include_router(api.router)
    api_app.include_router(signals.router)
    api_app.include_router(dashboard.router)
    api_app.include_router(key_intake.router)
    api_app.include_router(reference.router)
    api_app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return api_app
