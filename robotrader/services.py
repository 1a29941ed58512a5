"""Which services `robotrader run` starts, from the settings."""

from __future__ import annotations

from robotrader.runtime import Service
from robotrader.settings import Settings


def embedded_services(settings: Settings) -> list[Service]:
    """Everything the embedded default runs in one process."""
    services: list[Service] = []
    return services
