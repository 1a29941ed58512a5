"""Plans: what the user has and uses, upgrading through Stripe Checkout, the portal, webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from billing.downgrade import bots_over_limits, pause_over_limits
from billing.plans import PLANS, PlanLimits, Usage, limits_of
from billing.stripe_gateway import BillingUnavailable, StripeConfig, StripeGateway
from billing.subscriptions import RANK, PlanChange, effective_plan, record_subscription, superseded
from db.models import ChatIdentity, Plan, StripeEvent, Subscription, User
from db.notifications import PaymentFailedNotice, PlanChangedNotice
from db.outbox import add_notification
from db.session import upsert
from db.types import utcnow
from engine.strategies.registry import basic_strategies
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.plans import limits_in_force, plan_in_force
from robotrader.public_links import public_url
from robotrader.settings import Settings
from robotrader.use_cases.usage import plan_usage

log = logging.getLogger(__name__)

HANDLED_EVENTS = frozenset(
    {
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_failed",
    }
)
BASIC = frozenset(s.info.name for s in basic_strategies())


def stripe_gateway(settings: Settings) -> StripeGateway | None:
    """The Stripe client, or None when billing is not configured (the embedded default)."""
    if settings.stripe_api_key is None:
        return None
    prices = {
        plan: price
        for plan, price in (
            (Plan.PRO, settings.stripe_price_pro),
            (Plan.PREMIUM, settings.stripe_price_premium),
        )
        if price
    }
    secret = settings.stripe_webhook_secret
    return StripeGateway(
        StripeConfig(
            api_key=settings.stripe_api_key.get_secret_value(),
            api_base=settings.stripe_api_base,
            webhook_secret=secret.get_secret_value() if secret else None,
            prices=prices,
        )
    )


def _require_gateway(app: App) -> StripeGateway:
    gateway = stripe_gateway(app.settings)
    if gateway is None:
        raise UserError("billing_not_configured")
    return gateway


@dataclass(frozen=True)
class PlanOverview:
    plan: Plan  # the plan in force (robotrader/plans.py)
    limits: PlanLimits
    usage: Usage
    renews_at: datetime | None
    cancel_at_period_end: bool
    plans_apply: bool  # False: this server sells no plans (no Stripe), every feature is on


async def plan_overview(app: App, user_id: int) -> PlanOverview:
    """The user's plan in force, its limits and how much of them the user uses."""
    async with app.database.sessions() as session:
        user = await session.get(User, user_id)
        assert user is not None
        usage = await plan_usage(session, user_id)
        _, renews = await effective_plan(session, user_id)
        canceling = await session.scalar(
            select(Subscription.cancel_at_period_end)
            .where(Subscription.user_id == user_id, Subscription.plan == user.plan)
            .order_by(Subscription.updated_at.desc())
            .limit(1)
        )
        plan = plan_in_force(app.settings, user.plan)
        return PlanOverview(
            plan, limits_of(plan), usage, renews, bool(canceling),
            plans_apply=app.settings.billing_enabled,
        )  # fmt: skip


def paid_plans() -> list[PlanLimits]:
    """The plans one can /upgrade to, cheapest first, with their prices and limits."""
    return sorted(
        (limits for limits in PLANS.values() if limits.price_usd_month > 0),
        key=lambda limits: limits.price_usd_month,
    )


def upgrade_offers(app: App) -> list[PlanLimits]:
    """What /upgrade offers: every paid plan, where this server sells plans."""
    if not app.settings.billing_enabled:
        raise UserError("billing_not_configured")
    return paid_plans()


def parse_plan(name: str) -> Plan:
    normalized = name.strip().lower()
    if normalized not in {str(limits.plan) for limits in paid_plans()}:
        raise UserError("unknown_plan", name=name[:20])
    return Plan(normalized)


async def _customer(app: App, gateway: StripeGateway, user_id: int) -> str:
    """The user's Stripe customer, created once."""
    async with app.database.sessions() as session:
        user = await session.get(User, user_id)
        assert user is not None
        if user.stripe_customer_id:
            return user.stripe_customer_id
        name = await session.scalar(
            select(ChatIdentity.display_name).where(ChatIdentity.user_id == user_id).limit(1)
        )
    customer_id = await gateway.create_customer(user_id, name)
    async with app.database.transaction() as session:
        user = await session.get(User, user_id, with_for_update=True)
        assert user is not None
        if user.stripe_customer_id:  # a concurrent /upgrade won the race: keep one customer
            return user.stripe_customer_id
        user.stripe_customer_id = customer_id
    return customer_id


async def start_upgrade(app: App, user_id: int, plan_name: str) -> str:
    """A Stripe Checkout link for ``plan`` (pro or premium)."""
    gateway = _require_gateway(app)
    plan = parse_plan(plan_name)
    async with app.database.sessions() as session:
        user = await session.get(User, user_id)
        assert user is not None
        if RANK[Plan(user.plan)] >= RANK[plan]:
            raise UserError("already_on_plan", plan=str(user.plan))
    try:
        customer = await _customer(app, gateway, user_id)
        return await gateway.checkout_url(
            user_id=user_id,
            customer_id=customer,
            plan=plan,
            success_url=public_url(app.settings, "/billing/thanks"),
            cancel_url=public_url(app.settings, "/billing/canceled"),
        )
    except BillingUnavailable:
        raise UserError("billing_unavailable") from None


async def billing_portal(app: App, user_id: int) -> str:
    """A Stripe Customer Portal link (change card, cancel)."""
    gateway = _require_gateway(app)
    async with app.database.sessions() as session:
        user = await session.get(User, user_id)
        assert user is not None
        customer = user.stripe_customer_id
    if not customer:
        raise UserError("no_subscription")
    try:
        return await gateway.portal_url(customer, public_url(app.settings, "/billing/return"))
    except BillingUnavailable:
        raise UserError("billing_unavailable") from None


def _subscription_of(event: Any) -> str | None:
    obj = event["data"]["object"]
    kind = event["type"]
    if kind.startswith("customer.subscription."):
        return str(obj["id"])
    if kind == "checkout.session.completed":
        return str(obj["subscription"]) if obj.get("subscription") else None
    if kind.startswith("invoice."):
        parent = obj.get("parent") or {}
        details = parent.get("subscription_details") or {}
        return str(details["subscription"]) if details.get("subscription") else None
    return None


async def _event_seen(app: App, event_id: str) -> bool:
    async with app.database.sessions() as session:
        return await session.get(StripeEvent, event_id) is not None


async def handle_stripe_webhook(app: App, payload: bytes, signature: str) -> str:
    """Verify, deduplicate and apply one Stripe event. Returns what happened.

    Raises InvalidSignature (the caller answers 400) and BillingUnavailable (the
    caller answers 503 so Stripe retries; nothing was stored).
    """
    gateway = stripe_gateway(app.settings)
    if gateway is None:
        raise BillingUnavailable("billing not configured")
    event = gateway.verify_event(payload, signature)
    event_id, kind = str(event["id"]), str(event["type"])
    if await _event_seen(app, event_id):
        return "duplicate"
    subscription_id = _subscription_of(event) if kind in HANDLED_EVENTS else None
    fresh = await gateway.subscription(subscription_id) if subscription_id else None
    read_at = utcnow()
    portal = None
    if kind == "invoice.payment_failed" and event["data"]["object"].get("customer"):
        portal = await gateway.portal_url(
            str(event["data"]["object"]["customer"]), public_url(app.settings, "/billing/return")
        )
    async with app.database.transaction() as session:
        stored = await session.execute(
            upsert(session, StripeEvent)
            .values(id=event_id, type=kind, received_at=read_at)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(StripeEvent.id)
        )
        if stored.scalar_one_or_none() is None:
            return "duplicate"
        if fresh is None:
            return "ignored" if kind not in HANDLED_EVENTS else "no_subscription"
        user_id, change = await record_subscription(
            session, fresh, _plan_of(gateway, fresh), read_at
        )
        if user_id is None:
            log.warning("stripe.unknown_owner event=%s subscription=%s", event_id, subscription_id)
            return "unknown_user"
        if change is not None:
            await _announce(session, event_id, change)
        if portal is not None:
            await add_notification(
                session,
                user_id=user_id,
                notice=PaymentFailedNotice(portal_url=portal),
                priority=2,
                dedupe_key=f"stripe:{event_id}:payment_failed",
            )
    # Bought a better plan: stop billing the one it replaces. The event is stored, so
    # this must not fail the webhook (Stripe's redelivery would be a duplicate): what
    # fails here is retried by billing_follow_ups until Stripe confirms.
    await cancel_superseded_subscriptions(app, user_id)
    return "applied"


def _plan_of(gateway: StripeGateway, subscription: Any) -> Plan:
    price_plan = gateway.config.plan_of_price(_price(subscription))
    metadata_plan = (subscription.get("metadata") or {}).get("plan")
    return price_plan or (Plan(metadata_plan) if metadata_plan in ("pro", "premium") else Plan.FREE)


async def cancel_superseded_subscriptions(app: App, user_id: int | None = None) -> int:
    """Cancel at Stripe every subscription a better plan replaced (billing/subscriptions.py
    ``superseded``); returns how many Stripe confirmed cancelled this time.

    A durable job: the work is derived from stored state, so a call that fails stays
    to do. A cancel Stripe already did (we died before recording it) is confirmed by
    reading the subscription back, never repeated blindly.
    """
    gateway = stripe_gateway(app.settings)
    if gateway is None:
        return 0
    async with app.database.sessions() as session:
        pending = await superseded(session, user_id)
    confirmed = 0
    for subscription_id in pending:
        try:
            state = await gateway.cancel_subscription(subscription_id)
        except BillingUnavailable as exc:
            try:
                state = await gateway.subscription(subscription_id)
            except BillingUnavailable:
                state = {}
            if state.get("status") != "canceled":
                log.warning("stripe.cancel_pending subscription=%s reason=%s", subscription_id, exc)
                continue
        async with app.database.transaction() as session:
            owner, change = await record_subscription(
                session, state, _plan_of(gateway, state), utcnow()
            )
            if change is not None:
                await _announce(session, f"cancel:{subscription_id}", change)
        log.info("stripe.superseded_cancelled subscription=%s user=%s", subscription_id, owner)
        confirmed += 1
    return confirmed


FOLLOW_UP_SECONDS = 60.0


async def billing_follow_ups(
    app: App, stop: asyncio.Event, *, interval: float = FOLLOW_UP_SECONDS
) -> None:
    """Until ``stop``: every ``interval`` seconds, the Stripe calls still to make."""
    if stripe_gateway(app.settings) is None:
        return
    while not stop.is_set():
        try:
            await cancel_superseded_subscriptions(app)
        except Exception:  # a bug or the database away: logged, tried again next time
            log.exception("stripe.follow_ups_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


def _price(subscription: Any) -> str | None:
    items = (subscription.get("items") or {}).get("data") or []
    return str(items[0]["price"]["id"]) if items else None


async def _announce(session: Any, event_id: str, change: PlanChange) -> None:
    paused: list[str] = []
    if change.is_downgrade:
        paused = await pause_over_limits(session, change.user_id, limits_of(change.new), BASIC)
    await add_notification(
        session,
        user_id=change.user_id,
        notice=PlanChangedNotice(
            plan=change.new,
            old_plan=change.old,
            downgrade=change.is_downgrade,
            paused=tuple(paused),
            renews_at=change.renews_at,
        ),
        priority=2,
        dedupe_key=f"stripe:{event_id}:plan_changed",
    )


async def bot_fits_plan(session: Any, settings: Settings, user_id: int, bot_id: int) -> bool:
    """False when the bot is over the limits of the user's current plan (after a downgrade)."""
    user = await session.get(User, user_id)
    assert user is not None
    limits = limits_in_force(settings, user.plan)
    over = await bots_over_limits(session, user_id, limits, BASIC)
    return all(bot.id != bot_id for bot in over)
