"""The Stripe emulator, exercised through the real stripe-python client.

Everything the billing code relies on is checked here against stripe-python's
own behaviour (its error classes, its retries, its webhook verification), so a
passing suite means the emulator speaks the client's dialect of the API.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from aiohttp import web
from stripe import _http_client
from stripe._encode import _api_encode

from tests.emulators.server import ThreadedServer
from tests.emulators.stripe_api import (
    API_VERSION,
    WEBHOOK_USER_AGENT,
    StripeEmulator,
    diff_previous_attributes,
    encode_stripe_form,
    mask_api_key,
    parse_stripe_form,
)

API_KEY = "sk_test_51EmulatorKeyabcd"
WEBHOOK_SECRET = "whsec_test_emulator_secret"
PRICES = {"price_pro": 2900, "price_premium": 9900}
REPO_ROOT = Path(__file__).resolve().parents[2]

CHECKOUT_EVENTS = [
    "customer.subscription.created",
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_succeeded",
    "checkout.session.completed",
]


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def emulator() -> Iterator[StripeEmulator]:
    with StripeEmulator(api_key=API_KEY, prices=PRICES) as emu:
        yield emu


@pytest.fixture
def client(emulator: StripeEmulator) -> stripe.StripeClient:
    return stripe.StripeClient(API_KEY, base_addresses={"api": emulator.base_url})


@pytest.fixture
def retrying_client(
    emulator: StripeEmulator, monkeypatch: pytest.MonkeyPatch
) -> stripe.StripeClient:
    """A client that retries (StripeClient's default is *no* retries) without sleeping long."""
    monkeypatch.setattr(_http_client.HTTPClient, "_sleep_time_seconds", lambda self, n: 0.01)
    return stripe.StripeClient(
        API_KEY, base_addresses={"api": emulator.base_url}, max_network_retries=2
    )


class WebhookReceiver(ThreadedServer):
    """A loopback endpoint that verifies signatures with stripe-python, like our app must."""

    def __init__(self, secret: str, status: int = 200) -> None:
        super().__init__()
        self.secret = secret
        self.status = status
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.rejected = 0
        self._lock = threading.Lock()

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/stripe/webhook", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            event = stripe.Webhook.construct_event(
                body, request.headers.get("Stripe-Signature"), self.secret
            )
        except (stripe.SignatureVerificationError, ValueError):
            with self._lock:
                self.rejected += 1
            return web.Response(status=400)
        with self._lock:
            self.received.append(event.to_dict())
            self.headers.append(dict(request.headers))
        return web.Response(status=self.status)

    @property
    def url(self) -> str:
        return f"{self.base_url}/stripe/webhook"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(WEBHOOK_SECRET) as server:
        yield server


def _subscribe(
    client: stripe.StripeClient, emulator: StripeEmulator, price: str = "price_pro"
) -> tuple[str, str, str]:
    """Customer + checkout session + payment: (customer id, session id, subscription id)."""
    customer = client.v1.customers.create(
        params={"email": "trader@example.com", "metadata": {"user_id": "42"}}
    )
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": price, "quantity": 1}],
            "success_url": "https://robotrader.test/ok?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://robotrader.test/cancel",
            "client_reference_id": "42",
            "metadata": {"user_id": "42"},
            "subscription_data": {"metadata": {"user_id": "42", "plan": "pro"}},
        }
    )
    subscription_id = emulator.complete_checkout(session.id)
    assert subscription_id is not None
    return customer.id, session.id, subscription_id


# -- module & encoding ------------------------------------------------------------------------


def test_module_does_not_shadow_the_stripe_package() -> None:
    assert Path(stripe.__file__).parent.name == "stripe"
    assert "site-packages" in stripe.__file__
    assert not (Path(__file__).parent / "stripe.py").exists()


def test_form_parser_inverts_stripe_python_encoding() -> None:
    params = {
        "mode": "subscription",
        "line_items": [{"price": "price_pro", "quantity": 1}, {"price": "price_x", "quantity": 2}],
        "metadata": {"user_id": "7", "0": "digit key stays a dict key"},
        "subscription_data": {"metadata": {"user_id": "7"}},
        "expand": ["subscription", "customer"],
        "cancel_at_period_end": True,
    }
    pairs = [(key, str(value)) for key, value in _api_encode(params)]
    assert ("line_items[0][price]", "price_pro") in pairs
    assert ("subscription_data[metadata][user_id]", "7") in pairs
    parsed = parse_stripe_form(pairs)
    assert parsed["line_items"] == [
        {"price": "price_pro", "quantity": "1"},
        {"price": "price_x", "quantity": "2"},
    ]
    assert parsed["metadata"] == {"user_id": "7", "0": "digit key stays a dict key"}
    assert parsed["subscription_data"] == {"metadata": {"user_id": "7"}}
    assert parsed["expand"] == ["subscription", "customer"]
    assert parsed["cancel_at_period_end"] == "true"  # stripe-python lower-cases bools
    assert parse_stripe_form([("expand[]", "a"), ("expand[]", "b")]) == {"expand": ["a", "b"]}
    assert parse_stripe_form(encode_stripe_form({"a": {"b": [{"c": "d"}]}})) == {
        "a": {"b": [{"c": "d"}]}
    }


def test_mask_and_diff_helpers() -> None:
    assert mask_api_key("sk_test_xxxxabcd") == "sk_test_****abcd"
    assert mask_api_key("sk_live_123456789") == "sk_live_*****6789"
    assert diff_previous_attributes(
        {"a": 1, "m": {"x": "1", "y": "2"}, "l": [1]}, {"a": 2, "m": {"x": "1"}, "l": [1]}
    ) == {"a": 1, "m": {"y": "2"}}


# -- customers --------------------------------------------------------------------------------


def test_customer_create_retrieve_update_and_list_by_email(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    created = client.v1.customers.create(
        params={"email": "a@example.com", "name": "Ann", "metadata": {"user_id": "1"}}
    )
    client.v1.customers.create(params={"email": "b@example.com"})
    assert created.object == "customer"
    assert created.id.startswith("cus_")
    assert created.to_dict()["metadata"] == {"user_id": "1"}
    assert created.livemode is False

    updated = client.v1.customers.update(
        created.id, params={"name": "Ann B", "metadata": {"tier": "pro", "user_id": ""}}
    )
    assert updated.name == "Ann B"
    assert updated.to_dict()["metadata"] == {"tier": "pro"}  # "" unsets a key, like Stripe
    assert client.v1.customers.retrieve(created.id).name == "Ann B"

    listing = client.v1.customers.list(params={"email": "a@example.com"})
    assert listing["object"] == "list"
    assert listing.url == "/v1/customers"
    assert listing.has_more is False
    assert [c.id for c in listing.data] == [created.id]
    assert len(client.v1.customers.list(params={"limit": 1}).data) == 1
    assert client.v1.customers.list(params={"limit": 1}).has_more is True

    updated_event = emulator.events_of_type("customer.updated")[-1]
    assert updated_event["data"]["previous_attributes"] == {
        "metadata": {"tier": None, "user_id": "1"},
        "name": "Ann",
    }
    assert updated_event["request"]["id"].startswith("req_")
    assert updated_event["request"]["idempotency_key"]


# -- checkout & portal ------------------------------------------------------------------------


def test_checkout_session_with_nested_params(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    customer = client.v1.customers.create(params={"email": "t@example.com"})
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": "price_premium", "quantity": 1}],
            "success_url": "https://robotrader.test/ok?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://robotrader.test/cancel",
            "client_reference_id": "user-42",
            "metadata": {"user_id": "42"},
            "subscription_data": {"metadata": {"user_id": "42", "plan": "premium"}},
            "allow_promotion_codes": True,
        }
    )
    logged = emulator.requests[-1]
    assert (logged.method, logged.path) == ("POST", "/v1/checkout/sessions")
    assert logged.params["line_items"] == [{"price": "price_premium", "quantity": "1"}]
    assert logged.params["subscription_data"] == {"metadata": {"user_id": "42", "plan": "premium"}}
    assert logged.params["metadata"] == {"user_id": "42"}
    assert logged.idempotency_key  # stripe-python adds one to every POST
    assert logged.stripe_version == API_VERSION == stripe.api_version

    assert session.object == "checkout.session"
    assert session.id.startswith("cs_test_")
    assert session.url == f"{emulator.base_url}/c/pay/{session.id}"
    assert (session.status, session.payment_status, session.mode) == (
        "open",
        "unpaid",
        "subscription",
    )
    assert session.client_reference_id == "user-42"
    assert session.customer == customer.id
    assert session.subscription is None
    assert session.amount_total == 9900
    assert session.currency == "usd"
    assert session.expires_at - session.created == 24 * 3600
    assert session.to_dict()["metadata"] == {"user_id": "42"}

    again = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items"]})
    assert again["line_items"]["data"][0]["price"]["id"] == "price_premium"
    assert again["line_items"]["data"][0]["quantity"] == 1
    assert "line_items" not in client.v1.checkout.sessions.retrieve(session.id)


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"line_items": [{"price": "price_pro", "quantity": 1}]}, "mode", "parameter_missing"),
        ({"mode": "subscription"}, "line_items", "parameter_missing"),
        (
            {"mode": "subscription", "line_items": [{"price": "price_pro"}]},
            "line_items[0][quantity]",
            "parameter_missing",
        ),
        (
            {"mode": "subscription", "line_items": [{"price": "price_nope", "quantity": 1}]},
            "line_items[0][price]",
            "resource_missing",
        ),
        (
            {
                "mode": "subscription",
                "line_items": [{"price": "price_pro", "quantity": 1}],
                "customer": "cus_missing",
            },
            "customer",
            "resource_missing",
        ),
        (
            {
                "mode": "subscription",
                "line_items": [{"price": "price_pro", "quantity": 1}],
                "subscription_data": {"metdata": {"user_id": "1"}},
            },
            "subscription_data[metdata]",
            "parameter_unknown",
        ),
    ],
)
def test_checkout_session_rejects_bad_params(
    client: stripe.StripeClient, params: dict[str, Any], param: str, code: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]
    assert caught.value.http_status == 400
    assert caught.value.param == param
    assert caught.value.code == code


def test_billing_portal_session(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    customer = client.v1.customers.create(params={"email": "p@example.com"})
    portal = client.v1.billing_portal.sessions.create(
        params={"customer": customer.id, "return_url": "https://robotrader.test/account"}
    )
    assert portal.object == "billing_portal.session"
    assert portal.id.startswith("bps_")
    assert portal.customer == customer.id
    assert portal.return_url == "https://robotrader.test/account"
    assert portal.url == f"{emulator.base_url}/p/session/{portal.id}"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.billing_portal.sessions.create(params={"return_url": "https://x.test/"})
    assert caught.value.param == "customer"


def test_complete_checkout_creates_subscription_and_paid_invoice(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    customer_id, session_id, subscription_id = _subscribe(client, emulator)
    assert emulator.event_types[-len(CHECKOUT_EVENTS) :] == CHECKOUT_EVENTS

    subscription = client.v1.subscriptions.retrieve(subscription_id)
    assert subscription.object == "subscription"
    assert subscription.status == "active"
    assert subscription.customer == customer_id
    assert subscription.metadata.to_dict() == {"user_id": "42", "plan": "pro"}
    item = subscription["items"].data[0]
    assert item.price.id == "price_pro"
    assert item.quantity == 1
    assert item.current_period_start == subscription.start_date
    assert 28 * 86400 <= item.current_period_end - item.current_period_start <= 31 * 86400
    assert "current_period_end" not in subscription  # moved to the item in this API version

    assert isinstance(subscription.latest_invoice, str)
    invoice = client.v1.invoices.retrieve(subscription.latest_invoice)
    assert invoice.status == "paid"
    assert invoice.billing_reason == "subscription_create"
    assert invoice.amount_paid == 2900
    assert invoice.to_dict()["parent"] == {
        "quote_details": None,
        "subscription_details": {
            "metadata": {"user_id": "42", "plan": "pro"},
            "subscription": subscription_id,
        },
        "type": "subscription_details",
    }
    assert "subscription" not in invoice
    assert invoice.lines.data[0].period.end == item.current_period_end

    session = client.v1.checkout.sessions.retrieve(
        session_id, params={"expand": ["subscription", "customer"]}
    )
    assert (session.status, session.payment_status) == ("complete", "paid")
    assert session["subscription"]["id"] == subscription_id
    assert session["customer"]["id"] == customer_id
    assert session.client_reference_id == "42"

    listed = client.v1.subscriptions.list(params={"customer": customer_id})
    assert [s.id for s in listed.data] == [subscription_id]


def test_checkout_without_customer_creates_one(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer_email": "new@example.com",
            "line_items": [{"price": "price_pro", "quantity": 1}],
        }
    )
    subscription_id = emulator.complete_checkout(session.id)
    assert emulator.event_types == ["customer.created", *CHECKOUT_EVENTS]
    customer_id = emulator.get(subscription_id or "")["customer"]
    assert client.v1.customers.retrieve(customer_id).email == "new@example.com"
    assert client.v1.checkout.sessions.retrieve(session.id).customer == customer_id


def test_events_are_snapshots_in_stripe_shape(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    _, session_id, subscription_id = _subscribe(client, emulator)
    events = emulator.events
    by_type = {event["type"]: event for event in events}
    for event in events:
        assert event["object"] == "event"
        assert event["id"].startswith("evt_")
        assert event["api_version"] == API_VERSION
        assert event["livemode"] is False
        assert set(event) == {
            "id",
            "object",
            "api_version",
            "created",
            "data",
            "livemode",
            "pending_webhooks",
            "request",
            "type",
        }
    assert by_type["invoice.created"]["data"]["object"]["status"] == "draft"
    assert by_type["invoice.finalized"]["data"]["object"]["status"] == "open"
    assert by_type["invoice.paid"]["data"]["object"]["status"] == "paid"
    completed = by_type["checkout.session.completed"]["data"]["object"]
    assert completed["id"] == session_id
    assert completed["subscription"] == subscription_id
    assert completed["client_reference_id"] == "42"
    assert completed["metadata"] == {"user_id": "42"}
    assert by_type["checkout.session.completed"]["request"] == {
        "id": None,
        "idempotency_key": None,
    }

    fetched = client.v1.events.retrieve(by_type["invoice.paid"]["id"])
    assert isinstance(fetched.data.object, stripe.Invoice)
    parent = fetched.to_dict()["data"]["object"]["parent"]
    assert parent["subscription_details"]["subscription"] == subscription_id
    listed = client.v1.events.list(params={"type": "customer.subscription.*"})
    assert [e.type for e in listed.data] == ["customer.subscription.created"]


# -- subscription life cycle ------------------------------------------------------------------


def test_renew_fail_and_retry_payment(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    _, _, subscription_id = _subscribe(client, emulator)
    first_end = emulator.get(subscription_id)["items"]["data"][0]["current_period_end"]

    start = len(emulator.events)
    renewal_invoice = emulator.renew(subscription_id)
    assert emulator.event_types[start:] == [
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]
    updated = emulator.events[start]
    assert updated["data"]["previous_attributes"]["items"]["data"][0]["current_period_end"] == (
        first_end
    )
    subscription = client.v1.subscriptions.retrieve(subscription_id)
    assert subscription["items"].data[0].current_period_start == first_end
    assert subscription.latest_invoice == renewal_invoice
    assert client.v1.invoices.retrieve(renewal_invoice).billing_reason == "subscription_cycle"
    assert emulator.now() >= first_end

    start = len(emulator.events)
    failed_invoice = emulator.fail_payment(subscription_id)
    assert emulator.event_types[start:] == [
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
        "invoice.payment_failed",
        "customer.subscription.updated",
    ]
    assert emulator.events[-1]["data"]["previous_attributes"] == {"status": "active"}
    invoice = client.v1.invoices.retrieve(failed_invoice)
    assert (invoice.status, invoice.attempt_count, invoice.attempted) == ("open", 1, True)
    assert invoice.next_payment_attempt is not None
    assert client.v1.subscriptions.retrieve(subscription_id).status == "past_due"

    start = len(emulator.events)
    assert emulator.fail_payment(subscription_id) == failed_invoice  # the next attempt
    assert emulator.event_types[start:] == ["invoice.payment_failed"]
    assert client.v1.invoices.retrieve(failed_invoice).attempt_count == 2

    start = len(emulator.events)
    assert emulator.retry_payment(subscription_id) == failed_invoice
    assert emulator.event_types[start:] == [
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
    ]
    assert client.v1.subscriptions.retrieve(subscription_id).status == "active"


def test_cancel_through_the_api(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    customer_id, _, subscription_id = _subscribe(client, emulator)
    period_end = emulator.get(subscription_id)["items"]["data"][0]["current_period_end"]

    scheduled = client.v1.subscriptions.update(
        subscription_id, params={"cancel_at_period_end": True}
    )
    assert scheduled.cancel_at_period_end is True
    assert scheduled.cancel_at == period_end
    assert scheduled.status == "active"
    event = emulator.events[-1]
    assert event["type"] == "customer.subscription.updated"
    assert event["data"]["previous_attributes"]["cancel_at_period_end"] is False
    assert event["request"]["id"] == emulator.requests[-1].request_id

    canceled = client.v1.subscriptions.cancel(subscription_id)
    assert canceled.status == "canceled"
    assert canceled.ended_at is not None
    assert emulator.event_types[-1] == "customer.subscription.deleted"
    assert client.v1.subscriptions.list(params={"customer": customer_id}).data == []
    listed = client.v1.subscriptions.list(params={"customer": customer_id, "status": "all"})
    assert [s.id for s in listed.data] == [subscription_id]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.update(subscription_id, params={"cancel_at_period_end": False})


def test_price_change_through_the_api(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    _, _, subscription_id = _subscribe(client, emulator)
    item_id = emulator.get(subscription_id)["items"]["data"][0]["id"]
    changed = client.v1.subscriptions.update(
        subscription_id,
        params={
            "items": [{"id": item_id, "price": "price_premium"}],
            "proration_behavior": "none",
        },
    )
    assert [(i.id, i.price.id) for i in changed["items"].data] == [(item_id, "price_premium")]
    previous = emulator.events[-1]["data"]["previous_attributes"]
    assert previous["items"]["data"][0]["price"]["id"] == "price_pro"

    # Like Stripe, an item without `id` is added next to the existing one.
    added = client.v1.subscriptions.update(
        subscription_id, params={"items": [{"price": "price_pro"}]}
    )
    assert sorted(i.price.id for i in added["items"].data) == ["price_premium", "price_pro"]


def test_simulated_cancel_change_price_and_clock(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    _, _, subscription_id = _subscribe(client, emulator)

    emulator.change_price(subscription_id, "price_premium")
    event = emulator.events[-1]
    assert event["type"] == "customer.subscription.updated"
    assert event["data"]["object"]["items"]["data"][0]["price"]["id"] == "price_premium"
    assert event["data"]["previous_attributes"]["items"]["data"][0]["price"]["id"] == "price_pro"

    emulator.cancel(subscription_id, at_period_end=True)
    assert emulator.event_types[-1] == "customer.subscription.updated"
    assert emulator.events[-1]["data"]["object"]["cancel_at_period_end"] is True

    new_events = emulator.advance_clock(32 * 86400)
    assert [emulator.get(e)["type"] for e in new_events] == ["customer.subscription.deleted"]
    subscription = client.v1.subscriptions.retrieve(subscription_id)
    assert subscription.status == "canceled"
    assert subscription.ended_at == subscription["items"].data[0].current_period_end

    _, _, other = _subscribe(client, emulator)
    emulator.cancel(other)
    assert emulator.event_types[-1] == "customer.subscription.deleted"
    assert emulator.events[-1]["data"]["object"]["status"] == "canceled"


def test_advance_clock_renews_active_subscriptions(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    _, _, subscription_id = _subscribe(client, emulator)
    new_events = emulator.advance_clock(62 * 86400)
    types = [emulator.get(e)["type"] for e in new_events]
    assert types.count("invoice.paid") == 2
    assert client.v1.invoices.list(params={"subscription": subscription_id}).data[0].status == (
        "paid"
    )
    assert len(client.v1.invoices.list(params={"subscription": subscription_id}).data) == 3


# -- errors, idempotency, retries -------------------------------------------------------------


def test_wrong_api_key(emulator: StripeEmulator) -> None:
    bad = stripe.StripeClient("sk_test_wrongkey9876", base_addresses={"api": emulator.base_url})
    with pytest.raises(stripe.AuthenticationError) as caught:
        bad.v1.customers.list()
    assert caught.value.http_status == 401
    assert caught.value.json_body == {
        "error": {
            "type": "invalid_request_error",
            "message": "Invalid API Key provided: sk_test_********9876",
        }
    }


def test_missing_resource(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.customers.retrieve("cus_x")
    error = caught.value
    assert error.http_status == 404
    assert (error.code, error.param) == ("resource_missing", "id")
    assert error.user_message == "No such customer: 'cus_x'"
    assert isinstance(error.json_body, dict)
    assert error.json_body["error"]["type"] == "invalid_request_error"
    for call in (
        lambda: client.v1.subscriptions.retrieve("sub_x"),
        lambda: client.v1.invoices.retrieve("in_x"),
        lambda: client.v1.prices.retrieve("price_x"),
        lambda: client.v1.events.retrieve("evt_x"),
        lambda: client.v1.checkout.sessions.retrieve("cs_test_x"),
    ):
        with pytest.raises(stripe.InvalidRequestError):
            call()


def test_unknown_route_and_bad_expand(client: stripe.StripeClient) -> None:
    price = client.v1.prices.retrieve("price_pro", params={"expand": ["product"]})
    assert (price.unit_amount, price.currency) == (2900, "usd")
    assert price["recurring"]["interval"] == "month"
    assert price["product"]["name"] == "Pro"
    with pytest.raises(stripe.InvalidRequestError, match="cannot be expanded"):
        client.v1.prices.retrieve("price_pro", params={"expand": ["unit_amount"]})
    with pytest.raises(stripe.InvalidRequestError, match="Unrecognized request URL"):
        client.v1.coupons.retrieve("co_x")


def test_idempotent_replay(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    options: Any = {"idempotency_key": "user-42-signup"}
    first = client.v1.customers.create(params={"email": "i@example.com"}, options=options)
    second = client.v1.customers.create(params={"email": "i@example.com"}, options=options)
    assert second.id == first.id
    assert second.last_response is not None
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(emulator.objects("customer")) == 1
    assert [r.replayed for r in emulator.requests] == [False, True]
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create(params={"email": "other@example.com"}, options=options)


def test_injected_500_and_409_are_retried_with_the_same_key(
    retrying_client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    emulator.fail_next(1, 500)
    emulator.fail_next(1, 409)
    customer = retrying_client.v1.customers.create(params={"email": "r@example.com"})
    assert customer.email == "r@example.com"
    log = emulator.requests
    assert [(r.status, r.injected_failure) for r in log] == [(500, True), (409, True), (200, False)]
    assert len({r.idempotency_key for r in log}) == 1
    assert len(emulator.objects("customer")) == 1


def test_stripe_client_does_not_retry_by_default(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    # stripe.StripeClient(max_network_retries=None) means 0 retries: billing code must opt in.
    emulator.fail_next(1, 500, path_prefix="/v1/customers")
    with pytest.raises(stripe.APIError):
        client.v1.customers.create(params={"email": "n@example.com"})
    assert len(emulator.requests) == 1


def test_concurrent_clients_and_simulation(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    _, _, subscription_id = _subscribe(client, emulator)
    errors: list[BaseException] = []

    def create_customers() -> None:
        try:
            for n in range(10):
                client.v1.customers.create(params={"email": f"c{n}@example.com"})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=create_customers) for _ in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(5):
        emulator.renew(subscription_id)
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(emulator.objects("customer")) == 41
    assert emulator.event_types.count("invoice.paid") == 6


# -- async client -----------------------------------------------------------------------------


async def test_async_methods_use_httpx_and_work(emulator: StripeEmulator) -> None:
    assert _http_client.new_http_client_async_fallback().name == "httpx"
    client = stripe.StripeClient(
        API_KEY, base_addresses={"api": emulator.base_url}, max_network_retries=2
    )
    customer = await client.v1.customers.create_async(params={"email": "async@example.com"})
    session = await client.v1.checkout.sessions.create_async(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": "price_pro", "quantity": 1}],
            "metadata": {"user_id": "9"},
        }
    )
    subscription_id = emulator.complete_checkout(session.id)
    assert subscription_id is not None
    subscription = await client.v1.subscriptions.retrieve_async(subscription_id)
    assert subscription["items"].data[0].current_period_end > subscription.start_date
    portal = await client.v1.billing_portal.sessions.create_async(params={"customer": customer.id})
    assert portal.url.startswith(emulator.base_url)
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.customers.retrieve_async("cus_missing")


# -- webhooks ---------------------------------------------------------------------------------


def test_sign_is_accepted_by_stripe_python(emulator: StripeEmulator) -> None:
    payload = json.dumps({"id": "evt_1", "object": "event", "type": "x", "data": {"object": {}}})
    header = emulator.sign(payload.encode(), WEBHOOK_SECRET)
    assert header.startswith("t=") and ",v1=" in header
    event = stripe.Webhook.construct_event(payload, header, WEBHOOK_SECRET)
    assert event.id == "evt_1"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload.replace("evt_1", "evt_2"), header, WEBHOOK_SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, header, "whsec_other")
    stale = emulator.sign(payload, WEBHOOK_SECRET, timestamp=int(time.time()) - 301)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, stale, WEBHOOK_SECRET)


def test_deliver_to_a_loopback_endpoint(
    client: stripe.StripeClient, emulator: StripeEmulator, receiver: WebhookReceiver
) -> None:
    _, _, subscription_id = _subscribe(client, emulator)
    expected = [e["id"] for e in emulator.events]

    statuses = emulator.deliver(receiver.url, WEBHOOK_SECRET)
    assert statuses == [200] * len(expected)
    assert [e["id"] for e in receiver.received] == expected
    headers = receiver.headers[0]
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["User-Agent"] == WEBHOOK_USER_AGENT
    assert emulator.get(expected[0])["pending_webhooks"] == 0

    assert emulator.deliver(receiver.url, WEBHOOK_SECRET) == []  # nothing new since
    emulator.renew(subscription_id)
    renewal = emulator.deliver(receiver.url, WEBHOOK_SECRET, shuffle=True, duplicates=2, seed=3)
    assert len(renewal) == 10
    assert emulator.deliver(receiver.url, "whsec_wrong", events=emulator.events[:1]) == [400]
    assert receiver.rejected == 1


def test_signed_requests_shuffle_and_duplicate(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    _subscribe(client, emulator)
    events = emulator.events
    stamp = int(time.time())
    batch = emulator.signed_requests(
        WEBHOOK_SECRET, events=events[:2], duplicates=3, timestamp=stamp
    )
    assert [r.event_id for r in batch] == [events[0]["id"]] * 3 + [events[1]["id"]] * 3
    assert json.loads(batch[0].body) == events[0]
    assert batch[0].headers["Stripe-Signature"].startswith(f"t={stamp},v1=")
    assert (
        stripe.Webhook.construct_event(
            batch[0].body, batch[0].headers["Stripe-Signature"], WEBHOOK_SECRET
        ).type
        == events[0]["type"]
    )

    one = emulator.signed_requests(WEBHOOK_SECRET, events=events, shuffle=True, seed=1)
    two = emulator.signed_requests(WEBHOOK_SECRET, events=events, shuffle=True, seed=1)
    assert [r.event_id for r in one] == [r.event_id for r in two]
    assert sorted(r.event_id for r in one) == sorted(e["id"] for e in events)
    with pytest.raises(ValueError):
        emulator.signed_requests(WEBHOOK_SECRET, events=events, duplicates=0)


async def test_signed_requests_posted_to_an_asgi_app(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    _subscribe(client, emulator)
    received: list[str] = []

    async def app(
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        try:
            event = stripe.Webhook.construct_event(
                body, headers.get("stripe-signature"), WEBHOOK_SECRET
            )
        except stripe.SignatureVerificationError:
            status = 400
        else:
            if event.id not in received:  # handlers must be idempotent
                received.append(event.id)
            status = 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    requests = emulator.signed_requests(WEBHOOK_SECRET, shuffle=True, duplicates=2, seed=7)
    assert len(requests) == 2 * len(emulator.events)
    assert [r.event_id for r in requests] != [e["id"] for e in emulator.events for _ in (1, 2)]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        for request in requests:
            response = await http.post("/webhook", content=request.body, headers=request.headers)
            assert response.status_code == 200
    assert sorted(received) == sorted(e["id"] for e in emulator.events)


async def test_deliver_async(
    client: stripe.StripeClient, emulator: StripeEmulator, receiver: WebhookReceiver
) -> None:
    _subscribe(client, emulator)
    statuses = await emulator.deliver_async(receiver.url, WEBHOOK_SECRET)
    assert statuses == [200] * len(emulator.events)


def test_automatic_delivery_to_webhook_url(receiver: WebhookReceiver) -> None:
    with StripeEmulator(
        api_key=API_KEY, prices=PRICES, webhook_url=receiver.url, webhook_secret=WEBHOOK_SECRET
    ) as emu:
        client = stripe.StripeClient(API_KEY, base_addresses={"api": emu.base_url})
        _subscribe(client, emu)
        deliveries = emu.wait_for_webhooks(timeout=10)
        assert [d.status for d in deliveries] == [200] * len(emu.events)
        assert [e["type"] for e in receiver.received] == emu.event_types


def test_deliver_refuses_non_loopback(emulator: StripeEmulator) -> None:
    with pytest.raises(ValueError, match="loopback"):
        emulator.deliver("http://example.com/hook", WEBHOOK_SECRET, events=[])
    with pytest.raises(ValueError, match="loopback"):
        StripeEmulator(webhook_url="https://10.0.0.1/hook", webhook_secret="whsec_x")


# -- hosted pages, global configuration, standalone -------------------------------------------


def test_hosted_checkout_and_portal_pages(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    customer = client.v1.customers.create(params={"email": "h@example.com"})
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": "price_pro", "quantity": 1}],
            "success_url": "http://127.0.0.1:9/ok?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://127.0.0.1:9/cancel",
        }
    )
    assert session.url is not None
    with httpx.Client(trust_env=False) as http:
        page = http.get(session.url)
        assert page.status_code == 200
        assert 'id="pay"' in page.text
        paid = http.post(session.url)
        assert paid.status_code == 303
        assert paid.headers["Location"] == f"http://127.0.0.1:9/ok?session_id={session.id}"
        assert client.v1.checkout.sessions.retrieve(session.id).status == "complete"
        subscription_id = client.v1.checkout.sessions.retrieve(session.id).subscription
        assert isinstance(subscription_id, str)

        portal = client.v1.billing_portal.sessions.create(params={"customer": customer.id})
        assert subscription_id in http.get(portal.url).text
        http.post(f"{portal.url}/cancel", data={"subscription": subscription_id})
    assert client.v1.subscriptions.retrieve(subscription_id).cancel_at_period_end is True


def test_global_api_base_configuration(
    emulator: StripeEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stripe, "api_key", API_KEY)
    monkeypatch.setattr(stripe, "api_base", emulator.base_url)
    customer = stripe.Customer.create(email="g@example.com")
    assert stripe.Customer.retrieve(customer.id).email == "g@example.com"


def test_standalone_process_until_sigterm() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.emulators.stripe_api",
            "--port",
            "0",
            "--api-key",
            API_KEY,
            "--price",
            "price_pro=2900",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        base_url = line.strip().rsplit(" ", 1)[-1]
        assert base_url.startswith("http://127.0.0.1:")
        client = stripe.StripeClient(API_KEY, base_addresses={"api": base_url})
        customer = client.v1.customers.create(params={"email": "cli@example.com"})
        session = client.v1.checkout.sessions.create(
            params={
                "mode": "subscription",
                "customer": customer.id,
                "line_items": [{"price": "price_pro", "quantity": 1}],
            }
        )
        with httpx.Client(trust_env=False) as http:
            done = http.post(f"{base_url}/_emulator/checkout/{session.id}/complete").json()
            events = http.get(f"{base_url}/_emulator/events").json()
        assert client.v1.subscriptions.retrieve(done["subscription"]).status == "active"
        assert [e["type"] for e in events][-1] == "checkout.session.completed"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
