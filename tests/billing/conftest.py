"""Billing with the real stripe-python client against a local Stripe; webhooks into the ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from pydantic import SecretStr

from db.models import Platform, User
from db.session import Database
from robotrader.app import App
from robotrader.settings import Settings
from robotrader.use_cases.accounts import register
from tests.emulators.stripe_api import StripeEmulator
from web.app import create_app

API_KEY = "sk_test_FAKE_robotrader_billing_0001"
WEBHOOK_SECRET = "whsec_FAKE_robotrader_0001"
PRICES = {"price_pro": 2900, "price_premium": 9900}


@pytest.fixture(scope="module")
def stripe_emulator() -> Iterator[StripeEmulator]:
    with StripeEmulator(api_key=API_KEY, prices=PRICES) as emulator:
        yield emulator


@dataclass
class Billing:
    app: App
    stripe: StripeEmulator
    web: httpx.AsyncClient

    async def user(self, name: str) -> int:
        account = await register(
            self.app, Platform.TELEGRAM, name, chat_id=name, client_language="en"
        )
        return account.user_id

    async def plan(self, user_id: int) -> str:
        async with self.app.database.sessions() as session:
            user = await session.get(User, user_id)
            assert user is not None
            return str(user.plan)

    def checkout_for(self, user_id: int) -> str:
        sessions = [
            s
            for s in self.stripe.objects("checkout.session")
            if s.get("client_reference_id") == str(user_id)
        ]
        return str(sessions[-1]["id"])

    async def post_events(self, events: list[dict] | None = None, **options: object) -> list[int]:
        """Every (or the given) event, signed as Stripe signs them, posted to /stripe/webhook."""
        statuses = []
        for webhook in self.stripe.signed_requests(WEBHOOK_SECRET, events, **options):  # type: ignore[arg-type]
            answer = await self.web.post(
                "/stripe/webhook", content=webhook.body, headers=webhook.headers
            )
            statuses.append(answer.status_code)
        return statuses


@pytest.fixture
async def billing(
    settings: Settings, database: Database, stripe_emulator: StripeEmulator
) -> AsyncIterator[Billing]:
    settings = settings.model_copy(
        update={
            "stripe_api_key": SecretStr(API_KEY),
            "stripe_api_base": stripe_emulator.base_url,
            "stripe_webhook_secret": SecretStr(WEBHOOK_SECRET),
            "stripe_price_pro": "price_pro",
            "stripe_price_premium": "price_premium",
            "market_data": "replay",
        }
    )
    app = App.from_settings(settings, database)
    stripe_emulator.signed_requests(WEBHOOK_SECRET)  # earlier tests' events are not ours
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(app)), base_url="http://test"
    ) as web:
        yield Billing(app, stripe_emulator, web)
    await app.pool.close()
