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
from db.outbox import ClaimedNotification, Hold
from robotrader.app import App
from robotrader.use_cases.notification_digest import DIGESTIBLE

# A chat waits for more fills at most this many times the quiet time the settings give
# (``digest_hold_ms``), counted from its oldest fill due: a trickle cannot starve it.
LONGEST_HOLD_IN_QUIET_TIMES = 5

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
    wait_for_more: bool = True,
) -> list[ClaimedNotification]:
    """Lease the due notifications of up to ``limit`` users of ``platform`` to ``worker``.

    Each user's come all together; ``skip_users`` (still being sent to) are left for later.
    With ``wait_for_more``, a user with only fills due waits while the newest is younger
    than ``digest_hold_ms`` (a tick's shards, and live orders, book one user's fills
    moments apart: they then go as one digest), never longer than
    ``LONGEST_HOLD_IN_QUIET_TIMES`` times that from the oldest; anything else due
    (billing, errors, pauses...) and the user goes at once.
    """
    quiet = timedelta(milliseconds=app.settings.digest_hold_ms)
    hold = None
    if wait_for_more and quiet > timedelta(0):
        hold = Hold(
            frozenset(kind.value for kind in DIGESTIBLE),
            quiet,
            quiet * LONGEST_HOLD_IN_QUIET_TIMES,
        )
    return await outbox.claim(
        app.database,
        platform,
        worker,
        limit=limit,
        lease=lease,
        skip_users=skip_users,
        hold=hold,
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
