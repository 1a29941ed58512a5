"""Prometheus metrics of the chat front ends (served by web/ at /metrics).

Defined here, not in a front end, so every front end counts into the same
series and web/ registers them without importing a front end.
"""

from __future__ import annotations

from prometheus_client import Counter

# The engine's series (ticks, tick duration, orders by result) live next to the engine;
# importing them here registers them in every process that serves /metrics.
import engine.metrics  # noqa: F401

NOTIFICATIONS = Counter(
    "robotrader_notifications_total",
    "Notifications handed to a chat platform, by channel and result "
    "(sent, failed, unreachable, retried)",
    ["channel", "result"],
)
for _channel in ("telegram", "discord"):
    for _result in ("sent", "failed"):
        NOTIFICATIONS.labels(_channel, _result)  # present (at 0) before the first delivery


def count_notification(channel: str, result: str) -> None:
    NOTIFICATIONS.labels(channel, result).inc()
