"""Where users reach the web app from outside: the one place links to it are built.

Chat replies (signal webhooks, the dashboard, the API docs), Stripe's return pages
and the REST API all point at PUBLIC_URL, else at the local listening address.
"""

from __future__ import annotations

from robotrader.settings import Settings


def public_url(settings: Settings, path: str = "") -> str:
    """``path`` (``/dashboard``; empty: the root) on the web app as users reach it."""
    base = settings.public_url or f"http://{settings.web_host}:{settings.web_port}"
    return base.rstrip("/") + path


def signal_url(settings: Settings, secret: str) -> str:
    """The webhook a signal bot's alerts are posted to (web/routes/signals.py)."""
    return public_url(settings, f"/signals/{secret}")
