"""The outbox as a chat process sees it: claim notifications under a lease, then settle each.

The delivery loop (bots/core/delivery.py) drives these; the rows and their
leases are db/outbox.py's.
"""

from __future__ import annotations

from datetime import timedelta

from db import outbox
from db.models import Platform
from db.outbox import ClaimedNotification
from robotrader.app import App

__all__ = [
    "ClaimedNotification",
    "acknowledge_notification",
    "claim_notifications",
    "release_notification",
]


async def claim_notifications(
    app: App, platform: Platform, worker: str, *, limit: int, lease: timedelta
) -> list[ClaimedNotification]:
    """Lease up to ``limit`` undelivered notifications of ``platform`` to ``worker``."""
    return await outbox.claim(app.database, platform, worker, limit=limit, lease=lease)


async def acknowledge_notification(app: App, delivery_id: int, outcome: str = "sent") -> None:
    """Settled for good (sent, refused, or no chat to send it to): never claimed again."""
    await outbox.acknowledge(app.database, delivery_id, outcome)


async def release_notification(
    app: App, delivery_id: int, *, error: str, retry_in: timedelta
) -> None:
    """Not sent for now: claimable again after ``retry_in``."""
    await outbox.release(app.database, delivery_id, error=error, retry_in=retry_in)
