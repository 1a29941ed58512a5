"""The Stripe calls billing makes, through the real stripe-python client.

Configured from plain values (the API key and base URL come from settings via
robotrader): ``STRIPE_API_BASE`` lets tests point it at a local server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import stripe

from db.models import Plan


class InvalidSignature(Exception):
    """A webhook whose Stripe-Signature does not verify: ignored, nothing changes."""


class BillingUnavailable(Exception):
    """Stripe could not be reached or refused the request; nothing was changed."""


@dataclass(frozen=True)
class StripeConfig:
    api_key: str
    api_base: str
    webhook_secret: str | None
    prices: dict[Plan, str]  # plan -> Stripe price id

    def plan_of_price(self, price_id: str | None) -> Plan | None:
        for plan, price in self.prices.items():
            if price == price_id:
                return plan
        return None


class StripeGateway:
    def __init__(self, config: StripeConfig) -> None:
        self.config = config
        # StripeClient does not retry unless told to (the global stripe module does).
        self.client = stripe.StripeClient(
            config.api_key,
            base_addresses={"api": config.api_base},
            max_network_retries=2,
        )

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except stripe.StripeError as exc:
            raise BillingUnavailable(type(exc).__name__) from None

    async def create_customer(self, user_id: int, name: str | None) -> str:
        params: dict[str, Any] = {"metadata": {"user_id": str(user_id)}}
        if name:
            params["name"] = name[:100]
        customer = await self._call(self.client.v1.customers.create_async(params=params))  # type: ignore[arg-type]
        return str(customer.id)

    async def checkout_url(
        self, *, user_id: int, customer_id: str, plan: Plan, success_url: str, cancel_url: str
    ) -> str:
        price = self.config.prices.get(plan)
        if not price:
            raise BillingUnavailable(f"no Stripe price configured for {plan}")
        session = await self._call(
            self.client.v1.checkout.sessions.create_async(
                params={
                    "mode": "subscription",
                    "customer": customer_id,
                    "client_reference_id": str(user_id),
                    "line_items": [{"price": price, "quantity": 1}],
                    "success_url": success_url,
                    "cancel_url": cancel_url,
                    "metadata": {"user_id": str(user_id), "plan": str(plan)},
                    "subscription_data": {"metadata": {"user_id": str(user_id), "plan": str(plan)}},
                }
            )
        )
        return str(session.url)

    async def portal_url(self, customer_id: str, return_url: str) -> str:
        portal = await self._call(
            self.client.v1.billing_portal.sessions.create_async(
                params={"customer": customer_id, "return_url": return_url}
            )
        )
        return str(portal.url)

    async def subscription(self, subscription_id: str) -> dict[str, Any]:
        """The subscription as Stripe has it now (the source of truth, whatever event came)."""
        found = await self._call(self.client.v1.subscriptions.retrieve_async(subscription_id))
        return dict(found.to_dict())

    async def cancel_subscription(self, subscription_id: str) -> dict[str, Any]:
        """Cancel now; returns the subscription as Stripe has it after that (canceled)."""
        done = await self._call(self.client.v1.subscriptions.cancel_async(subscription_id))
        return dict(done.to_dict())

    def verify_event(self, payload: bytes, signature: str) -> dict[str, Any]:
        """The event if its signature is valid and fresh (300 s tolerance).

        Raises InvalidSignature otherwise.
        """
        if not self.config.webhook_secret:
            raise InvalidSignature("no webhook secret configured")
        try:
            event = stripe.Webhook.construct_event(payload, signature, self.config.webhook_secret)
            return dict(event.to_dict())
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise InvalidSignature(type(exc).__name__) from None
