"""The outbox as a chat process sees it: claim notifications under a lease, then settle them.

The delivery loop (bots/core/delivery.py) drives these; the rows and their
leases are db/outbox.py's. A message may hold several notifications (a digest):
they are settled together, when the platform accepted or refused that message.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta

from db import outbox
from db.models import Platform
from db.outbox import ClaimedNotification
from robotrader.app import App

__all__ = [
    "ClaimedNotification",
    "acknowledge_notifications",
    "claim_notifications",
    "release_notifications",
]


async def claim_notifications(
    app: App,
    platform: Platform,
    worker: str,
    *,
    limit: int,
    lease: timedelta,
    skip_users: Collection[int] = (),
) -> list[ClaimedNotification]:
    """Lease the due notifications of up to ``limit`` users of ``platform`` to ``worker``.

    Each user's come all together; ``skip_users`` (still being sent to) are left for later.
    """
    return await outbox.claim(
        app.database, platform, worker, limit=limit, lease=lease, skip_users=skip_users
    )


async def acknowledge_notifications(
    app: App, delivery_ids: Collection[int], outcome: str = "sent"
) -> None:
    """Settled for good (sent, refused, or no chat to send them to): never claimed again."""
    await outbox.acknowledge(app.database, delivery_ids, outcome)


async def release_notifications(
    app: App, delivery_ids: Collection[int], *, error: str, retry_in: timedelta
) -> None:
    """Not sent for now: claimable again after ``retry_in``."""
    await outbox.release(app.database, delivery_ids, error=error, retry_in=retry_in)
