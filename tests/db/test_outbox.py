"""The outbox: stored once, claimed by one worker at a time, never resent once acknowledged."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import update

from db import outbox
from db.models import BotMode, ChatIdentity, Notification, OrderSide, Platform, User
from db.notifications import (
    DailySummaryNotice,
    DataFallbackNotice,
    Notice,
    NotificationKind,
    PaymentFailedNotice,
    TradeOpenedNotice,
)
from db.session import Database
from db.types import utcnow


async def _user(database: Database, *platforms: Platform, muted: list[str] | None = None) -> int:
    async with database.transaction() as session:
        user = User(muted_kinds=muted or [], language="pt-BR")
        session.add(user)
        await session.flush()
        for i, platform in enumerate(platforms):
            session.add(
                ChatIdentity(
                    user_id=user.id,
                    platform=platform,
                    platform_user_id=f"{user.id}-{i}",
                    chat_id=f"chat-{user.id}-{platform}",
                )
            )
        return user.id


def _payload(key: str) -> dict[str, object]:
    """What `_notify` stores for ``key`` (a data_fallback of a bot named after it)."""
    return {"bot_id": 1, "bot": key}


async def _notify(
    database: Database, user_id: int, key: str, kind: str = "data_fallback", priority: int = 0
) -> bool:
    notice: Notice = DataFallbackNotice(bot_id=1, bot=key)
    if kind == NotificationKind.DAILY_SUMMARY:
        notice = DailySummaryNotice(date="2026-12-05", pnl=Decimal(0), trades=0, open_positions=0)
    async with database.transaction() as session:
        return await outbox.add_notification(
            session, user_id=user_id, notice=notice, dedupe_key=key, priority=priority
        )


async def test_same_fact_is_stored_once(database: Database) -> None:
    user = await _user(database, Platform.TELEGRAM)
    assert await _notify(database, user, "k1") is True
    assert await _notify(database, user, "k1") is False
    assert await outbox.pending_count(database, Platform.TELEGRAM) == 1


async def test_one_delivery_per_platform_and_muted_kinds_skip(database: Database) -> None:
    user = await _user(database, Platform.TELEGRAM, Platform.DISCORD, muted=["daily_summary"])
    await _notify(database, user, "a")
    await _notify(database, user, "b", kind="daily_summary")
    assert await outbox.pending_count(database, Platform.TELEGRAM) == 1
    assert await outbox.pending_count(database, Platform.DISCORD) == 1
    claimed = await outbox.claim(database, Platform.DISCORD, "w1")
    assert [c.payload for c in claimed] == [_payload("a")]
    assert claimed[0].chat_id == f"chat-{user}-discord" and claimed[0].language == "pt-BR"


async def test_concurrent_claims_never_overlap(database: Database) -> None:
    users = [await _user(database, Platform.TELEGRAM) for _ in range(12)]
    for i in range(60):
        await _notify(database, users[i % 12], f"n{i}")
    ids: list[int] = []
    for _ in range(12):  # rounds of four workers claiming at once, until none is left
        batches = await asyncio.gather(
            *(outbox.claim(database, Platform.TELEGRAM, f"w{i}", limit=3) for i in range(4))
        )
        ids += [c.delivery_id for batch in batches for c in batch]
    assert len(ids) == len(set(ids)) == 60


async def test_a_claim_takes_every_notification_due_for_its_users(database: Database) -> None:
    """So a chat's notifications go out together; users still being sent to are skipped."""
    first, second, third = [await _user(database, Platform.TELEGRAM) for _ in range(3)]
    for i in range(4):
        for user in (first, second, third):
            await _notify(database, user, f"u{user}-{i}")
    claimed = await outbox.claim(database, Platform.TELEGRAM, "w", limit=1)
    assert [c.user_id for c in claimed] == [first] * 4
    claimed = await outbox.claim(database, Platform.TELEGRAM, "w", limit=1, skip_users=[second])
    assert [c.user_id for c in claimed] == [third] * 4
    assert {c.user_id for c in await outbox.claim(database, Platform.TELEGRAM, "w")} == {second}


async def test_acknowledged_is_never_claimed_again_and_expired_lease_is(database: Database) -> None:
    user = await _user(database, Platform.TELEGRAM)
    await _notify(database, user, "x")
    await _notify(database, user, "y")
    first = await outbox.claim(database, Platform.TELEGRAM, "w1", lease=timedelta(seconds=-1))
    assert len(first) == 2
    await outbox.acknowledge(database, [first[0].delivery_id])
    # w1 "crashed" holding the second one; its lease is already over.
    again = await outbox.claim(database, Platform.TELEGRAM, "w2")
    assert [c.delivery_id for c in again] == [first[1].delivery_id]
    assert again[0].attempts == 2
    assert await outbox.claim(database, Platform.TELEGRAM, "w3") == []  # leased by w2


async def test_priority_first_then_age_and_release_with_delay(database: Database) -> None:
    free = await _user(database, Platform.TELEGRAM)
    paying = await _user(database, Platform.TELEGRAM)
    await _notify(database, free, "old")
    await _notify(database, paying, "vip", priority=2)
    claimed = await outbox.claim(database, Platform.TELEGRAM, "w", limit=1)
    assert [c.payload for c in claimed] == [_payload("vip")]
    await outbox.release(
        database, [claimed[0].delivery_id], error="429", retry_in=timedelta(hours=1)
    )
    rest = await outbox.claim(database, Platform.TELEGRAM, "w")
    assert [c.payload for c in rest] == [_payload("old")]


async def test_unreachable_user_closes_pending_and_gets_no_new(database: Database) -> None:
    user = await _user(database, Platform.TELEGRAM, Platform.DISCORD)
    await _notify(database, user, "p1")
    assert await outbox.mark_unreachable(database, Platform.TELEGRAM, user) == 1
    await _notify(database, user, "p2")
    assert await outbox.pending_count(database, Platform.TELEGRAM) == 0
    assert await outbox.pending_count(database, Platform.DISCORD) == 2


def _fill(n: int) -> TradeOpenedNotice:
    return TradeOpenedNotice(
        bot_id=1, bot="grid-1", mode=BotMode.PAPER, symbol="ETH/USDT", side=OrderSide.BUY,
        reason="entry", amount=Decimal("0.1"), price=Decimal(3000 + n), value=Decimal("300.00"),
    )  # fmt: skip


async def _written(database: Database, user_id: int, key: str, notice: Notice, ago: float) -> None:
    """``notice`` stored for ``user_id`` as if written ``ago`` seconds ago."""
    async with database.transaction() as session:
        await outbox.add_notification(session, user_id=user_id, notice=notice, dedupe_key=key)
        await session.execute(
            update(Notification)
            .where(Notification.dedupe_key == key)
            .values(created_at=utcnow() - timedelta(seconds=ago))
        )


HOLD = outbox.Hold(
    frozenset({NotificationKind.TRADE_OPENED.value}),
    quiet=timedelta(minutes=1),
    longest=timedelta(minutes=5),
)


async def test_a_hold_keeps_young_fills_waiting_but_never_billing_nor_past_its_bound(
    database: Database,
) -> None:
    young, quiet, trickle, billing = [await _user(database, Platform.TELEGRAM) for _ in range(4)]
    await _written(database, young, "young-1", _fill(1), ago=90)
    await _written(database, young, "young-2", _fill(2), ago=10)  # newest 10 s old: waits
    await _written(database, quiet, "quiet-1", _fill(3), ago=61)  # quiet for a minute: goes
    await _written(database, trickle, "trickle-1", _fill(4), ago=301)  # past the bound: goes
    await _written(database, trickle, "trickle-2", _fill(5), ago=1)
    await _written(database, billing, "billing-1", _fill(6), ago=1)
    portal = PaymentFailedNotice(portal_url="https://billing.example/portal")
    await _written(database, billing, "billing-2", portal, ago=1)  # never waits: nor its fill

    claimed = await outbox.claim(database, Platform.TELEGRAM, "w", hold=HOLD)
    by_user: dict[int, set[str]] = {}
    for c in claimed:
        by_user.setdefault(c.user_id, set()).add(c.kind)
    assert sorted(by_user) == sorted([quiet, trickle, billing])
    assert len([c for c in claimed if c.user_id == trickle]) == 2  # all it has due, at once
    assert by_user[billing] == {"trade_opened", "payment_failed"}
    assert await outbox.claim(database, Platform.TELEGRAM, "w", hold=HOLD) == []
    # Without a hold (or once it is over) the young chat goes, each notification once.
    rest = await outbox.claim(database, Platform.TELEGRAM, "w")
    assert [c.user_id for c in rest] == [young, young]
    every = [c.delivery_id for c in claimed + rest]
    assert len(every) == len(set(every)) == 7


async def test_concurrent_claims_under_a_hold_never_overlap(database: Database) -> None:
    """Without the seeds' lock (a grouped query), the candidates' lock keeps workers apart."""
    users = [await _user(database, Platform.TELEGRAM) for _ in range(12)]
    for i in range(60):
        await _written(database, users[i % 12], f"h{i}", _fill(i), ago=120)
    ids: list[int] = []
    for _ in range(12):
        batches = await asyncio.gather(
            *(
                outbox.claim(database, Platform.TELEGRAM, f"w{i}", limit=3, hold=HOLD)
                for i in range(4)
            )
        )
        ids += [c.delivery_id for batch in batches for c in batch]
    assert len(ids) == len(set(ids)) == 60
