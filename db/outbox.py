"""The notification outbox: written with the fact it reports, claimed and acknowledged by chats.

Writers (engine, billing, use cases) call `add_notification` inside their own
transaction, so a notification exists exactly when the fact it reports does.
Each chat process then loops: `claim` a batch for its channel under a lease,
send, `acknowledge` each one the platform accepted. A process that dies holding
a claim loses nothing: once the lease expires another claim picks it up. A
delivery acknowledged is never claimed again.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ChatIdentity, Notification, NotificationDelivery, Platform, User
from db.models.users import notify_channel_id
from db.notifications import Notice, NotificationKind
from db.session import Database, upsert
from db.types import utcnow

IN_CHUNK = 1_000  # ids per IN (...) list
ROWS_PER_USER = 20  # a claim of N users leases at most 20 * N rows


@dataclass(frozen=True)
class Recipient:
    """Where a user's notifications go: the kinds they muted, the platforms that reach them."""

    muted: frozenset[str]
    channels: tuple[Platform, ...]


async def load_recipients(session: AsyncSession, user_ids: Iterable[int]) -> dict[int, Recipient]:
    """The recipients of many users in two statements (a tick notifying hundreds of them)."""
    users = sorted(set(user_ids))
    muted: dict[int, frozenset[str]] = {}
    channels: dict[int, set[Platform]] = {user: set() for user in users}
    for start in range(0, len(users), IN_CHUNK):
        chunk = users[start : start + IN_CHUNK]
        for user_id, kinds in await session.execute(
            select(User.id, User.muted_kinds).where(User.id.in_(chunk))
        ):
            muted[user_id] = frozenset(kinds or ())
        for user_id, platform in await session.execute(
            select(ChatIdentity.user_id, ChatIdentity.platform).where(
                ChatIdentity.user_id.in_(chunk), ChatIdentity.reachable.is_(True)
            )
        ):
            channels[user_id].add(Platform(platform))
    return {
        user: Recipient(muted.get(user, frozenset()), tuple(sorted(channels[user])))
        for user in users
    }


@dataclass(frozen=True)
class NewNotification:
    """A notification to store (`add_notifications`): its kind is its notice's."""

    user_id: int
    notice: Notice
    dedupe_key: str
    priority: int = 0

    @property
    def kind(self) -> NotificationKind:
        return self.notice.kind


async def add_notifications(
    session: AsyncSession,
    notifications: Sequence[NewNotification],
    recipients: Mapping[int, Recipient] | None = None,
) -> set[str]:
    """Store each notification once per ``dedupe_key``; returns the keys stored now.

    One delivery is queued per chat platform the user is reachable on, unless the
    user muted the kind. Many notifications take one batched INSERT;
    ``recipients`` (`load_recipients`) saves looking their users up again.
    """
    unique = list({n.dedupe_key: n for n in reversed(notifications)}.values())[::-1]
    if not unique:
        return set()
    now = utcnow()
    stored: dict[str, int] = {}
    # A list of parameters: SQLAlchemy batches the rows into multi-row INSERTs itself,
    # from one compiled statement (a VALUES list built here would compile per size).
    rows = await session.execute(
        upsert(session, Notification)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(Notification.id, Notification.dedupe_key),
        [
            {
                "user_id": n.user_id,
                "kind": n.kind.value,
                "payload": n.notice.to_payload(),
                "dedupe_key": n.dedupe_key,
                "priority": n.priority,
                "created_at": now,
            }
            for n in unique
        ],
    )
    stored.update((key, notification_id) for notification_id, key in rows)
    new = [n for n in unique if n.dedupe_key in stored]
    known = dict(recipients or {})
    missing = {n.user_id for n in new} - known.keys()
    if missing:
        known.update(await load_recipients(session, missing))
    deliveries = [
        {
            "notification_id": stored[n.dedupe_key],
            "user_id": n.user_id,
            "channel": channel,
            "priority": n.priority,
        }
        for n in new
        if n.kind not in known[n.user_id].muted
        for channel in known[n.user_id].channels
    ]
    if deliveries:  # one executemany, no ORM objects: a tick queues hundreds
        await session.execute(insert(NotificationDelivery), deliveries)
    return set(stored)


async def add_notification(
    session: AsyncSession,
    *,
    user_id: int,
    notice: Notice,
    dedupe_key: str,
    priority: int = 0,
    recipients: Mapping[int, Recipient] | None = None,
) -> bool:
    """`add_notifications` of one; False if its ``dedupe_key`` was stored before."""
    one = NewNotification(user_id, notice, dedupe_key, priority)
    return bool(await add_notifications(session, [one], recipients))


@dataclass(frozen=True)
class ClaimedNotification:
    delivery_id: int
    notification_id: int
    user_id: int
    kind: str  # a NotificationKind, unless a newer version wrote it
    payload: dict[str, Any]  # as stored: `db.notifications.read_notice` reads it
    created_at: datetime
    chat_id: str | None  # the private chat
    language: str | None
    attempts: int
    notify_channel_id: str | None = None  # a channel the user picked instead of chat_id


@dataclass(frozen=True)
class Hold:
    """Users with only ``kinds`` due wait for more while the newest is younger than ``quiet``.

    Never longer than ``longest`` after the oldest of them was written, so a steady
    trickle cannot keep a chat waiting; one due notification of another kind, and the
    user goes now, with everything they have due.
    """

    kinds: frozenset[str]
    quiet: timedelta
    longest: timedelta


def _ready_users(due: Any, hold: Hold, now: datetime) -> Any:
    """The users among ``due`` that ``hold`` does not keep waiting, most urgent first."""
    held_kind = case((Notification.kind.in_(sorted(hold.kinds)), 0), else_=1)
    return (
        select(NotificationDelivery.user_id)
        .join(Notification, Notification.id == NotificationDelivery.notification_id)
        .where(due)
        .group_by(NotificationDelivery.user_id)
        .having(
            or_(
                func.max(Notification.created_at) <= now - hold.quiet,
                func.min(Notification.created_at) <= now - hold.longest,
                func.sum(held_kind) > 0,
            )
        )
        .order_by(func.max(NotificationDelivery.priority).desc(), func.min(NotificationDelivery.id))
    )


def _claimable(channel: Platform, now: datetime) -> Any:
    return and_(
        NotificationDelivery.channel == channel,
        NotificationDelivery.delivered_at.is_(None),
        or_(NotificationDelivery.lease_until.is_(None), NotificationDelivery.lease_until < now),
        or_(NotificationDelivery.not_before.is_(None), NotificationDelivery.not_before <= now),
    )


async def claim(
    database: Database,
    channel: Platform,
    worker: str,
    *,
    limit: int = 100,
    lease: timedelta = timedelta(seconds=60),
    skip_users: Collection[int] = (),
    hold: Hold | None = None,
) -> list[ClaimedNotification]:
    """Lease the undelivered notifications of ``channel`` of up to ``limit`` users to ``worker``.

    Users come highest priority first, then oldest; each comes with every notification it
    has due (at most ``ROWS_PER_USER`` on average), so a chat's notifications can go out
    together (one digest rather than a message each). ``skip_users`` are left alone: the
    worker is still sending to them, and what they got since goes in their next claim.
    Users that ``hold`` keeps waiting for more are left for a later claim.
    Two workers never hold the same one: PostgreSQL skips rows another transaction has
    locked; SQLite serialises writers.
    """
    now = utcnow()
    async with database.transaction() as session:
        due = _claimable(channel, now)
        if skip_users:
            due = and_(due, NotificationDelivery.user_id.not_in(sorted(set(skip_users))))
        holding = hold if hold is not None and hold.quiet > timedelta(0) else None
        if holding is not None:
            # One grouped scan of what is due. A grouped query cannot be locked: the
            # candidates' lock below keeps two workers apart. (As a subquery of the
            # seeds, PostgreSQL rescanned it once per due row on a freshly filled table,
            # statistics not yet gathered: 7 s a claim with 10,000 due.)
            seeds = _ready_users(due, holding, now).limit(limit)
        else:
            seeds = (
                select(NotificationDelivery.user_id)
                .where(due)
                .order_by(NotificationDelivery.priority.desc(), NotificationDelivery.id)
                .limit(limit)
            )
        candidates = (
            select(NotificationDelivery.id)
            .where(due)
            .order_by(NotificationDelivery.priority.desc(), NotificationDelivery.id)
            .limit(limit * ROWS_PER_USER)
        )
        if database.is_sqlite:
            # One statement keeps the claim atomic; SQLite runs the subqueries once.
            seeded = seeds.subquery()
            mine = candidates.where(NotificationDelivery.user_id.in_(select(seeded.c.user_id)))
            targets = NotificationDelivery.id.in_(mine.scalar_subquery())
        else:
            # Lock the candidates in a statement of their own. Inside the UPDATE, PostgreSQL
            # may rescan a LIMIT ... SKIP LOCKED subquery once per row (it does on a freshly
            # filled table, statistics not yet gathered), each rescan skipping the rows just
            # claimed: one claim then took thousands of rows instead of ``limit``, leased
            # for longer than sending them takes, and they were sent again.
            # Seeds locked too: a worker claiming alongside starts from other users.
            if holding is None:
                seeds = seeds.with_for_update(skip_locked=True)
            seeded_users = await session.scalars(seeds)
            users = sorted(set(seeded_users.all()))
            if not users:
                return []
            mine = candidates.where(NotificationDelivery.user_id.in_(users))
            ids = (await session.scalars(mine.with_for_update(skip_locked=True))).all()
            if not ids:
                return []
            targets = NotificationDelivery.id.in_(ids)
        claimed_ids = (
            await session.scalars(
                update(NotificationDelivery)
                .where(targets, _claimable(channel, now))
                .values(
                    claimed_by=worker,
                    lease_until=now + lease,
                    attempts=NotificationDelivery.attempts + 1,
                )
                .returning(NotificationDelivery.id)
            )
        ).all()
        if not claimed_ids:
            return []
        rows = (
            await session.execute(
                select(
                    NotificationDelivery,
                    Notification,
                    ChatIdentity.chat_id,
                    User.language,
                    ChatIdentity.client_language,
                    ChatIdentity.extra,
                )
                .join(Notification, Notification.id == NotificationDelivery.notification_id)
                .join(User, User.id == NotificationDelivery.user_id)
                .outerjoin(
                    ChatIdentity,
                    and_(
                        ChatIdentity.user_id == NotificationDelivery.user_id,
                        ChatIdentity.platform == channel,
                    ),
                )
                .where(NotificationDelivery.id.in_(claimed_ids))
                .order_by(NotificationDelivery.priority.desc(), NotificationDelivery.id)
            )
        ).all()
    seen: set[int] = set()
    claimed: list[ClaimedNotification] = []
    for delivery, notification, chat_id, language, client_language, extra in rows:
        if delivery.id in seen:  # a user with two identities on one platform: first wins
            continue
        seen.add(delivery.id)
        claimed.append(
            ClaimedNotification(
                delivery_id=delivery.id,
                notification_id=notification.id,
                user_id=delivery.user_id,
                kind=notification.kind,
                payload=notification.payload,
                created_at=notification.created_at,
                chat_id=chat_id,
                language=language or client_language,
                attempts=delivery.attempts,
                notify_channel_id=notify_channel_id(extra),
            )
        )
    return claimed


async def acknowledge(
    database: Database, delivery_ids: Collection[int], outcome: str = "sent"
) -> None:
    """The platform accepted them (or they can never be delivered): never claim them again."""
    async with database.transaction() as session:
        await session.execute(
            update(NotificationDelivery)
            .where(
                NotificationDelivery.id.in_(sorted(delivery_ids)),
                NotificationDelivery.delivered_at.is_(None),
            )
            .values(delivered_at=utcnow(), outcome=outcome, lease_until=None)
        )


async def release(
    database: Database,
    delivery_ids: Collection[int],
    *,
    error: str,
    retry_in: timedelta = timedelta(0),
) -> None:
    """Sending failed for now: give the claims back, to be retried after ``retry_in``."""
    async with database.transaction() as session:
        await session.execute(
            update(NotificationDelivery)
            .where(
                NotificationDelivery.id.in_(sorted(delivery_ids)),
                NotificationDelivery.delivered_at.is_(None),
            )
            .values(
                lease_until=None,
                claimed_by=None,
                not_before=utcnow() + retry_in,
                last_error=error[:500],
            )
        )


async def mark_unreachable(database: Database, channel: Platform, user_id: int) -> int:
    """The user blocked the bot or closed DMs: stop trying on this channel.

    Returns how many pending deliveries were closed.
    """
    async with database.transaction() as session:
        await session.execute(
            update(ChatIdentity)
            .where(ChatIdentity.user_id == user_id, ChatIdentity.platform == channel)
            .values(reachable=False)
        )
        result = await session.execute(
            update(NotificationDelivery)
            .where(
                NotificationDelivery.user_id == user_id,
                NotificationDelivery.channel == channel,
                NotificationDelivery.delivered_at.is_(None),
            )
            .values(delivered_at=utcnow(), outcome="unreachable", lease_until=None)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def pending_count(database: Database, channel: Platform | None = None) -> int:
    """Undelivered deliveries (for /metrics queue depth and tests)."""

    query = (
        select(func.count())
        .select_from(NotificationDelivery)
        .where(NotificationDelivery.delivered_at.is_(None))
    )
    if channel is not None:
        query = query.where(NotificationDelivery.channel == channel)
    async with database.sessions() as session:
        return int(await session.scalar(query) or 0)
