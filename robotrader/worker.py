"""Celery entry point: ``celery -A robotrader.worker worker`` (and ``beat``).

Builds the engine's configuration from the settings, so the engine itself never
reads settings.
"""

from __future__ import annotations

from celery import Celery

from engine.celery_app import configure
from robotrader.engine_config import engine_config
from robotrader.logging_setup import configure_logging
from robotrader.settings import get_settings


def build_app() -> Celery:
    settings = get_settings()
    configure_logging(settings.log_level)
    if not settings.redis_url:
        raise SystemExit("ROBOTRADER_REDIS_URL must be set to run Celery workers")
    return configure(
        engine_config(settings),
        settings.redis_url,
        namespace=settings.celery_namespace,
        visibility_timeout=settings.celery_visibility_timeout,
    )



def __getattr__(name: str) -> Celery:
    """``celery -A robotrader.worker`` looks up ``app``: build it on first use only."""
    if name == "app":
        return build_app()
    raise AttributeError(name)
