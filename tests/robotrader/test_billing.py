"""robotrader.use_cases.billing called directly, against the local Stripe emulator.

The webhook's HTTP side (status codes, retries, ordering) is tested in tests/billing;
here the use case itself: plan overview, checkout and portal links, one event applied.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy import update

from billing.stripe_gateway import InvalidSignature
from db.models import Plan, User
from db.session import Database
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.settings import Settings
from robotrader.use_cases.billing import (
    billing_portal,
    bot_fits_plan,
    handle_stripe_webhook,
    parse_plan,
    plan_overview,
    start_upgrade,
)
from robotrader.use_cases.bots import BotSpec, create_bot
from tests.billing.conftest import API_KEY, PRICES, WEBHOOK_SECRET
from tests.emulators.stripe_api import StripeEmulator
from tests.engine.conftest import make_user


@pytest.fixture(scope="module")
def stripe() -> Iterator[StripeEmulator]:
    with StripeEmulator(api_key=API_KEY, prices=PRICES) as emulator:
        yield emulator


@pytest.fixture
async def paid_app(
    settings: Settings, database: Database, stripe: StripeEmulator
) -> AsyncIterator[App]:
    settings = settings.model_copy(
        update={
            "stripe_api_key": SecretStr(API_KEY), "stripe_api_base": stripe.base_url,
            "stripe_webhook_secret": SecretStr(WEBHOOK_SECRET), "stripe_price_pro": "price_pro",
            "stripe_price_premium": "price_premium", "market_data": "replay",
        }
    )  # fmt: skip
    application = App.from_settings(settings, database)
    stripe.signed_requests(WEBHOOK_SECRET)  # earlier tests' events are not ours
    yield application
    await application.pool.close()


async def refused(call: object) -> str:
    with pytest.raises(UserError) as raised:
        await call  # type: ignore[misc]
    return raised.value.key


async def _plan(app: App, user: int) -> Plan:
    async with app.database.sessions() as session:
        row = await session.get(User, user)
        assert row is not None
        return Plan(row.plan)


def test_only_paid_plans_can_be_bought() -> None:
    assert parse_plan(" PRO ") == Plan.PRO
    for name in ("free", "gold", ""):
        with pytest.raises(UserError) as raised:
            parse_plan(name)
        assert raised.value.key == "unknown_plan"


async def test_the_overview_shows_plan_limits_and_usage(app: App) -> None:
    user = await make_user(app, plan="pro")
    await create_bot(app, user, BotSpec("binance", ["BTC/USDT", "ETH/USDT"], "dca", "100"))
    overview = await plan_overview(app, user)
    assert (overview.plan, overview.limits.max_bots) == (Plan.PRO, 5)
    assert (overview.usage.bots, overview.usage.symbols) == (1, 2)
    assert overview.renews_at is None and not overview.cancel_at_period_end


async def test_without_stripe_configured_billing_says_so(self_hosted_app: App) -> None:
    user = await make_user(self_hosted_app, plan="free")
    for plan in ("pro", "gold"):
        refusal = await refused(start_upgrade(self_hosted_app, user, plan))
        assert refusal == "billing_not_configured"
    assert await refused(billing_portal(self_hosted_app, user)) == "billing_not_configured"


async def test_upgrade_links_one_customer_and_refuses_a_lower_plan(
    paid_app: App, stripe: StripeEmulator
) -> None:
    user = await make_user(paid_app, plan="free")
    assert await refused(billing_portal(paid_app, user)) == "no_subscription"
    assert (await start_upgrade(paid_app, user, "pro")).startswith(stripe.base_url)
    await start_upgrade(paid_app, user, "premium")
    async with paid_app.database.sessions() as session:
        row = await session.get(User, user)
    assert row is not None and row.stripe_customer_id
    assert [c["id"] for c in stripe.objects("customer")].count(row.stripe_customer_id) == 1
    assert (await billing_portal(paid_app, user)).startswith(stripe.base_url)
    premium = await make_user(paid_app, "rich", plan="premium")
    assert await refused(start_upgrade(paid_app, premium, "pro")) == "already_on_plan"


async def test_a_paid_checkout_event_upgrades_once(paid_app: App, stripe: StripeEmulator) -> None:
    user = await make_user(paid_app, plan="free")
    await start_upgrade(paid_app, user, "pro")
    sessions = [s for s in stripe.objects("checkout.session")
                if s.get("client_reference_id") == str(user)]  # fmt: skip
    assert stripe.complete_checkout(str(sessions[-1]["id"])) is not None
    outcomes = [
        await handle_stripe_webhook(paid_app, hook.body, hook.headers["Stripe-Signature"])
        for hook in stripe.signed_requests(WEBHOOK_SECRET)
    ]
    assert "applied" in outcomes and await _plan(paid_app, user) == Plan.PRO
    [first, *_] = stripe.signed_requests(WEBHOOK_SECRET, stripe.objects("event")[-1:])
    assert await handle_stripe_webhook(paid_app, first.body, first.headers["Stripe-Signature"]) == (
        "duplicate"
    )
    with pytest.raises(InvalidSignature):
        await handle_stripe_webhook(paid_app, first.body, "t=1,v1=forged")


async def test_after_a_downgrade_only_the_oldest_basic_bot_fits(app: App) -> None:
    user = await make_user(app)
    oldest = await create_bot(app, user, BotSpec("binance", ["BTC/USDT"], "rsi", "100"))
    newer = await create_bot(app, user, BotSpec("binance", ["BTC/USDT"], "rsi", "100"))
    async with app.database.transaction() as session:
        await session.execute(update(User).where(User.id == user).values(plan="free"))
    async with app.database.transaction() as session:
        assert await bot_fits_plan(session, app.settings, user, oldest.id)
        assert not await bot_fits_plan(session, app.settings, user, newer.id)
