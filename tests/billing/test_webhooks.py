"""Stripe checkout, webhooks and plan changes, end to end with the real stripe-python client."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from db.models import Bot, BotStatus, Notification, StripeEvent
from robotrader.errors import UserError
from robotrader.use_cases.billing import billing_portal, start_upgrade
from robotrader.use_cases.bots import BotSpec, create_bot, start_bot
from tests.billing.conftest import WEBHOOK_SECRET, Billing


async def _notifications(billing: Billing, user_id: int) -> list[tuple[str, dict]]:
    async with billing.app.database.sessions() as session:
        rows = await session.execute(
            select(Notification.kind, Notification.payload)
            .where(Notification.user_id == user_id)
            .order_by(Notification.id)
        )
        return [(k, p) for k, p in rows]


async def _pay(billing: Billing, user_id: int, plan: str) -> str:
    url = await start_upgrade(billing.app, user_id, plan)
    assert url.startswith(billing.stripe.base_url)
    subscription = billing.stripe.complete_checkout(billing.checkout_for(user_id))
    assert subscription is not None
    return subscription


async def test_checkout_link_creates_one_customer_per_user(billing: Billing) -> None:
    user = await billing.user("cust")
    before = len(billing.stripe.objects("customer"))
    await start_upgrade(billing.app, user, "pro")
    await start_upgrade(billing.app, user, "premium")
    assert len(billing.stripe.objects("customer")) == before + 1
    session = billing.stripe.get(billing.checkout_for(user))
    assert session["mode"] == "subscription" and session["client_reference_id"] == str(user)
    assert session["metadata"]["user_id"] == str(user)


async def test_paying_upgrades_the_plan_and_tells_the_user(billing: Billing) -> None:
    user = await billing.user("payer")
    await _pay(billing, user, "pro")
    statuses = await billing.post_events()
    assert set(statuses) == {200}
    assert await billing.plan(user) == "pro"
    kinds = [k for k, _ in await _notifications(billing, user)]
    assert kinds.count("plan_changed") == 1
    # Pro's limits apply at once: a second and third bot, and DCA.
    for name in ("one", "two", "three"):
        await create_bot(
            billing.app, user, BotSpec("binance", ["BTC/USDT"], "dca", "100", name=name)
        )


async def test_the_same_event_ten_times_is_applied_once(billing: Billing) -> None:
    user = await billing.user("replayer")
    await _pay(billing, user, "pro")
    events = billing.stripe.events_of_type("checkout.session.completed")[-1:]
    answers = []
    for webhook in billing.stripe.signed_requests(WEBHOOK_SECRET, events, duplicates=10):
        answer = await billing.web.post(
            "/stripe/webhook", content=webhook.body, headers=webhook.headers
        )
        answers.append(answer.json()["status"])
    assert answers == ["applied"] + ["duplicate"] * 9
    assert await billing.plan(user) == "pro"
    kinds = [k for k, _ in await _notifications(billing, user)]
    assert kinds.count("plan_changed") == 1


async def test_any_order_ends_in_the_same_plan(billing: Billing) -> None:
    user = await billing.user("shuffled")
    subscription = await _pay(billing, user, "pro")
    billing.stripe.cancel(subscription)  # ...and cancels right away
    statuses = await billing.post_events(shuffle=True, seed=7, duplicates=2)
    assert set(statuses) == {200}
    assert await billing.plan(user) == "free"


async def test_bad_signature_is_refused_and_changes_nothing(billing: Billing) -> None:
    user = await billing.user("forger")
    await _pay(billing, user, "premium")
    webhooks = billing.stripe.signed_requests("whsec_wrong_secret")
    for webhook in webhooks:
        answer = await billing.web.post(
            "/stripe/webhook", content=webhook.body, headers=webhook.headers
        )
        assert answer.status_code == 400
    tampered = json.loads(webhooks[-1].body)
    tampered["data"]["object"]["amount_total"] = 0
    answer = await billing.web.post(
        "/stripe/webhook", content=json.dumps(tampered).encode(), headers=webhooks[-1].headers
    )
    assert answer.status_code == 400
    assert (await billing.web.post("/stripe/webhook", content=b"{}")).status_code == 400
    assert await billing.plan(user) == "free"
    async with billing.app.database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(StripeEvent)) == 0


async def test_unknown_event_types_are_acknowledged_and_ignored(billing: Billing) -> None:
    event = {
        "id": "evt_unknown_1",
        "object": "event",
        "type": "radar.early_fraud_warning.created",
        "api_version": "2026-10-28.endive",
        "created": 1,
        "data": {"object": {"id": "issfr_1"}},
    }
    webhook = billing.stripe.signed_requests(WEBHOOK_SECRET, [event])[0]
    answer = await billing.web.post(
        "/stripe/webhook", content=webhook.body, headers=webhook.headers
    )
    assert answer.status_code == 200 and answer.json()["status"] == "ignored"


async def test_premium_while_on_pro_cancels_the_pro_subscription(billing: Billing) -> None:
    user = await billing.user("climber")
    pro = await _pay(billing, user, "pro")
    await billing.post_events()
    assert await billing.plan(user) == "pro"
    premium = await _pay(billing, user, "premium")
    await billing.post_events()
    assert await billing.plan(user) == "premium"
    assert billing.stripe.get(pro)["status"] == "canceled", "not billed twice"
    assert billing.stripe.get(premium)["status"] == "active"
    await billing.post_events()  # the cancellation of Pro arrives: still Premium
    assert await billing.plan(user) == "premium"


async def test_cancellation_pauses_bots_over_the_free_limits_newest_first(billing: Billing) -> None:
    user = await billing.user("leaver")
    subscription = await _pay(billing, user, "pro")
    await billing.post_events()
    for name, strategy in (
        ("oldest", "sma_crossover"),
        ("middle", "rsi"),
        ("newest", "sma_crossover"),
    ):
        bot = await create_bot(
            billing.app, user, BotSpec("binance", ["BTC/USDT"], strategy, "100", name=name)
        )
        await start_bot(billing.app, user, bot.id)
    billing.stripe.cancel(subscription)
    await billing.post_events()
    assert await billing.plan(user) == "free"
    async with billing.app.database.sessions() as session:
        states = dict((await session.execute(select(Bot.name, Bot.status))).all())
    assert states == {
        "oldest": BotStatus.RUNNING,
        "middle": BotStatus.PAUSED,
        "newest": BotStatus.PAUSED,
    }
    changed = [p for k, p in await _notifications(billing, user) if k == "plan_changed"][-1]
    assert changed["downgrade"] is True and changed["paused"] == ["newest", "middle"]
    with pytest.raises(UserError) as refused:
        await start_bot(billing.app, user, "newest")
    assert refused.value.key == "bot_over_plan"


async def test_failed_payment_sends_a_portal_link(billing: Billing) -> None:
    user = await billing.user("declined")
    subscription = await _pay(billing, user, "pro")
    await billing.post_events()
    billing.stripe.fail_payment(subscription)
    await billing.post_events()
    failed = [p for k, p in await _notifications(billing, user) if k == "payment_failed"]
    assert failed and failed[0]["portal_url"].startswith(billing.stripe.base_url)
    assert await billing.plan(user) == "pro"  # past_due keeps the plan while Stripe retries
    assert (await billing_portal(billing.app, user)).startswith(billing.stripe.base_url)
