"""Upgrading Pro -> Premium cancels Pro at Stripe, however often Stripe fails that call.

Before, the cancel was one call after the event was committed: when it failed, the
webhook answered 503, Stripe's retry was a duplicate, and Pro was billed forever next
to Premium. Now what to cancel is read from the stored subscriptions and the cancel is
retried (by the webhook, then by the web process's follow-up loop) until Stripe
confirms it.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from db.models import Subscription
from robotrader.use_cases.billing import (
    billing_follow_ups,
    cancel_superseded_subscriptions,
    start_upgrade,
)
from tests.billing.conftest import Billing


async def _pay(billing: Billing, user_id: int, plan: str) -> str:
    await start_upgrade(billing.app, user_id, plan)
    subscription = billing.stripe.complete_checkout(billing.checkout_for(user_id))
    assert subscription is not None
    return subscription


async def _stored_status(billing: Billing, subscription: str) -> str:
    async with billing.app.database.sessions() as session:
        status = await session.scalar(
            select(Subscription.status).where(Subscription.stripe_subscription_id == subscription)
        )
    return str(status)


async def test_a_failed_cancel_is_retried_until_stripe_confirms(billing: Billing) -> None:
    user = await billing.user("twice")
    pro = await _pay(billing, user, "pro")
    await billing.post_events()
    premium = await _pay(billing, user, "premium")
    # Stripe fails every cancel attempt the webhook makes (stripe-python retries twice).
    billing.stripe.fail_next(30, 500, path_prefix=f"/v1/subscriptions/{pro}")

    statuses = await billing.post_events()

    assert all(s == 200 for s in statuses), statuses  # nothing for Stripe to redeliver
    assert await billing.plan(user) == "premium"
    assert billing.stripe.get(pro)["status"] == "active"  # not cancelled yet ...
    assert await _stored_status(billing, pro) == "active"

    assert await cancel_superseded_subscriptions(billing.app) == 0  # still failing
    assert billing.stripe.get(pro)["status"] == "active"

    billing.stripe._failures.clear()  # Stripe is back (the emulator has no public reset)
    assert await cancel_superseded_subscriptions(billing.app) == 1
    assert billing.stripe.get(pro)["status"] == "canceled"  # ... until Stripe confirms
    assert await _stored_status(billing, pro) == "canceled"
    assert billing.stripe.get(premium)["status"] == "active"
    assert await cancel_superseded_subscriptions(billing.app) == 0  # done: no more calls
    await billing.post_events()  # Stripe's own cancellation event changes nothing
    assert await billing.plan(user) == "premium"


async def test_a_cancel_stripe_did_but_we_never_recorded_is_confirmed_not_repeated(
    billing: Billing,
) -> None:
    user = await billing.user("crashed")
    pro = await _pay(billing, user, "pro")
    await billing.post_events()
    await _pay(billing, user, "premium")
    billing.stripe.fail_next(30, 500, path_prefix=f"/v1/subscriptions/{pro}")
    await billing.post_events()
    billing.stripe._failures.clear()
    billing.stripe.cancel(pro)  # done at Stripe; our process died before recording it
    assert await _stored_status(billing, pro) == "active"
    assert await cancel_superseded_subscriptions(billing.app) == 1
    assert await _stored_status(billing, pro) == "canceled"


async def test_the_follow_up_loop_runs_until_stopped(billing: Billing) -> None:
    user = await billing.user("looped")
    pro = await _pay(billing, user, "pro")
    await billing.post_events()
    await _pay(billing, user, "premium")
    billing.stripe.fail_next(30, 500, path_prefix=f"/v1/subscriptions/{pro}")
    await billing.post_events()
    assert billing.stripe.get(pro)["status"] == "active"
    billing.stripe._failures.clear()
    stop = asyncio.Event()
    loop = asyncio.create_task(billing_follow_ups(billing.app, stop, interval=0.05))
    for _ in range(200):
        if billing.stripe.get(pro)["status"] == "canceled":
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(loop, 5)
    assert billing.stripe.get(pro)["status"] == "canceled"
