"""A user's plan follows the state of their Stripe subscriptions, never the order events arrive in.

Every subscription event is answered by reading the subscription from Stripe
itself and recording that state with the time we read it: an older read never
overwrites a newer one, so duplicates and reordering change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Plan, Subscription, User

# Statuses in which the subscriber keeps the plan (past_due: Stripe is still retrying the card).
ENTITLED = frozenset({"active", "trialing", "past_due"})
RANK = {Plan.FREE: 0, Plan.PRO: 1, Plan.PREMIUM: 2}


@dataclass(frozen=True)
class PlanChange:
    user_id: int
    old: Plan
    new: Plan
    renews_at: datetime | None

    @property
    def is_downgrade(self) -> bool:
        return RANK[self.new] < RANK[self.old]


def _get(obj: Any, key: str, default: Any = None) -> Any:
    try:
        value = obj[key]
    except (KeyError, TypeError, IndexError):
        return default
    return default if value is None else value


def _period_end(subscription: Any) -> datetime | None:
    """In API 2026-10-28 the period lives on the subscription item."""
    items = _get(_get(subscription, "items", {}), "data", [])
    end = _get(items[0], "current_period_end") if items else None
    return datetime.fromtimestamp(int(end), UTC) if end else None


def _price_id(subscription: Any) -> str | None:
    items = _get(_get(subscription, "items", {}), "data", [])
    return str(_get(_get(items[0], "price", {}), "id")) if items else None


async def owner_of(session: AsyncSession, subscription: Any) -> int | None:
    """The user a subscription belongs to: its metadata, else its customer."""
    user_id = _get(_get(subscription, "metadata", {}), "user_id")
    if user_id and str(user_id).isdigit():
        return int(user_id)
    customer = _get(subscription, "customer")
    if customer:
        found = await session.scalar(
            select(User.id).where(User.stripe_customer_id == str(customer))
        )
        return int(found) if found is not None else None
    return None


async def effective_plan(session: AsyncSession, user_id: int) -> tuple[Plan, datetime | None]:
    """The best plan among the user's entitled subscriptions, and when it renews."""
    rows = (
        await session.scalars(
            select(Subscription).where(
                Subscription.user_id == user_id, Subscription.status.in_(ENTITLED)
            )
        )
    ).all()
    best = max(rows, key=lambda s: RANK[Plan(s.plan)], default=None)
    return (Plan(best.plan), best.current_period_end) if best else (Plan.FREE, None)


async def record_subscription(
    session: AsyncSession, subscription: Any, plan: Plan, read_at: datetime
) -> tuple[int | None, PlanChange | None]:
    """Store what Stripe says now; returns (owner, the plan change it causes, if any)."""
    user_id = await owner_of(session, subscription)
    if user_id is None:
        return None, None
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        return None, None
    sub_id = str(_get(subscription, "id"))
    row = await session.scalar(
        select(Subscription).where(Subscription.stripe_subscription_id == sub_id).with_for_update()
    )
    if row is None:
        row = Subscription(
            user_id=user_id, stripe_subscription_id=sub_id,
            stripe_customer_id=str(_get(subscription, "customer", "")), price_id="", plan=plan,
            status="", state_as_of=read_at,
        )  # fmt: skip
        session.add(row)
    elif row.state_as_of > read_at:
        return user_id, None  # a newer read already won
    row.status = str(_get(subscription, "status", "incomplete"))
    row.price_id = _price_id(subscription) or row.price_id
    row.plan = plan
    row.current_period_end = _period_end(subscription)
    row.cancel_at_period_end = bool(_get(subscription, "cancel_at_period_end", False))
    row.state_as_of = read_at
    if user.stripe_customer_id is None and _get(subscription, "customer"):
        user.stripe_customer_id = str(_get(subscription, "customer"))
    await session.flush()
    new_plan, renews = await effective_plan(session, user_id)
    old_plan = Plan(user.plan)
    if new_plan == old_plan:
        return user_id, None
    user.plan = new_plan
    return user_id, PlanChange(user_id, old_plan, new_plan, renews)


# Statuses in which a newly bought plan has really started (paid, or in its trial).
STARTED = frozenset({"active", "trialing"})


async def superseded(session: AsyncSession, user_id: int | None = None) -> list[str]:
    """Entitled subscriptions replaced by a better one bought later: to cancel at Stripe.

    Read from the stored state, not remembered from an event, so a cancel that failed
    is found again by the next run, until Stripe's answer (canceled) is recorded. Per
    user, the keeper is the best started subscription (the newest among equals); an
    entitled one bought before it, of no better plan, is superseded.
    """
    query = select(Subscription).where(Subscription.status.in_(ENTITLED))
    if user_id is not None:
        query = query.where(Subscription.user_id == user_id)
    rows = (await session.scalars(query.order_by(Subscription.user_id, Subscription.id))).all()
    by_user: dict[int, list[Subscription]] = {}
    for row in rows:
        by_user.setdefault(row.user_id, []).append(row)
    found: list[str] = []
    for subscriptions in by_user.values():
        started = [s for s in subscriptions if s.status in STARTED]
        if not started:
            continue
        keeper = max(started, key=lambda s: (RANK[Plan(s.plan)], s.id))
        found.extend(
            s.stripe_subscription_id
            for s in subscriptions
            if s.id < keeper.id and RANK[Plan(s.plan)] <= RANK[Plan(keeper.plan)]
        )
    return found
