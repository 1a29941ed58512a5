"""A local emulator of the part of the Stripe API that RoboTrader's billing uses.

Point the real stripe-python client at it::

    with StripeEmulator(api_key="sk_test_123", prices={"price_pro": 2900}) as emu:
        client = stripe.StripeClient("sk_test_123", base_addresses={"api": emu.base_url})
        session = client.v1.checkout.sessions.create(params={...})
        sub_id = emu.complete_checkout(session.id)      # the user pays
        emu.deliver(webhook_url, "whsec_...")           # Stripe calls our webhook

The module is named ``stripe_api`` rather than ``stripe`` because a file named
``stripe.py`` shadows the real package whenever ``tests/emulators`` is the
first entry of ``sys.path`` (running the file directly, or pytest started from
that directory with ``--import-mode=importlib``).

What is emulated (API version ``2026-10-28.endive``, the one stripe-python
16.1 pins):

* Bearer (or Basic) authentication against one secret key, Stripe's error
  shapes (401, 404 ``resource_missing``, 400 ``parameter_missing`` and
  ``parameter_unknown``, ``idempotency_error``) and Stripe's form encoding
  with nested / indexed keys, ``expand[]`` included.
* Idempotency-Key replay (``Idempotent-Replayed: true``) for POSTs.
* Customers, Checkout Sessions, Billing Portal sessions, Subscriptions,
  Prices, Products, Invoices and Events, with snapshots shaped like the API
  reference (the period lives on ``items.data[].current_period_*``; an
  invoice's subscription is ``parent.subscription_details.subscription``).
* The paying user and Stripe's clock (`complete_checkout`, `renew`,
  `fail_payment`, `retry_payment`, `cancel`, `change_price`, `advance_clock`),
  each writing the events real Stripe sends, and signed webhook delivery
  (`sign`, `signed_requests`, `deliver`, `deliver_async`, or automatic
  delivery to ``webhook_url``).
* Hosted pages: ``GET {base}/c/pay/{session}`` shows a checkout page whose
  form (``POST`` same URL) completes the session and redirects to
  ``success_url``; ``GET {base}/p/session/{id}`` is a minimal portal.
* ``/_emulator/...`` control endpoints so a process other than the test
  (``python -m tests.emulators.stripe_api``) can be driven over HTTP.

Unknown top-level and nested parameters are rejected the way Stripe rejects
them; the allowed names come from stripe-python's own ``stripe.params``
TypedDicts, i.e. from the same OpenAPI spec as the client.

Only 127.0.0.0/8 (and ::1 / localhost) is ever contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import copy
import hashlib
import hmac
import html
import importlib
import ipaddress
import json
import random
import re
import secrets
import signal
import string
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from aiohttp import web

from tests.emulators.server import ThreadedServer

JSONDict = dict[str, Any]

API_VERSION = "2026-10-28.endive"
"""The API version stripe-python 16.1.0 pins; stamped on every event."""

WEBHOOK_USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
WEBHOOK_CONTENT_TYPE = "application/json; charset=utf-8"
SIGNATURE_TOLERANCE_SECONDS = 300
DEFAULT_PRICES: dict[str, int] = {"price_pro": 2900, "price_premium": 9900}
DEFAULT_API_KEY = "sk_test_emulator"

_ID_ALPHABET = string.ascii_letters + string.digits
_DAY = 86_400
_RETRY_DELAY_SECONDS = 3 * _DAY  # Smart Retries' first retry, roughly
_REQUEST_OPTION_KEYS = frozenset(
    {
        "api_key",
        "content_type",
        "headers",
        "idempotency_key",
        "max_network_retries",
        "stripe_account",
        "stripe_context",
        "stripe_version",
    }
)


# -- small helpers ----------------------------------------------------------------------------


def new_id(prefix: str, length: int = 24) -> str:
    """A random Stripe-looking id: ``prefix`` + ``length`` base62 characters."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def add_months(timestamp: int, months: int) -> int:
    """`timestamp` moved by whole calendar months, the day clamped to the month's end.

    Stripe anchors billing periods to ``billing_cycle_anchor``: Jan 31 + 1 month is
    Feb 28 (or 29) and Jan 31 + 2 months is Mar 31.
    """
    moment = datetime.fromtimestamp(timestamp, UTC)
    years, month_index = divmod(moment.month - 1 + months, 12)
    year = moment.year + years
    month = month_index + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def mask_api_key(key: str) -> str:
    """Mask a key the way Stripe's 401 message does: ``sk_test_****abcd``."""
    match = re.match(r"^([a-z]+_(?:test|live)_)(.*)$", key)
    prefix, secret = (match.group(1), match.group(2)) if match else ("", key)
    if len(secret) <= 4:
        return prefix + "*" * len(secret)
    return prefix + "*" * (len(secret) - 4) + secret[-4:]


def parse_stripe_form(pairs: Iterable[tuple[str, str]]) -> JSONDict:
    """Decode Stripe's form encoding into nested dicts and lists.

    ``line_items[0][price]=p`` becomes ``{"line_items": [{"price": "p"}]}``,
    ``expand[]=a&expand[]=b`` becomes ``{"expand": ["a", "b"]}`` and
    ``metadata[user_id]=7`` becomes ``{"metadata": {"user_id": "7"}}``. Values stay
    strings (Stripe coerces per parameter); children of ``metadata`` are never
    turned into lists even when their keys are digits.
    """
    root: JSONDict = {}
    for raw_key, value in pairs:
        parts = _split_form_key(raw_key)
        node = root
        for index, part in enumerate(parts):
            key = str(len(node)) if part == "" else part
            if index == len(parts) - 1:
                node[key] = value
                break
            child = node.get(key)
            if not isinstance(child, dict):
                child = {}
                node[key] = child
            node = child
    return {key: _listify(value, inside_metadata=key == "metadata") for key, value in root.items()}


def _split_form_key(key: str) -> list[str]:
    match = re.fullmatch(r"([^\[\]]+)((?:\[[^\[\]]*\])*)", key)
    if match is None:
        return [key]
    return [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]


def _listify(node: Any, *, inside_metadata: bool) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {
        key: _listify(value, inside_metadata=key == "metadata") for key, value in node.items()
    }
    if not inside_metadata and converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def encode_stripe_form(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The inverse of `parse_stripe_form`, as stripe-python encodes (indexed lists)."""
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(f"{prefix}[{key}]" if prefix else str(key), item)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(f"{prefix}[{index}]", item)
        elif isinstance(value, bool):
            pairs.append((prefix, "true" if value else "false"))
        else:
            pairs.append((prefix, str(value)))

    walk("", params)
    return pairs


def diff_previous_attributes(before: Any, after: Any) -> Any:
    """Stripe's ``previous_attributes``: changed keys with their old values.

    Nested hashes are diffed key by key; an array (or scalar) that changed is
    given whole, as the API reference describes. Returns ``{}`` when nothing changed.
    """
    if isinstance(before, dict) and isinstance(after, dict):
        changed: JSONDict = {}
        for key in list(before) + [k for k in after if k not in before]:
            old, new = before.get(key), after.get(key)
            if old == new:
                continue
            if isinstance(old, dict) and isinstance(new, dict):
                changed[key] = diff_previous_attributes(old, new)
            else:
                changed[key] = copy.deepcopy(old)
        return changed
    return copy.deepcopy(before)


def is_loopback_url(url: str) -> bool:
    """True when `url` is http(s) on localhost, 127.0.0.0/8 or ::1."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return False
    if parsed.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parsed.hostname).is_loopback
    except ValueError:
        return False


def _require_loopback(url: str) -> None:
    if not is_loopback_url(url):
        raise ValueError(f"refusing to contact {url!r}: only loopback addresses are allowed")


# -- public records -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One API request as the emulator saw it (see `StripeEmulator.requests`)."""

    method: str
    path: str
    params: JSONDict
    idempotency_key: str | None
    status: int
    request_id: str
    replayed: bool = False
    injected_failure: bool = False
    stripe_version: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class SignedWebhook:
    """A webhook request ready to send: exact body bytes plus Stripe's headers."""

    event_id: str
    event_type: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class WebhookDelivery:
    """The outcome of one automatic delivery to ``webhook_url``."""

    event_id: str
    event_type: str
    status: int | None
    error: str | None = None


@dataclass
class _Failure:
    status: int
    path_prefix: str | None


@dataclass
class _RequestContext:
    request_id: str
    idempotency_key: str | None


_AUTOMATIC = _RequestContext(request_id="", idempotency_key=None)


class StripeApiError(Exception):
    """An error answer in Stripe's ``{"error": {...}}`` shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        cache: bool = True,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.code = code
        self.param = param
        # Stripe saves no idempotent result for requests that failed validation.
        self.cache = cache

    def body(self) -> JSONDict:
        """The JSON body Stripe answers with."""
        error: JSONDict = {"message": self.message, "type": self.error_type}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


def _missing(param: str) -> StripeApiError:
    return StripeApiError(
        400, f"Missing required param: {param}.", code="parameter_missing", param=param, cache=False
    )


def _invalid(param: str, message: str) -> StripeApiError:
    return StripeApiError(400, message, code="parameter_invalid_string", param=param, cache=False)


# -- allowed parameters, taken from stripe-python's generated TypedDicts ----------------------


class _ParamSchema:
    """Allowed parameter names of one endpoint, nested TypedDicts included."""

    def __init__(self, module: str, class_name: str) -> None:
        self._module = module
        self._class_name = class_name
        self._resolved: type | None = None
        self._unavailable = False

    def unknown(self, params: JSONDict) -> str | None:
        """The first parameter (``a[b][0][c]`` style) the endpoint does not know, if any."""
        root = self._root()
        if root is None:
            return None
        return _first_unknown(root, params, "", top_level=True)

    def _root(self) -> type | None:
        if self._resolved is None and not self._unavailable:
            try:
                module = importlib.import_module(self._module)
                self._resolved = getattr(module, self._class_name)
            except (ImportError, AttributeError):
                self._unavailable = True
        return self._resolved


def _typed_dict_fields(cls: type) -> dict[str, Any]:
    return dict(getattr(cls, "__annotations__", {}))


def _nested_typed_dict(annotation: Any, owner: type) -> type | None:
    """The TypedDict an annotation refers to (``List[X]``, ``NotRequired["X"]``...)."""
    text = str(annotation)
    module = sys.modules.get(owner.__module__)
    if module is None:
        return None
    for name in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text):
        candidate = getattr(module, name, None)
        if (
            isinstance(candidate, type)
            and issubclass(candidate, dict)
            and hasattr(candidate, "__total__")
        ):
            return candidate
    return None


def _first_unknown(cls: type, value: Any, prefix: str, *, top_level: bool) -> str | None:
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _first_unknown(cls, item, f"{prefix}[{index}]", top_level=False)
            if found:
                return found
        return None
    if not isinstance(value, dict):
        return None
    fields = _typed_dict_fields(cls)
    for key, item in value.items():
        name = key if not prefix else f"{prefix}[{key}]"
        if key not in fields or (top_level and key in _REQUEST_OPTION_KEYS):
            return name
        nested = _nested_typed_dict(fields[key], cls)
        if nested is not None:
            found = _first_unknown(nested, item, name, top_level=False)
            if found:
                return found
    return None


def _schema(module: str, class_name: str) -> _ParamSchema:
    return _ParamSchema(module, class_name)


_P = "stripe.params"
_SCHEMAS: dict[str, _ParamSchema] = {
    "customer.create": _schema(_P, "CustomerCreateParams"),
    "customer.update": _schema(_P, "CustomerUpdateParams"),
    "customer.retrieve": _schema(_P, "CustomerRetrieveParams"),
    "customer.list": _schema(_P, "CustomerListParams"),
    "customer.delete": _schema(_P, "CustomerDeleteParams"),
    "checkout.create": _schema(f"{_P}.checkout", "SessionCreateParams"),
    "checkout.retrieve": _schema(f"{_P}.checkout", "SessionRetrieveParams"),
    "checkout.list": _schema(f"{_P}.checkout", "SessionListParams"),
    "checkout.expire": _schema(f"{_P}.checkout", "SessionExpireParams"),
    "checkout.line_items": _schema(f"{_P}.checkout", "SessionListLineItemsParams"),
    "portal.create": _schema(f"{_P}.billing_portal", "SessionCreateParams"),
    "subscription.retrieve": _schema(_P, "SubscriptionRetrieveParams"),
    "subscription.update": _schema(_P, "SubscriptionUpdateParams"),
    "subscription.cancel": _schema(_P, "SubscriptionCancelParams"),
    "subscription.list": _schema(_P, "SubscriptionListParams"),
    "price.retrieve": _schema(_P, "PriceRetrieveParams"),
    "price.list": _schema(_P, "PriceListParams"),
    "product.retrieve": _schema(_P, "ProductRetrieveParams"),
    "invoice.retrieve": _schema(_P, "InvoiceRetrieveParams"),
    "invoice.list": _schema(_P, "InvoiceListParams"),
    "event.retrieve": _schema(_P, "EventRetrieveParams"),
    "event.list": _schema(_P, "EventListParams"),
}


# -- parameter coercion -------------------------------------------------------------------------


def _as_str(params: JSONDict, name: str, *, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise _missing(name)
        return None
    if not isinstance(value, str):
        raise _invalid(name, f"Invalid string: {value!r}")
    return value


def _as_bool(value: Any, param: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise StripeApiError(400, f"Invalid boolean: {value}", param=param, cache=False)


def _as_int(value: Any, param: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    raise StripeApiError(400, f"Invalid integer: {value}", param=param, cache=False)


def _as_url(params: JSONDict, name: str) -> str | None:
    value = _as_str(params, name)
    if value is not None and not re.match(r"^https?://[^\s/]+", value):
        raise StripeApiError(400, "Not a valid URL", param=name, cache=False)
    return value


def _apply_metadata(current: JSONDict, update: Any, param: str = "metadata") -> JSONDict:
    """Stripe's metadata merge: ``""`` clears all, a key set to ``""`` is removed."""
    if update is None:
        return current
    if update == "":
        return {}
    if not isinstance(update, dict):
        raise StripeApiError(400, "Invalid hash", param=param, cache=False)
    merged = dict(current)
    for key, value in update.items():
        if len(key) > 40:
            raise StripeApiError(
                400,
                "Metadata keys can have at most 40 characters.",
                param=f"{param}[{key}]",
                cache=False,
            )
        if value == "" or value is None:
            merged.pop(key, None)
            continue
        if not isinstance(value, str):
            raise StripeApiError(400, "Invalid string", param=f"{param}[{key}]", cache=False)
        if len(value) > 500:
            raise StripeApiError(
                400,
                "Metadata values can have at most 500 characters.",
                param=f"{param}[{key}]",
                cache=False,
            )
        merged[key] = value
    if len(merged) > 50:
        raise StripeApiError(400, "Metadata can have at most 50 keys.", param=param, cache=False)
    return merged


def _expand_paths(params: JSONDict) -> list[str]:
    expand = params.get("expand")
    if expand is None:
        return []
    if isinstance(expand, str):
        return [expand]
    if isinstance(expand, list) and all(isinstance(item, str) for item in expand):
        return list(expand)
    raise StripeApiError(400, "Invalid array", param="expand", cache=False)


Handler = Callable[[_RequestContext, JSONDict, str], JSONDict]


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    schema: str
    handler: Handler


# -- the emulator -------------------------------------------------------------------------------


class StripeEmulator(ThreadedServer):
    """Stripe's API, hosted pages and webhooks, on 127.0.0.1 in a background thread.

    Every public method is safe to call from the test thread while the server
    answers the client from its own thread; one re-entrant lock guards all state.
    """

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        prices: Mapping[str, int] | None = None,
        *,
        port: int = 0,
        currency: str = "usd",
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        account_name: str = "RoboTrader (emulated)",
    ) -> None:
        """Configure the emulator; call `start()` (or use ``with``) to serve.

        `prices` maps a price id to its monthly amount in cents; each price gets a
        product of its own, named from the id (``price_pro`` -> ``Pro``).
        With `webhook_url` and `webhook_secret` every event is also POSTed there,
        in order, as soon as it is emitted (see `wait_for_webhooks`).
        """
        super().__init__(port=port)
        if webhook_url is not None:
            _require_loopback(webhook_url)
            if not webhook_secret:
                raise ValueError("webhook_url needs webhook_secret")
        self.api_key = api_key
        self.currency = currency
        self.account_name = account_name
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self._lock = threading.RLock()
        self._clock_offset = 0
        self._store: dict[str, dict[str, JSONDict]] = {}
        self._type_of: dict[str, str] = {}
        self._events: list[JSONDict] = []
        self._requests: list[RecordedRequest] = []
        self._idempotency: dict[str, tuple[str, str, str, int, JSONDict, str]] = {}
        self._failures: list[_Failure] = []
        self._delivered_cursor = 0
        self._session_lines: dict[str, list[JSONDict]] = {}
        self._session_subscription_data: dict[str, JSONDict] = {}
        self._period_index: dict[str, int] = {}
        self._invoice_sequence = 0
        self._deliveries: list[WebhookDelivery] = []
        self._webhook_queue: asyncio.Queue[JSONDict | None] | None = None
        self._pending_deliveries = 0
        self._deliveries_done = threading.Condition(self._lock)
        self._routes = self._build_routes()
        for price_id, amount in (DEFAULT_PRICES if prices is None else prices).items():
            self.add_price(price_id, amount)

    # -- configuration & inspection -------------------------------------------------------------

    def add_price(
        self,
        price_id: str,
        unit_amount: int,
        *,
        product_name: str | None = None,
        interval: str = "month",
    ) -> JSONDict:
        """Create a recurring price (and its product) and return the price snapshot."""
        with self._lock:
            now = self.now()
            name = product_name or price_id.removeprefix("price_").replace("_", " ").title()
            product_id = new_id("prod_", 14)
            self._put(
                {
                    "id": product_id,
                    "object": "product",
                    "active": True,
                    "created": now,
                    "default_price": price_id,
                    "description": None,
                    "images": [],
                    "livemode": False,
                    "marketing_features": [],
                    "metadata": {},
                    "name": name,
                    "package_dimensions": None,
                    "shippable": None,
                    "statement_descriptor": None,
                    "tax_code": None,
                    "type": "service",
                    "unit_label": None,
                    "updated": now,
                    "url": None,
                }
            )
            price = {
                "id": price_id,
                "object": "price",
                "active": True,
                "billing_scheme": "per_unit",
                "created": now,
                "currency": self.currency,
                "custom_unit_amount": None,
                "livemode": False,
                "lookup_key": None,
                "metadata": {},
                "nickname": None,
                "product": product_id,
                "recurring": {
                    "interval": interval,
                    "interval_count": 1,
                    "meter": None,
                    "trial_period_days": None,
                    "usage_type": "licensed",
                },
                "tax_behavior": "unspecified",
                "tiers_mode": None,
                "transform_quantity": None,
                "type": "recurring",
                "unit_amount": unit_amount,
                "unit_amount_decimal": str(unit_amount),
            }
            self._put(price)
            return copy.deepcopy(price)

    def now(self) -> int:
        """Stripe's clock: wall-clock seconds plus everything `advance_clock` added."""
        with self._lock:
            return int(time.time()) + self._clock_offset

    @property
    def events(self) -> list[JSONDict]:
        """Every event emitted so far, oldest first (deep copies)."""
        with self._lock:
            return copy.deepcopy(self._events)

    def events_of_type(self, *types: str) -> list[JSONDict]:
        """Emitted events whose type is one of `types` (``prefix.*`` wildcards allowed)."""
        return [event for event in self.events if _type_matches(event["type"], types)]

    @property
    def event_types(self) -> list[str]:
        """The types of every emitted event, in order."""
        with self._lock:
            return [event["type"] for event in self._events]

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every API request received (``/v1/...``), in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def deliveries(self) -> list[WebhookDelivery]:
        """Outcomes of automatic deliveries to ``webhook_url``."""
        with self._lock:
            return list(self._deliveries)

    def get(self, object_id: str) -> JSONDict:
        """A snapshot of any stored object (customer, subscription, invoice...) by id."""
        with self._lock:
            return self._snapshot(object_id)

    def objects(self, object_type: str) -> list[JSONDict]:
        """Snapshots of every stored object of a type (``"subscription"``...), oldest first."""
        with self._lock:
            return [copy.deepcopy(obj) for obj in self._store.get(object_type, {}).values()]

    def fail_next(
        self, count: int = 1, status: int = 500, *, path_prefix: str | None = None
    ) -> None:
        """Answer the next `count` API requests (optionally only under `path_prefix`) with
        `status` (500, 503, 409, 429...) before doing anything, as a flaky Stripe would.

        Nothing is saved under the request's Idempotency-Key, so the client's retry
        with the same key is executed normally.
        """
        with self._lock:
            self._failures.extend(_Failure(status, path_prefix) for _ in range(count))

    # -- the paying user & Stripe's clock ------------------------------------------------------

    def complete_checkout(self, session_id: str) -> str | None:
        """The user pays on the hosted page: returns the new subscription id.

        Subscription mode emits ``customer.created`` (only when the session had no
        customer), ``customer.subscription.created``, ``invoice.created``,
        ``invoice.finalized``, ``invoice.paid``, ``invoice.payment_succeeded``,
        ``checkout.session.completed``. Payment / setup modes emit only the last
        and return None.
        """
        with self._lock:
            session = self._require("checkout.session", session_id)
            if session["status"] != "open":
                raise ValueError(f"checkout session {session_id} is {session['status']}")
            if session["expires_at"] <= self.now():
                raise ValueError(f"checkout session {session_id} has expired")
            customer_id = session["customer"] or self._create_customer_for(session)
            customer = self._require("customer", customer_id)
            subscription_id: str | None = None
            invoice_id: str | None = None
            if session["mode"] == "subscription":
                subscription_id, invoice_id = self._start_subscription(session, customer_id)
            session.update(
                {
                    "status": "complete",
                    "payment_status": "no_payment_required"
                    if session["mode"] == "setup"
                    else "paid",
                    "customer": customer_id,
                    "subscription": subscription_id,
                    "invoice": invoice_id,
                    "customer_details": {
                        "address": None,
                        "business_name": None,
                        "email": customer["email"] or session["customer_email"],
                        "individual_name": None,
                        "name": customer["name"],
                        "phone": None,
                        "tax_exempt": "none",
                        "tax_ids": [],
                    },
                }
            )
            self._emit("checkout.session.completed", session)
            return subscription_id

    def expire_checkout(self, session_id: str) -> None:
        """The session times out unpaid: ``checkout.session.expired``."""
        with self._lock:
            session = self._require("checkout.session", session_id)
            if session["status"] != "open":
                raise ValueError(f"checkout session {session_id} is {session['status']}")
            session["status"] = "expired"
            session["url"] = None
            self._emit("checkout.session.expired", session)

    def renew(self, subscription_id: str) -> str:
        """The period ends and the renewal is paid; returns the new invoice id.

        The clock moves to the old period end if it is not there yet. Emits
        ``customer.subscription.updated`` (new period, ``latest_invoice``, and
        ``status`` when it was ``past_due``), ``invoice.created``,
        ``invoice.finalized``, ``invoice.paid``, ``invoice.payment_succeeded``.
        """
        with self._lock:
            subscription = self._live_subscription(subscription_id)
            if subscription["cancel_at_period_end"]:
                raise ValueError(
                    f"{subscription_id} cancels at period end; use advance_clock() to end it"
                )
            invoice = self._next_period(subscription, status="active")
            self._finalize_invoice(invoice)
            self._pay_invoice(invoice)
            return str(invoice["id"])

    def fail_payment(self, subscription_id: str) -> str:
        """A payment attempt fails; returns the open invoice's id.

        If the latest invoice is already open, that invoice's next attempt fails
        (``attempt_count`` + 1). Otherwise the period renews and its first attempt
        fails: ``customer.subscription.updated`` (new period), ``invoice.created``,
        ``invoice.finalized``. Then ``invoice.payment_failed`` and, when the
        subscription was active, ``customer.subscription.updated`` (status
        ``past_due``).
        """
        with self._lock:
            subscription = self._live_subscription(subscription_id)
            latest = self._store.get("invoice", {}).get(subscription["latest_invoice"] or "")
            if latest is not None and latest["status"] == "open":
                invoice = latest
            else:
                invoice = self._next_period(subscription, status=subscription["status"])
                self._finalize_invoice(invoice)
            now = self.now()
            invoice["attempted"] = True
            invoice["attempt_count"] += 1
            invoice["next_payment_attempt"] = now + _RETRY_DELAY_SECONDS
            invoice["webhooks_delivered_at"] = invoice["webhooks_delivered_at"] or now
            self._emit("invoice.payment_failed", invoice)
            if subscription["status"] != "past_due":
                before = copy.deepcopy(subscription)
                subscription["status"] = "past_due"
                self._emit_update(subscription, before)
            return str(invoice["id"])

    def retry_payment(self, subscription_id: str) -> str:
        """The open latest invoice is paid after all; returns its id.

        Emits ``invoice.paid``, ``invoice.payment_succeeded`` and, when the
        subscription was ``past_due``, ``customer.subscription.updated`` (status
        ``active``).
        """
        with self._lock:
            subscription = self._live_subscription(subscription_id)
            invoice = self._store.get("invoice", {}).get(subscription["latest_invoice"] or "")
            if invoice is None or invoice["status"] != "open":
                raise ValueError(f"{subscription_id} has no open invoice")
            self._pay_invoice(invoice)
            if subscription["status"] != "active":
                before = copy.deepcopy(subscription)
                subscription["status"] = "active"
                self._emit_update(subscription, before)
            return str(invoice["id"])

    def cancel(
        self,
        subscription_id: str,
        at_period_end: bool = False,
        *,
        feedback: str | None = None,
        comment: str | None = None,
    ) -> None:
        """The user cancels in the portal.

        ``at_period_end=True`` emits ``customer.subscription.updated`` with
        ``cancel_at_period_end``, ``cancel_at`` and ``canceled_at`` set; otherwise the
        subscription ends now: ``customer.subscription.deleted`` (status
        ``canceled``, ``ended_at`` set).
        """
        with self._lock:
            subscription = self._live_subscription(subscription_id)
            details = {"comment": comment, "feedback": feedback, "reason": "cancellation_requested"}
            if at_period_end:
                self._set_cancel_at_period_end(subscription, True, details, _AUTOMATIC)
            else:
                self._end_subscription(subscription, details, _AUTOMATIC)

    def change_price(self, subscription_id: str, price_id: str) -> None:
        """The user switches plan in the portal (proration ignored).

        Emits ``customer.subscription.updated`` whose ``previous_attributes``
        holds the old ``items``.
        """
        with self._lock:
            subscription = self._live_subscription(subscription_id)
            price = self._require("price", price_id)
            before = copy.deepcopy(subscription)
            item = subscription["items"]["data"][0]
            item["price"] = copy.deepcopy(price)
            item["plan"] = self._plan_of(price)
            self._emit_update(subscription, before)

    def advance_clock(self, seconds: int) -> list[str]:
        """Move Stripe's clock forward and let period ends happen; returns new event ids.

        Every active subscription whose period has ended is renewed (paid), one
        period at a time; one set to cancel at period end is deleted instead.
        ``past_due`` subscriptions are left for the test to drive.
        """
        with self._lock:
            first_new = len(self._events)
            self._clock_offset += seconds
            now = self.now()
            for subscription in list(self._store.get("subscription", {}).values()):
                while subscription["status"] in ("active", "trialing"):
                    period_end = subscription["items"]["data"][0]["current_period_end"]
                    if period_end > now:
                        break
                    if subscription["cancel_at_period_end"]:
                        self._end_subscription(
                            subscription,
                            subscription["cancellation_details"],
                            _AUTOMATIC,
                            ended_at=period_end,
                        )
                    else:
                        invoice = self._next_period(subscription, status="active", move_clock=False)
                        self._finalize_invoice(invoice)
                        self._pay_invoice(invoice)
            return [event["id"] for event in self._events[first_new:]]

    # -- webhooks -----------------------------------------------------------------------------

    @staticmethod
    def sign(payload: bytes | str, secret: str, timestamp: int | None = None) -> str:
        """The ``Stripe-Signature`` header value for `payload`: ``t=<unix>,v1=<hex>``.

        The timestamp defaults to the real wall clock (not the emulated one),
        since receivers check it against their own clock (300 s tolerance).
        """
        body = payload.decode("utf-8") if isinstance(payload, bytes) else payload
        stamp = int(time.time()) if timestamp is None else timestamp
        digest = hmac.new(
            secret.encode("utf-8"), f"{stamp}.{body}".encode(), hashlib.sha256
        ).hexdigest()
        return f"t={stamp},v1={digest}"

    def signed_requests(
        self,
        secret: str,
        events: Sequence[JSONDict] | None = None,
        *,
        shuffle: bool = False,
        duplicates: int = 1,
        timestamp: int | None = None,
        seed: int | None = None,
    ) -> list[SignedWebhook]:
        """Build the webhook requests Stripe would send, without sending them.

        `events` defaults to every event not yet taken by an earlier
        `signed_requests` / `deliver` call without explicit events. Each event is
        repeated `duplicates` times; `shuffle` (with optional `seed`) scrambles the
        order, as Stripe guarantees neither order nor exactly-once delivery.
        """
        if duplicates < 1:
            raise ValueError("duplicates must be >= 1")
        with self._lock:
            if events is None:
                chosen = copy.deepcopy(self._events[self._delivered_cursor :])
                self._delivered_cursor = len(self._events)
            else:
                chosen = copy.deepcopy(list(events))
        batch = [event for event in chosen for _ in range(duplicates)]
        if shuffle:
            random.Random(seed).shuffle(batch)
        return [self._signed(event, secret, timestamp) for event in batch]

    def _signed(self, event: JSONDict, secret: str, timestamp: int | None) -> SignedWebhook:
        body = json.dumps(event, indent=2).encode("utf-8")
        headers = {
            "Content-Type": WEBHOOK_CONTENT_TYPE,
            "Stripe-Signature": self.sign(body, secret, timestamp),
            "User-Agent": WEBHOOK_USER_AGENT,
            "Accept": "*/*; q=0.5, application/xml",
            "Cache-Control": "no-cache",
        }
        return SignedWebhook(event["id"], event["type"], body, headers)

    def deliver(
        self,
        url: str,
        secret: str,
        events: Sequence[JSONDict] | None = None,
        *,
        shuffle: bool = False,
        duplicates: int = 1,
        seed: int | None = None,
        request_timeout: float = 10.0,
    ) -> list[int]:
        """POST events to a loopback `url` one after another; returns the HTTP statuses.

        Same selection rules as `signed_requests`. Blocking: from async tests whose
        receiver runs on the test's own loop, use `deliver_async`.
        """
        _require_loopback(url)
        batch = self.signed_requests(
            secret, events, shuffle=shuffle, duplicates=duplicates, seed=seed
        )
        statuses: list[int] = []
        with httpx.Client(timeout=request_timeout, trust_env=False) as client:
            for request in batch:
                response = client.post(url, content=request.body, headers=request.headers)
                statuses.append(response.status_code)
                self._mark_delivered(request.event_id, response.status_code)
        return statuses

    async def deliver_async(
        self,
        url: str,
        secret: str,
        events: Sequence[JSONDict] | None = None,
        *,
        shuffle: bool = False,
        duplicates: int = 1,
        seed: int | None = None,
        request_timeout: float = 10.0,
    ) -> list[int]:
        """`deliver` for async tests (does not block the running loop)."""
        _require_loopback(url)
        batch = self.signed_requests(
            secret, events, shuffle=shuffle, duplicates=duplicates, seed=seed
        )
        statuses: list[int] = []
        async with httpx.AsyncClient(timeout=request_timeout, trust_env=False) as client:
            for request in batch:
                response = await client.post(url, content=request.body, headers=request.headers)
                statuses.append(response.status_code)
                self._mark_delivered(request.event_id, response.status_code)
        return statuses

    def wait_for_webhooks(self, timeout: float = 10.0) -> list[WebhookDelivery]:
        """Block until every automatic delivery to ``webhook_url`` has been attempted."""
        deadline = time.monotonic() + timeout
        with self._deliveries_done:
            while self._pending_deliveries:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self._pending_deliveries} webhook(s) still pending")
                self._deliveries_done.wait(remaining)
            return list(self._deliveries)

    def _mark_delivered(self, event_id: str, status: int) -> None:
        if 200 <= status < 300:
            with self._lock:
                stored = self._store.get("event", {}).get(event_id)
                if stored is not None:
                    stored["pending_webhooks"] = max(0, stored["pending_webhooks"] - 1)

    async def _webhook_worker(self, queue: asyncio.Queue[JSONDict | None]) -> None:
        assert self.webhook_url is not None and self.webhook_secret is not None
        async with httpx.AsyncClient(timeout=10.0, trust_env=False) as client:
            while True:
                event = await queue.get()
                if event is None:
                    return
                request = self._signed(event, self.webhook_secret, None)
                status: int | None = None
                error: str | None = None
                try:
                    response = await client.post(
                        self.webhook_url, content=request.body, headers=request.headers
                    )
                    status = response.status_code
                    self._mark_delivered(request.event_id, status)
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                with self._deliveries_done:
                    self._deliveries.append(
                        WebhookDelivery(request.event_id, request.event_type, status, error)
                    )
                    self._pending_deliveries -= 1
                    self._deliveries_done.notify_all()

    # -- aiohttp app ---------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        """Routes: ``/v1/...`` API, hosted pages, ``/_emulator/...`` controls."""
        app = web.Application()
        app.router.add_route("*", "/v1/{tail:.*}", self._handle_api)
        app.router.add_get("/c/pay/{session_id}", self._checkout_page)
        app.router.add_post("/c/pay/{session_id}", self._checkout_pay)
        app.router.add_get("/p/session/{portal_id}", self._portal_page)
        app.router.add_post("/p/session/{portal_id}/cancel", self._portal_cancel)
        app.router.add_get("/i/{invoice_id}", self._invoice_page)
        app.router.add_route("*", "/_emulator/{tail:.*}", self._handle_control)
        if self.webhook_url is not None:
            app.cleanup_ctx.append(self._webhook_context)
        return app

    async def _webhook_context(self, app: web.Application) -> Any:
        queue: asyncio.Queue[JSONDict | None] = asyncio.Queue()
        with self._lock:
            self._webhook_queue = queue
        task = asyncio.get_running_loop().create_task(self._webhook_worker(queue))
        yield
        with self._lock:
            self._webhook_queue = None
        queue.put_nowait(None)
        await task

    async def _handle_api(self, request: web.Request) -> web.Response:
        pairs: list[tuple[str, str]] = list(request.query.items())
        if request.method in ("POST", "PUT", "PATCH"):
            form = await request.post()
            pairs.extend((key, value) for key, value in form.items() if isinstance(value, str))
        try:
            params = parse_stripe_form(pairs)
        except (TypeError, ValueError):
            params = {}
        idempotency_key = request.headers.get("Idempotency-Key") or None
        status, body, headers = self._serve_api(
            request.method,
            request.path,
            params,
            idempotency_key,
            request.headers.get("Authorization", ""),
            request.headers.get("Stripe-Version"),
            request.headers.get("User-Agent"),
        )
        return web.Response(
            text=json.dumps(body, indent=2),
            status=status,
            content_type="application/json",
            headers=headers,
        )

    def _serve_api(
        self,
        method: str,
        path: str,
        params: JSONDict,
        idempotency_key: str | None,
        authorization: str,
        stripe_version: str | None,
        user_agent: str | None,
    ) -> tuple[int, JSONDict, dict[str, str]]:
        request_id = new_id("req_", 14)
        headers = {"Request-Id": request_id, "Stripe-Version": stripe_version or API_VERSION}
        if idempotency_key and method == "POST":
            headers["Idempotency-Key"] = idempotency_key
        replayed = False
        injected = False
        with self._lock:
            try:
                self._authenticate(authorization)
                failure = self._take_failure(path)
                if failure is not None:
                    injected = True
                    raise _injected_error(failure.status, idempotency_key)
                route, object_id = self._match(method, path)
                unknown = _SCHEMAS[route.schema].unknown(params)
                if unknown is not None:
                    raise StripeApiError(
                        400,
                        f"Received unknown parameter: {unknown}",
                        code="parameter_unknown",
                        param=unknown,
                        cache=False,
                    )
                fingerprint = json.dumps(params, sort_keys=True)
                saved = (
                    self._idempotency.get(idempotency_key)
                    if method == "POST" and idempotency_key
                    else None
                )
                if saved is not None and idempotency_key is not None:
                    status, body = self._replay(saved, method, path, fingerprint, idempotency_key)
                    replayed = True
                    headers["Idempotent-Replayed"] = "true"
                    headers["Original-Request"] = saved[5]
                else:
                    ctx = _RequestContext(request_id, idempotency_key)
                    try:
                        status, body = 200, route.handler(ctx, params, object_id)
                        cache = True
                    except StripeApiError as exc:
                        status, body, cache = exc.status, exc.body(), exc.cache
                    if method == "POST" and idempotency_key and cache:
                        self._idempotency[idempotency_key] = (
                            method,
                            path,
                            fingerprint,
                            status,
                            copy.deepcopy(body),
                            request_id,
                        )
            except StripeApiError as exc:
                status, body = exc.status, exc.body()
            self._requests.append(
                RecordedRequest(
                    method=method,
                    path=path,
                    params=copy.deepcopy(params),
                    idempotency_key=idempotency_key,
                    status=status,
                    request_id=request_id,
                    replayed=replayed,
                    injected_failure=injected,
                    stripe_version=stripe_version,
                    user_agent=user_agent,
                )
            )
        return status, body, headers

    def _replay(
        self,
        saved: tuple[str, str, str, int, JSONDict, str],
        method: str,
        path: str,
        fingerprint: str,
        key: str,
    ) -> tuple[int, JSONDict]:
        saved_method, saved_path, saved_fingerprint, status, body, _ = saved
        if (saved_method, saved_path) != (method, path):
            raise StripeApiError(
                400,
                "Keys for idempotent requests can only be used for the same endpoint they "
                f"were first used for ('{saved_path}' vs '{path}'). Try using a key other "
                f"than '{key}' if you meant to execute a different request.",
                error_type="idempotency_error",
            )
        if saved_fingerprint != fingerprint:
            raise StripeApiError(
                400,
                "Keys for idempotent requests can only be used with the same parameters "
                f"they were first used with. Try using a key other than '{key}' if you "
                "meant to execute a different request.",
                error_type="idempotency_error",
            )
        return status, copy.deepcopy(body)

    def _authenticate(self, authorization: str) -> None:
        key: str | None = None
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer":
            key = credentials.strip()
        elif scheme.lower() == "basic":
            import base64
            import binascii

            try:
                key = base64.b64decode(credentials).decode("utf-8").partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                key = credentials
        if not key:
            raise StripeApiError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for "
                "details, or we can help at https://support.stripe.com/.",
            )
        if not hmac.compare_digest(key, self.api_key):
            raise StripeApiError(401, f"Invalid API Key provided: {mask_api_key(key)}")

    def _take_failure(self, path: str) -> _Failure | None:
        for index, failure in enumerate(self._failures):
            if failure.path_prefix is None or path.startswith(failure.path_prefix):
                return self._failures.pop(index)
        return None

    def _match(self, method: str, path: str) -> tuple[_Route, str]:
        for route in self._routes:
            if route.method != method:
                continue
            match = route.pattern.fullmatch(path)
            if match is not None:
                return route, match.groupdict().get("id") or ""
        raise StripeApiError(
            404,
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
            "or we can help at https://support.stripe.com/.",
        )

    def _build_routes(self) -> list[_Route]:
        one = r"/(?P<id>[^/]+)"
        table: list[tuple[str, str, str, Handler]] = [
            ("POST", "/v1/customers", "customer.create", self._api_create_customer),
            ("GET", "/v1/customers", "customer.list", self._api_list_customers),
            ("GET", "/v1/customers" + one, "customer.retrieve", self._api_retrieve("customer")),
            ("POST", "/v1/customers" + one, "customer.update", self._api_update_customer),
            ("DELETE", "/v1/customers" + one, "customer.delete", self._api_delete_customer),
            ("POST", "/v1/checkout/sessions", "checkout.create", self._api_create_session),
            ("GET", "/v1/checkout/sessions", "checkout.list", self._api_list_sessions),
            (
                "GET",
                "/v1/checkout/sessions" + one,
                "checkout.retrieve",
                self._api_retrieve("checkout.session"),
            ),
            (
                "GET",
                "/v1/checkout/sessions" + one + "/line_items",
                "checkout.line_items",
                self._api_session_line_items,
            ),
            (
                "POST",
                "/v1/checkout/sessions" + one + "/expire",
                "checkout.expire",
                self._api_expire_session,
            ),
            ("POST", "/v1/billing_portal/sessions", "portal.create", self._api_create_portal),
            ("GET", "/v1/subscriptions", "subscription.list", self._api_list_subscriptions),
            (
                "GET",
                "/v1/subscriptions" + one,
                "subscription.retrieve",
                self._api_retrieve("subscription"),
            ),
            (
                "POST",
                "/v1/subscriptions" + one,
                "subscription.update",
                self._api_update_subscription,
            ),
            (
                "DELETE",
                "/v1/subscriptions" + one,
                "subscription.cancel",
                self._api_cancel_subscription,
            ),
            ("GET", "/v1/prices", "price.list", self._api_list_simple("price", "/v1/prices")),
            ("GET", "/v1/prices" + one, "price.retrieve", self._api_retrieve("price")),
            ("GET", "/v1/products" + one, "product.retrieve", self._api_retrieve("product")),
            ("GET", "/v1/invoices", "invoice.list", self._api_list_invoices),
            ("GET", "/v1/invoices" + one, "invoice.retrieve", self._api_retrieve("invoice")),
            ("GET", "/v1/events", "event.list", self._api_list_events),
            ("GET", "/v1/events" + one, "event.retrieve", self._api_retrieve("event")),
        ]
        return [
            _Route(method, re.compile(pattern), schema, handler)
            for method, pattern, schema, handler in table
        ]

    # -- API handlers (called with the lock held) ----------------------------------------------

    def _api_retrieve(self, object_type: str) -> Handler:
        def handler(ctx: _RequestContext, params: JSONDict, object_id: str) -> JSONDict:
            self._require_api(object_type, object_id)
            return self._render(object_id, params)

        return handler

    def _api_create_customer(self, ctx: _RequestContext, params: JSONDict, _: str) -> JSONDict:
        customer = self._new_customer(
            email=_as_str(params, "email"),
            name=_as_str(params, "name"),
            description=_as_str(params, "description"),
            phone=_as_str(params, "phone"),
            metadata=_apply_metadata({}, params.get("metadata")),
        )
        self._emit("customer.created", customer, request=ctx)
        return self._render(customer["id"], params)

    def _api_update_customer(
        self, ctx: _RequestContext, params: JSONDict, customer_id: str
    ) -> JSONDict:
        customer = self._require_api("customer", customer_id)
        if customer.get("deleted"):
            raise StripeApiError(404, f"No such customer: '{customer_id}'", code="resource_missing")
        before = copy.deepcopy(customer)
        for name in ("email", "name", "description", "phone"):
            if name in params:
                customer[name] = _as_str(params, name)
        customer["metadata"] = _apply_metadata(customer["metadata"], params.get("metadata"))
        settings = params.get("invoice_settings")
        if isinstance(settings, dict) and "default_payment_method" in settings:
            customer["invoice_settings"]["default_payment_method"] = (
                settings["default_payment_method"] or None
            )
        self._emit_update(customer, before, request=ctx)
        return self._render(customer_id, params)

    def _api_delete_customer(
        self, ctx: _RequestContext, params: JSONDict, customer_id: str
    ) -> JSONDict:
        customer = self._require_api("customer", customer_id)
        if customer.get("deleted"):
            raise StripeApiError(404, f"No such customer: '{customer_id}'", code="resource_missing")
        for subscription in self._store.get("subscription", {}).values():
            if subscription["customer"] == customer_id and subscription["status"] != "canceled":
                self._end_subscription(
                    subscription,
                    {"comment": None, "feedback": None, "reason": "cancellation_requested"},
                    ctx,
                )
        self._emit("customer.deleted", customer, request=ctx)
        stub = {"id": customer_id, "object": "customer", "deleted": True}
        self._store["customer"][customer_id] = stub
        return dict(stub)

    def _api_list_customers(self, ctx: _RequestContext, params: JSONDict, _: str) -> JSONDict:
        email = _as_str(params, "email")
        rows = [
            customer
            for customer in self._store.get("customer", {}).values()
            if not customer.get("deleted") and (email is None or customer["email"] == email)
        ]
        return self._list(rows, params, "/v1/customers")

    def _api_create_session(self, ctx: _RequestContext, params: JSONDict, _: str) -> JSONDict:
        mode = _as_str(params, "mode", required=True)
        if mode not in ("payment", "setup", "subscription"):
            raise StripeApiError(
                400,
                f"Invalid mode: must be one of payment, setup, or subscription (got {mode})",
                param="mode",
                cache=False,
            )
        customer_id = _as_str(params, "customer")
        customer_email = _as_str(params, "customer_email")
        if customer_id is not None and customer_email is not None:
            raise StripeApiError(
                400,
                "You may only specify one of these parameters: customer, customer_email.",
                param="customer_email",
                cache=False,
            )
        if customer_id is not None:
            customer = self._store.get("customer", {}).get(customer_id)
            if customer is None or customer.get("deleted"):
                raise StripeApiError(
                    400,
                    f"No such customer: '{customer_id}'",
                    code="resource_missing",
                    param="customer",
                    cache=False,
                )
        lines = self._session_line_items(mode, params.get("line_items"))
        client_reference_id = _as_str(params, "client_reference_id")
        if client_reference_id is not None and len(client_reference_id) > 200:
            raise _invalid("client_reference_id", "client_reference_id must be at most 200 chars")
        subscription_data = params.get("subscription_data") or {}
        if not isinstance(subscription_data, dict):
            raise StripeApiError(400, "Invalid hash", param="subscription_data", cache=False)
        if subscription_data and mode != "subscription":
            raise StripeApiError(
                400,
                "You can only specify `subscription_data` in `subscription` mode.",
                param="subscription_data",
                cache=False,
            )
        sub_metadata = _apply_metadata(
            {}, subscription_data.get("metadata"), "subscription_data[metadata]"
        )
        now = self.now()
        expires_at = (
            _as_int(params["expires_at"], "expires_at") if "expires_at" in params else now + _DAY
        )
        if not now + 30 * 60 <= expires_at <= now + _DAY:
            raise StripeApiError(
                400,
                "The `expires_at` timestamp must be between 30 minutes and 24 hours from "
                "Checkout Session creation.",
                param="expires_at",
                cache=False,
            )
        success_url = _as_url(params, "success_url")
        cancel_url = _as_url(params, "cancel_url")
        session_id = new_id("cs_test_", 58)
        amount = sum(line["amount_total"] for line in lines)
        session: JSONDict = {
            "id": session_id,
            "object": "checkout.session",
            "adaptive_pricing": {"enabled": False},
            "after_expiration": None,
            "allow_promotion_codes": None,
            "amount_subtotal": amount,
            "amount_total": amount,
            "automatic_tax": {
                "enabled": False,
                "liability": None,
                "provider": None,
                "status": None,
            },
            "billing_address_collection": None,
            "cancel_url": cancel_url,
            "client_reference_id": client_reference_id,
            "client_secret": None,
            "collected_information": None,
            "consent": None,
            "consent_collection": None,
            "created": now,
            "currency": lines[0]["currency"] if lines else None,
            "currency_conversion": None,
            "custom_fields": [],
            "custom_text": {
                "after_submit": None,
                "shipping_address": None,
                "submit": None,
                "terms_of_service_acceptance": None,
            },
            "customer": customer_id,
            "customer_account": None,
            "customer_creation": None if customer_id or mode == "subscription" else "if_required",
            "customer_details": None,
            "customer_email": customer_email,
            "discounts": [],
            "expires_at": expires_at,
            "invoice": None,
            "invoice_creation": None,
            "livemode": False,
            "locale": _as_str(params, "locale"),
            "metadata": _apply_metadata({}, params.get("metadata")),
            "mode": mode,
            "origin_context": None,
            "payment_intent": None,
            "payment_link": None,
            "payment_method_collection": "always",
            "payment_method_configuration_details": None,
            "payment_method_options": {},
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "permissions": None,
            "phone_number_collection": {"enabled": False},
            "recovered_from": None,
            "saved_payment_method_options": None,
            "setup_intent": None,
            "shipping_address_collection": None,
            "shipping_cost": None,
            "shipping_options": [],
            "status": "open",
            "submit_type": None,
            "subscription": None,
            "success_url": success_url,
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": _as_str(params, "ui_mode") or "hosted_page",
            "url": f"{self.base_url}/c/pay/{session_id}",
            "wallet_options": None,
        }
        self._put(session)
        self._session_lines[session_id] = lines
        self._session_subscription_data[session_id] = {
            "metadata": sub_metadata,
            "description": subscription_data.get("description"),
        }
        return self._render(session_id, params)

    def _session_line_items(self, mode: str, raw: Any) -> list[JSONDict]:
        if raw is None or raw == []:
            if mode == "setup":
                return []
            raise _missing("line_items")
        if not isinstance(raw, list):
            raise StripeApiError(400, "Invalid array", param="line_items", cache=False)
        lines: list[JSONDict] = []
        for index, item in enumerate(raw):
            prefix = f"line_items[{index}]"
            if not isinstance(item, dict):
                raise StripeApiError(400, "Invalid hash", param=prefix, cache=False)
            if "price_data" in item:
                raise StripeApiError(
                    400,
                    "price_data is not supported by the emulator; create prices up front",
                    param=f"{prefix}[price_data]",
                    cache=False,
                )
            price_id = item.get("price")
            if not price_id:
                raise _missing(f"{prefix}[price]")
            price = self._store.get("price", {}).get(price_id)
            if price is None:
                raise StripeApiError(
                    400,
                    f"No such price: '{price_id}'",
                    code="resource_missing",
                    param=f"{prefix}[price]",
                    cache=False,
                )
            if "quantity" not in item:
                raise StripeApiError(
                    400,
                    f"Quantity is required. Add `quantity` to `{prefix}`",
                    code="parameter_missing",
                    param=f"{prefix}[quantity]",
                    cache=False,
                )
            quantity = _as_int(item["quantity"], f"{prefix}[quantity]")
            if quantity < 1:
                raise StripeApiError(
                    400,
                    "This value must be greater than or equal to 1.",
                    param=f"{prefix}[quantity]",
                    cache=False,
                )
            if mode == "subscription" and price["type"] != "recurring":
                raise StripeApiError(
                    400,
                    "You must provide at least one recurring price in `subscription` mode "
                    "when using prices.",
                    param=f"{prefix}[price]",
                    cache=False,
                )
            product = self._store["product"][price["product"]]
            amount = price["unit_amount"] * quantity
            lines.append(
                {
                    "id": new_id("li_", 24),
                    "object": "item",
                    "amount_discount": 0,
                    "amount_subtotal": amount,
                    "amount_tax": 0,
                    "amount_total": amount,
                    "currency": price["currency"],
                    "description": product["name"],
                    "metadata": {},
                    "price": price["id"],
                    "quantity": quantity,
                }
            )
        return lines

    def _session_line_items_list(self, session_id: str) -> JSONDict:
        data = []
        for line in self._session_lines.get(session_id, []):
            item = copy.deepcopy(line)
            item["price"] = self._snapshot(line["price"])
            data.append(item)
        return {
            "object": "list",
            "data": data,
            "has_more": False,
            "url": f"/v1/checkout/sessions/{session_id}/line_items",
        }

    def _api_session_line_items(
        self, ctx: _RequestContext, params: JSONDict, session_id: str
    ) -> JSONDict:
        self._require_api("checkout.session", session_id)
        listing = self._session_line_items_list(session_id)
        self._expand(listing, _expand_paths(params))
        return listing

    def _api_expire_session(
        self, ctx: _RequestContext, params: JSONDict, session_id: str
    ) -> JSONDict:
        session = self._require_api("checkout.session", session_id)
        if session["status"] != "open":
            raise StripeApiError(
                400,
                f'Only Checkout Sessions with a status in ["open"] can be expired. This '
                f'Checkout Session has a status of "{session["status"]}".',
            )
        session["status"] = "expired"
        session["url"] = None
        self._emit("checkout.session.expired", session, request=ctx)
        return self._render(session_id, params)

    def _api_list_sessions(self, ctx: _RequestContext, params: JSONDict, _: str) -> JSONDict:
        filters = {name: _as_str(params, name) for name in ("customer", "subscription", "status")}
        rows = [
            session
            for session in self._store.get("checkout.session", {}).values()
            if all(value is None or session[name] == value for name, value in filters.items())
        ]
        return self._list(rows, params, "/v1/checkout/sessions")

    def _api_create_portal(self, ctx: _RequestContext, params: JSONDict, _: str) -> JSONDict:
        customer_id = _as_str(params, "customer", required=True)
        assert customer_id is not None
        customer = self._store.get("customer", {}).get(customer_id)
        if customer is None or customer.get("deleted"):
            raise StripeApiError(
                400,
                f"No such customer: '{customer_id}'",
                code="resource_missing",
                param="customer",
                cache=False,
            )
        portal_id = new_id("bps_", 24)
        portal = {
            "id": portal_id,
            "object": "billing_portal.session",
            "configuration": _as_str(params, "configuration") or "bpc_emulator_default",
            "created": self.now(),
            "customer": customer_id,
            "customer_account": None,
            "flow": None,
            "livemode": False,
            "locale": _as_str(params, "locale"),
            "on_behalf_of": None,
            "return_url": _as_url(params, "return_url"),
            "url": f"{self.base_url}/p/session/{portal_id}",
        }
        self._put(portal)
        self._emit("billing_portal.session.created", portal, request=ctx)
        return self._render(portal_id, params)

    def _api_list_subscriptions(self, ctx: _RequestContext, params: JSONDict, _: str) -> JSONDict:
        customer_id = _as_str(params, "customer")
        price_id = _as_str(params, "price")
        status = _as_str(params, "status")
        rows = []
        for subscription in self._store.get("subscription", {}).values():
            if customer_id is not None and subscription["customer"] != customer_id:
                continue
            if price_id is not None and not any(
                item["price"]["id"] == price_id for item in subscription["items"]["data"]
            ):
                continue
            if status is None and subscription["status"] == "canceled":
                continue  # Stripe lists canceled subscriptions only when asked to
            if status not in (None, "all") and subscription["status"] != status:
                continue
            rows.append(subscription)
        return self._list(rows, params, "/v1/subscriptions")

    def _api_update_subscription(
        self, ctx: _RequestContext, params: JSONDict, subscription_id: str
    ) -> JSONDict:
        subscription = self._require_api("subscription", subscription_id)
        if subscription["status"] == "canceled" and set(params) - {
            "metadata",
            "cancellation_details",
            "expand",
        }:
            raise StripeApiError(
                400,
                "A canceled subscription can only update its cancellation_details and metadata.",
                cache=False,
            )
        before = copy.deepcopy(subscription)
        details = params.get("cancellation_details")
        if isinstance(details, dict):
            for name in ("comment", "feedback"):
                if name in details:
                    subscription["cancellation_details"][name] = details[name] or None
        if "cancel_at_period_end" in params:
            wanted = _as_bool(params["cancel_at_period_end"], "cancel_at_period_end")
            if wanted != subscription["cancel_at_period_end"]:
                reason = "cancellation_requested" if wanted else None
                subscription["cancel_at_period_end"] = wanted
                period_end = subscription["items"]["data"][0]["current_period_end"]
                subscription["cancel_at"] = period_end if wanted else None
                subscription["canceled_at"] = self.now() if wanted else None
                subscription["cancellation_details"]["reason"] = reason
        if "cancel_at" in params:
            raw = params["cancel_at"]
            subscription["cancel_at"] = None if raw == "" else _as_int(raw, "cancel_at")
        if "description" in params:
            subscription["description"] = _as_str(params, "description")
        subscription["metadata"] = _apply_metadata(subscription["metadata"], params.get("metadata"))
        if "items" in params:
            self._update_items(subscription, params["items"])
        self._emit_update(subscription, before, request=ctx)
        return self._render(subscription_id, params)

    def _update_items(self, subscription: JSONDict, raw: Any) -> None:
        if not isinstance(raw, list):
            raise StripeApiError(400, "Invalid array", param="items", cache=False)
        items: list[JSONDict] = subscription["items"]["data"]
        for index, change in enumerate(raw):
            prefix = f"items[{index}]"
            if not isinstance(change, dict):
                raise StripeApiError(400, "Invalid hash", param=prefix, cache=False)
            item_id = change.get("id")
            price_id = change.get("price")
            price = None
            if price_id:
                price = self._store.get("price", {}).get(price_id)
                if price is None:
                    raise StripeApiError(
                        400,
                        f"No such price: '{price_id}'",
                        code="resource_missing",
                        param=f"{prefix}[price]",
                        cache=False,
                    )
            if item_id:
                item = next((it for it in items if it["id"] == item_id), None)
                if item is None:
                    raise StripeApiError(
                        400,
                        f"No such subscription item: '{item_id}'",
                        code="resource_missing",
                        param=f"{prefix}[id]",
                        cache=False,
                    )
                if "deleted" in change and _as_bool(change["deleted"], f"{prefix}[deleted]"):
                    items.remove(item)
                    continue
                if price is not None:
                    item["price"] = copy.deepcopy(price)
                    item["plan"] = self._plan_of(price)
                if "quantity" in change:
                    item["quantity"] = _as_int(change["quantity"], f"{prefix}[quantity]")
                item["metadata"] = _apply_metadata(item["metadata"], change.get("metadata"))
            else:
                # Like Stripe: an entry without `id` adds a second item, it does not replace.
                if price is None:
                    raise _missing(f"{prefix}[price]")
                if any(it["price"]["id"] == price["id"] for it in items):
                    raise StripeApiError(
                        400,
                        "Cannot add multiple subscription items with the same price.",
                        param=f"{prefix}[price]",
                        cache=False,
                    )
                first = items[0] if items else None
                quantity = _as_int(change.get("quantity", "1"), f"{prefix}[quantity]")
                items.append(
                    self._new_item(
                        subscription["id"],
                        price,
                        quantity,
                        first["current_period_start"] if first else self.now(),
                        first["current_period_end"] if first else add_months(self.now(), 1),
                    )
                )
        if not items:
            raise StripeApiError(
                400, "A subscription must have at least one active plan.", param="items"
            )
        subscription["items"]["total_count"] = len(items)

    def _api_cancel_subscription(
        self, ctx: _RequestContext, params: JSONDict, subscription_id: str
    ) -> JSONDict:
        subscription = self._require_api("subscription", subscription_id)
        if subscription["status"] == "canceled":
            raise StripeApiError(
                400,
                f"A canceled subscription can not be canceled again: '{subscription_id}'",
                cache=False,
            )
        details = {"comment": None, "feedback": None, "reason": "cancellation_requested"}
        given = params.get("cancellation_details")
        if isinstance(given, dict):
            details["comment"] = given.get("comment") or None
            details["feedback"] = given.get("feedback") or None
        self._end_subscription(subscription, details, ctx)
        return self._render(subscription_id, params)

    def _api_list_invoices(self, ctx: _RequestContext, params: JSONDict, _: str) -> JSONDict:
        customer_id = _as_str(params, "customer")
        subscription_id = _as_str(params, "subscription")
        status = _as_str(params, "status")
        rows = [
            invoice
            for invoice in self._store.get("invoice", {}).values()
            if (customer_id is None or invoice["customer"] == customer_id)
            and (status is None or invoice["status"] == status)
            and (
                subscription_id is None
                or (invoice["parent"]["subscription_details"] or {}).get("subscription")
                == subscription_id
            )
        ]
        return self._list(rows, params, "/v1/invoices")

    def _api_list_events(self, ctx: _RequestContext, params: JSONDict, _: str) -> JSONDict:
        wanted: list[str] = []
        if (single := _as_str(params, "type")) is not None:
            wanted.append(single)
        types = params.get("types")
        if isinstance(types, list):
            wanted.extend(str(t) for t in types)
        rows = [
            event
            for event in self._store.get("event", {}).values()
            if not wanted or _type_matches(event["type"], wanted)
        ]
        return self._list(rows, params, "/v1/events")

    def _api_list_simple(self, object_type: str, url: str) -> Handler:
        def handler(ctx: _RequestContext, params: JSONDict, _: str) -> JSONDict:
            return self._list(list(self._store.get(object_type, {}).values()), params, url)

        return handler

    # -- object life cycle (lock held) ---------------------------------------------------------

    def _put(self, obj: JSONDict) -> JSONDict:
        self._store.setdefault(obj["object"], {})[obj["id"]] = obj
        self._type_of[obj["id"]] = obj["object"]
        return obj

    def _require(self, object_type: str, object_id: str) -> JSONDict:
        obj = self._store.get(object_type, {}).get(object_id)
        if obj is None:
            raise KeyError(f"No such {object_type}: '{object_id}'")
        return obj

    def _require_api(self, object_type: str, object_id: str) -> JSONDict:
        obj = self._store.get(object_type, {}).get(object_id)
        if obj is None:
            raise StripeApiError(
                404,
                f"No such {object_type}: '{object_id}'",
                code="resource_missing",
                param="id",
            )
        return obj

    def _live_subscription(self, subscription_id: str) -> JSONDict:
        subscription = self._require("subscription", subscription_id)
        if subscription["status"] in ("canceled", "incomplete_expired"):
            raise ValueError(f"subscription {subscription_id} is {subscription['status']}")
        return subscription

    def _snapshot(self, object_id: str) -> JSONDict:
        object_type = self._type_of.get(object_id)
        if object_type is None:
            raise KeyError(object_id)
        return copy.deepcopy(self._store[object_type][object_id])

    def _render(self, object_id: str, params: JSONDict) -> JSONDict:
        snapshot = self._snapshot(object_id)
        self._expand(snapshot, _expand_paths(params))
        return snapshot

    def _list(self, rows: list[JSONDict], params: JSONDict, url: str) -> JSONDict:
        limit = _as_int(params.get("limit", "10"), "limit")
        if not 1 <= limit <= 100:
            raise StripeApiError(
                400, "Invalid integer: limit must be between 1 and 100", param="limit"
            )
        newest_first = list(reversed(rows))
        ids = [row["id"] for row in newest_first]
        start = 0
        if (after := _as_str(params, "starting_after")) is not None:
            if after not in ids:
                raise StripeApiError(
                    400,
                    f"No such object: '{after}'",
                    code="resource_missing",
                    param="starting_after",
                )
            start = ids.index(after) + 1
        end = start + limit
        if (before := _as_str(params, "ending_before")) is not None:
            if before not in ids:
                raise StripeApiError(
                    400,
                    f"No such object: '{before}'",
                    code="resource_missing",
                    param="ending_before",
                )
            end = ids.index(before)
            start = max(0, end - limit)
        page = newest_first[start:end]
        has_more = end < len(newest_first) if before is None else start > 0
        listing = {
            "object": "list",
            "data": copy.deepcopy(page),
            "has_more": has_more,
            "url": url,
        }
        self._expand(listing, _expand_paths(params))
        return listing

    def _expand(self, obj: JSONDict, paths: list[str]) -> None:
        for path in paths:
            parts = path.split(".")
            if len(parts) > 4:
                raise StripeApiError(
                    400,
                    f"You cannot expand more than 4 levels of a property. Property: {path}",
                    param="expand",
                    cache=False,
                )
            self._expand_path(obj, parts, path)

    def _expand_path(self, node: Any, parts: list[str], path: str) -> None:
        if isinstance(node, list):
            for item in node:
                self._expand_path(item, parts, path)
            return
        if node is None:
            return
        key = parts[0]
        if not isinstance(node, dict):
            raise _not_expandable(path)
        if node.get("object") == "checkout.session" and key == "line_items":
            node["line_items"] = self._session_line_items_list(node["id"])
        elif key not in node:
            raise _not_expandable(path)
        value = node[key]
        if isinstance(value, str):
            if value not in self._type_of:
                raise _not_expandable(path)
            node[key] = value = self._snapshot(value)
        elif len(parts) == 1 and value is not None and not isinstance(value, dict):
            raise _not_expandable(path)
        if len(parts) > 1:
            self._expand_path(value, parts[1:], path)

    def _new_customer(
        self,
        *,
        email: str | None,
        name: str | None = None,
        description: str | None = None,
        phone: str | None = None,
        metadata: JSONDict | None = None,
    ) -> JSONDict:
        return self._put(
            {
                "id": new_id("cus_", 14),
                "object": "customer",
                "address": None,
                "balance": 0,
                "business_name": None,
                "created": self.now(),
                "currency": None,
                "customer_account": None,
                "default_source": None,
                "delinquent": False,
                "description": description,
                "discount": None,
                "email": email,
                "individual_name": None,
                "invoice_prefix": secrets.token_hex(4).upper(),
                "invoice_settings": {
                    "custom_fields": None,
                    "default_payment_method": None,
                    "footer": None,
                    "rendering_options": None,
                },
                "livemode": False,
                "metadata": metadata or {},
                "name": name,
                "next_invoice_sequence": 1,
                "phone": phone,
                "preferred_locales": [],
                "shipping": None,
                "tax_exempt": "none",
                "test_clock": None,
            }
        )

    def _create_customer_for(self, session: JSONDict) -> str:
        email = session["customer_email"] or f"customer+{secrets.token_hex(3)}@example.com"
        customer = self._new_customer(email=email)
        self._emit("customer.created", customer)
        return str(customer["id"])

    def _plan_of(self, price: JSONDict) -> JSONDict:
        recurring = price["recurring"]
        return {
            "id": price["id"],
            "object": "plan",
            "active": price["active"],
            "amount": price["unit_amount"],
            "amount_decimal": price["unit_amount_decimal"],
            "billing_scheme": price["billing_scheme"],
            "created": price["created"],
            "currency": price["currency"],
            "interval": recurring["interval"],
            "interval_count": recurring["interval_count"],
            "livemode": False,
            "metadata": price["metadata"],
            "meter": None,
            "nickname": price["nickname"],
            "product": price["product"],
            "tiers_mode": None,
            "transform_usage": None,
            "trial_period_days": None,
            "usage_type": recurring["usage_type"],
        }

    def _new_item(
        self, subscription_id: str, price: JSONDict, quantity: int, start: int, end: int
    ) -> JSONDict:
        return {
            "id": new_id("si_", 14),
            "object": "subscription_item",
            "billing_thresholds": None,
            "created": self.now(),
            "current_period_end": end,
            "current_period_start": start,
            "discounts": [],
            "metadata": {},
            "plan": self._plan_of(price),
            "price": copy.deepcopy(price),
            "quantity": quantity,
            "subscription": subscription_id,
            "tax_rates": [],
        }

    def _start_subscription(self, session: JSONDict, customer_id: str) -> tuple[str, str]:
        now = self.now()
        subscription_id = new_id("sub_", 24)
        end = add_months(now, 1)
        extra = self._session_subscription_data.get(session["id"], {})
        items = [
            self._new_item(
                subscription_id, self._store["price"][line["price"]], line["quantity"], now, end
            )
            for line in self._session_lines[session["id"]]
        ]
        subscription: JSONDict = {
            "id": subscription_id,
            "object": "subscription",
            "application": None,
            "application_fee_percent": None,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
            "billing_cycle_anchor": now,
            "billing_cycle_anchor_config": None,
            "billing_mode": {
                "flexible": {"proration_discounts": "included"},
                "type": "flexible",
                "updated_at": now,
            },
            "billing_thresholds": None,
            "cancel_at": None,
            "cancel_at_period_end": False,
            "canceled_at": None,
            "cancellation_details": {"comment": None, "feedback": None, "reason": None},
            "collection_method": "charge_automatically",
            "created": now,
            "currency": items[0]["price"]["currency"],
            "customer": customer_id,
            "customer_account": None,
            "days_until_due": None,
            "default_payment_method": None,
            "default_source": None,
            "default_tax_rates": [],
            "description": extra.get("description"),
            "discounts": [],
            "ended_at": None,
            "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
            "items": {
                "object": "list",
                "data": items,
                "has_more": False,
                "total_count": len(items),
                "url": f"/v1/subscription_items?subscription={subscription_id}",
            },
            "latest_invoice": None,
            "livemode": False,
            "metadata": dict(extra.get("metadata") or {}),
            "next_pending_invoice_item_invoice": None,
            "on_behalf_of": None,
            "pause_collection": None,
            "payment_settings": {
                "payment_method_options": None,
                "payment_method_types": None,
                "save_default_payment_method": "off",
            },
            "pending_invoice_item_interval": None,
            "pending_setup_intent": None,
            "pending_update": None,
            "schedule": None,
            "start_date": now,
            "status": "active",
            "test_clock": None,
            "transfer_data": None,
            "trial_end": None,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": None,
        }
        self._put(subscription)
        self._period_index[subscription_id] = 0
        invoice = self._new_invoice(subscription, "subscription_create", now, now)
        subscription["latest_invoice"] = invoice["id"]
        self._emit("customer.subscription.created", subscription)
        self._emit("invoice.created", invoice)
        self._finalize_invoice(invoice)
        self._pay_invoice(invoice)
        return subscription_id, str(invoice["id"])

    def _next_period(
        self, subscription: JSONDict, *, status: str, move_clock: bool = True
    ) -> JSONDict:
        """Advance to the next period, create its draft invoice, emit the two events."""
        before = copy.deepcopy(subscription)
        old_start = subscription["items"]["data"][0]["current_period_start"]
        old_end = subscription["items"]["data"][0]["current_period_end"]
        if move_clock and self.now() < old_end:
            self._clock_offset += old_end - self.now()
        index = self._period_index.get(subscription["id"], 0) + 1
        self._period_index[subscription["id"]] = index
        anchor = subscription["billing_cycle_anchor"]
        start, end = add_months(anchor, index), add_months(anchor, index + 1)
        for item in subscription["items"]["data"]:
            item["current_period_start"] = start
            item["current_period_end"] = end
        subscription["status"] = status
        invoice = self._new_invoice(subscription, "subscription_cycle", old_start, old_end)
        subscription["latest_invoice"] = invoice["id"]
        self._emit_update(subscription, before)
        self._emit("invoice.created", invoice)
        return invoice

    def _new_invoice(
        self, subscription: JSONDict, reason: str, period_start: int, period_end: int
    ) -> JSONDict:
        """A draft invoice for the subscription's current period.

        As in Stripe, ``period_start``/``period_end`` of a subscription invoice
        describe the *previous* period (equal to ``created`` for the first
        invoice); the lines carry the service period being paid for.
        """
        now = self.now()
        invoice_id = new_id("in_", 24)
        customer = self._store["customer"][subscription["customer"]]
        lines = []
        for item in subscription["items"]["data"]:
            price = item["price"]
            amount = price["unit_amount"] * item["quantity"]
            product = self._store["product"][price["product"]]
            lines.append(
                {
                    "id": new_id("il_", 24),
                    "object": "line_item",
                    "amount": amount,
                    "currency": price["currency"],
                    "description": f"{item['quantity']} × {product['name']} "
                    f"(at ${price['unit_amount'] / 100:.2f} / {price['recurring']['interval']})",
                    "discount_amounts": [],
                    "discountable": True,
                    "discounts": [],
                    "invoice": invoice_id,
                    "livemode": False,
                    "metadata": dict(subscription["metadata"]),
                    "parent": {
                        "invoice_item_details": None,
                        "subscription_item_details": {
                            "invoice_item": None,
                            "proration": False,
                            "proration_details": {"credited_items": None},
                            "subscription": subscription["id"],
                            "subscription_item": item["id"],
                        },
                        "type": "subscription_item_details",
                    },
                    "period": {
                        "end": item["current_period_end"],
                        "start": item["current_period_start"],
                    },
                    "pretax_credit_amounts": [],
                    "pricing": {
                        "price_details": {"price": price["id"], "product": price["product"]},
                        "type": "price_details",
                        "unit_amount_decimal": price["unit_amount_decimal"],
                    },
                    "quantity": item["quantity"],
                    "subtotal": amount,
                    "taxes": [],
                }
            )
        total = sum(line["amount"] for line in lines)
        invoice: JSONDict = {
            "id": invoice_id,
            "object": "invoice",
            "account_country": "US",
            "account_name": self.account_name,
            "account_tax_ids": None,
            "amount_due": total,
            "amount_overpaid": 0,
            "amount_paid": 0,
            "amount_remaining": total,
            "amount_shipping": 0,
            "application": None,
            "attempt_count": 0,
            "attempted": False,
            "auto_advance": True,
            "automatic_tax": {
                "disabled_reason": None,
                "enabled": False,
                "liability": None,
                "provider": None,
                "status": None,
            },
            "automatically_finalizes_at": now + 3600,
            "billing_reason": reason,
            "collection_method": "charge_automatically",
            "confirmation_secret": None,
            "created": now,
            "currency": subscription["currency"],
            "custom_fields": None,
            "customer": customer["id"],
            "customer_account": None,
            "customer_address": None,
            "customer_email": customer["email"],
            "customer_name": customer["name"],
            "customer_phone": None,
            "customer_shipping": None,
            "customer_tax_exempt": "none",
            "customer_tax_ids": [],
            "default_payment_method": None,
            "default_source": None,
            "default_tax_rates": [],
            "description": None,
            "discounts": [],
            "due_date": None,
            "effective_at": None,
            "ending_balance": None,
            "footer": None,
            "from_invoice": None,
            "hosted_invoice_url": None,
            "invoice_pdf": None,
            "issuer": {"type": "self"},
            "last_finalization_error": None,
            "latest_revision": None,
            "lines": {
                "object": "list",
                "data": lines,
                "has_more": False,
                "total_count": len(lines),
                "url": f"/v1/invoices/{invoice_id}/lines",
            },
            "livemode": False,
            "metadata": {},
            "next_payment_attempt": None,
            "number": None,
            "on_behalf_of": None,
            "parent": {
                "quote_details": None,
                "subscription_details": {
                    "metadata": dict(subscription["metadata"]),
                    "subscription": subscription["id"],
                },
                "type": "subscription_details",
            },
            "payment_settings": {
                "default_mandate": None,
                "payment_method_options": None,
                "payment_method_types": None,
            },
            "period_end": period_end,
            "period_start": period_start,
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "receipt_number": None,
            "rendering": None,
            "shipping_cost": None,
            "shipping_details": None,
            "starting_balance": 0,
            "statement_descriptor": None,
            "status": "draft",
            "status_transitions": {
                "finalized_at": None,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            "subtotal": total,
            "subtotal_excluding_tax": total,
            "test_clock": None,
            "total": total,
            "total_discount_amounts": [],
            "total_excluding_tax": total,
            "total_pretax_credit_amounts": [],
            "total_taxes": [],
            "webhooks_delivered_at": None,
        }
        return self._put(invoice)

    def _finalize_invoice(self, invoice: JSONDict) -> None:
        now = self.now()
        customer = self._store["customer"][invoice["customer"]]
        sequence = customer["next_invoice_sequence"]
        customer["next_invoice_sequence"] = sequence + 1
        invoice.update(
            {
                "status": "open",
                "number": f"{customer['invoice_prefix']}-{sequence:04d}",
                "effective_at": now,
                "ending_balance": 0,
                "automatically_finalizes_at": None,
                "hosted_invoice_url": f"{self.base_url}/i/{invoice['id']}",
                "invoice_pdf": f"{self.base_url}/i/{invoice['id']}/pdf",
                "webhooks_delivered_at": now,
            }
        )
        invoice["status_transitions"]["finalized_at"] = now
        self._emit("invoice.finalized", invoice)

    def _pay_invoice(self, invoice: JSONDict) -> None:
        now = self.now()
        invoice.update(
            {
                "status": "paid",
                "amount_paid": invoice["amount_due"],
                "amount_remaining": 0,
                "attempted": True,
                "attempt_count": invoice["attempt_count"] + 1,
                "next_payment_attempt": None,
            }
        )
        invoice["status_transitions"]["paid_at"] = now
        self._emit("invoice.paid", invoice)
        self._emit("invoice.payment_succeeded", invoice)

    def _set_cancel_at_period_end(
        self, subscription: JSONDict, wanted: bool, details: JSONDict, ctx: _RequestContext
    ) -> None:
        before = copy.deepcopy(subscription)
        subscription["cancel_at_period_end"] = wanted
        subscription["cancel_at"] = (
            subscription["items"]["data"][0]["current_period_end"] if wanted else None
        )
        subscription["canceled_at"] = self.now() if wanted else None
        subscription["cancellation_details"] = (
            dict(details) if wanted else {"comment": None, "feedback": None, "reason": None}
        )
        self._emit_update(subscription, before, request=ctx)

    def _end_subscription(
        self,
        subscription: JSONDict,
        details: JSONDict,
        ctx: _RequestContext,
        *,
        ended_at: int | None = None,
    ) -> None:
        now = self.now() if ended_at is None else ended_at
        subscription["status"] = "canceled"
        subscription["ended_at"] = now
        subscription["canceled_at"] = subscription["canceled_at"] or now
        subscription["cancellation_details"] = dict(details)
        self._emit("customer.subscription.deleted", subscription, request=ctx)

    # -- events --------------------------------------------------------------------------------

    def _emit(
        self,
        event_type: str,
        obj: JSONDict,
        *,
        previous_attributes: JSONDict | None = None,
        request: _RequestContext = _AUTOMATIC,
    ) -> JSONDict:
        data: JSONDict = {"object": copy.deepcopy(obj)}
        if previous_attributes is not None:
            data["previous_attributes"] = copy.deepcopy(previous_attributes)
        event = {
            "id": new_id("evt_", 24),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {
                "id": request.request_id or None,
                "idempotency_key": request.idempotency_key,
            },
            "type": event_type,
        }
        self._put(event)
        self._events.append(copy.deepcopy(event))
        if self._webhook_queue is not None and self._loop is not None:
            self._pending_deliveries += 1
            self._loop.call_soon_threadsafe(self._webhook_queue.put_nowait, copy.deepcopy(event))
        return event

    def _emit_update(
        self, obj: JSONDict, before: JSONDict, *, request: _RequestContext = _AUTOMATIC
    ) -> JSONDict | None:
        previous = diff_previous_attributes(before, obj)
        if not previous:
            return None
        event_type = {
            "subscription": "customer.subscription.updated",
            "customer": "customer.updated",
        }[obj["object"]]
        return self._emit(event_type, obj, previous_attributes=previous, request=request)

    # -- hosted pages ---------------------------------------------------------------------------

    async def _checkout_page(self, request: web.Request) -> web.Response:
        session_id = request.match_info["session_id"]
        with self._lock:
            session = self._store.get("checkout.session", {}).get(session_id)
            if session is None:
                return _html_page("Not found", "<p>This checkout session does not exist.</p>", 404)
            if session["status"] != "open":
                return _html_page(
                    "Checkout", f"<p>This checkout session is {session['status']}.</p>"
                )
            rows = "".join(
                f"<li>{html.escape(line['description'])} × {line['quantity']}: "
                f"{line['amount_total'] / 100:.2f} {line['currency'].upper()}</li>"
                for line in self._session_lines.get(session_id, [])
            )
            cancel = session["cancel_url"]
        cancel_link = f'<a id="cancel" href="{html.escape(cancel)}">Cancel</a>' if cancel else ""
        body = (
            f"<ul>{rows}</ul>"
            f'<form method="post" action="/c/pay/{html.escape(session_id)}">'
            '<button id="pay" type="submit">Subscribe</button></form>'
            f"{cancel_link}"
        )
        return _html_page("Checkout (Stripe emulator)", body)

    async def _checkout_pay(self, request: web.Request) -> web.Response:
        session_id = request.match_info["session_id"]
        try:
            self.complete_checkout(session_id)
        except KeyError:
            return _html_page("Not found", "<p>This checkout session does not exist.</p>", 404)
        except ValueError as exc:
            return _html_page("Checkout", f"<p>{html.escape(str(exc))}</p>", 400)
        with self._lock:
            success_url = self._store["checkout.session"][session_id]["success_url"]
        if success_url:
            raise web.HTTPSeeOther(success_url.replace("{CHECKOUT_SESSION_ID}", session_id))
        return _html_page("Thanks", "<p>Payment complete.</p>")

    async def _portal_page(self, request: web.Request) -> web.Response:
        portal_id = request.match_info["portal_id"]
        with self._lock:
            portal = self._store.get("billing_portal.session", {}).get(portal_id)
            if portal is None:
                return _html_page("Not found", "<p>This portal session does not exist.</p>", 404)
            subscriptions = [
                s
                for s in self._store.get("subscription", {}).values()
                if s["customer"] == portal["customer"] and s["status"] != "canceled"
            ]
            rows = "".join(
                f"<li>{html.escape(s['id'])}: {html.escape(s['items']['data'][0]['price']['id'])}"
                f" ({s['status']}{', cancels at period end' if s['cancel_at_period_end'] else ''})"
                f'<form method="post" action="/p/session/{portal_id}/cancel">'
                f'<input type="hidden" name="subscription" value="{html.escape(s["id"])}">'
                '<button type="submit">Cancel plan</button></form></li>'
                for s in subscriptions
            )
            return_url = portal["return_url"]
        back = f'<a id="return" href="{html.escape(return_url)}">Return</a>' if return_url else ""
        return _html_page("Billing portal (Stripe emulator)", f"<ul>{rows}</ul>{back}")

    async def _portal_cancel(self, request: web.Request) -> web.Response:
        portal_id = request.match_info["portal_id"]
        form = await request.post()
        subscription_id = str(form.get("subscription", ""))
        with self._lock:
            portal = self._store.get("billing_portal.session", {}).get(portal_id)
            subscription = self._store.get("subscription", {}).get(subscription_id)
            if portal is None or subscription is None:
                return _html_page("Not found", "<p>Unknown portal session or plan.</p>", 404)
            if subscription["customer"] != portal["customer"]:
                return _html_page("Forbidden", "<p>Not your subscription.</p>", 403)
            if not subscription["cancel_at_period_end"] and subscription["status"] != "canceled":
                self.cancel(subscription_id, at_period_end=True)
        raise web.HTTPSeeOther(f"/p/session/{portal_id}")

    async def _invoice_page(self, request: web.Request) -> web.Response:
        invoice_id = request.match_info["invoice_id"]
        with self._lock:
            invoice = self._store.get("invoice", {}).get(invoice_id)
            if invoice is None:
                return _html_page("Not found", "<p>No such invoice.</p>", 404)
            amount = f"{invoice['total'] / 100:.2f} {invoice['currency'].upper()}"
            text = (
                f"<p>Invoice {html.escape(invoice['number'] or invoice_id)}: "
                f"{amount}, {invoice['status']}</p>"
            )
        return _html_page("Invoice (Stripe emulator)", text)

    # -- control endpoints for out-of-process drivers ------------------------------------------

    async def _handle_control(self, request: web.Request) -> web.Response:
        parts = [part for part in request.match_info["tail"].split("/") if part]
        query = dict(request.query)
        if request.method == "POST":
            form = await request.post()
            query.update({k: v for k, v in form.items() if isinstance(v, str)})
        actions: dict[tuple[str, ...], Callable[[], Any]] = {}
        if request.method == "GET" and parts == ["events"]:
            return web.json_response(self.events)
        if request.method == "GET" and parts == ["requests"]:
            return web.json_response([r.__dict__ for r in self.requests])
        if request.method == "POST" and len(parts) == 3 and parts[0] == "checkout":
            actions[("checkout", "complete")] = lambda: {
                "subscription": self.complete_checkout(parts[1])
            }
            actions[("checkout", "expire")] = lambda: self.expire_checkout(parts[1])
        if request.method == "POST" and len(parts) == 3 and parts[0] == "subscriptions":
            sub = parts[1]
            at_end = query.get("at_period_end", "false") == "true"
            actions[("subscriptions", "renew")] = lambda: {"invoice": self.renew(sub)}
            actions[("subscriptions", "fail_payment")] = lambda: {"invoice": self.fail_payment(sub)}
            actions[("subscriptions", "retry_payment")] = lambda: {
                "invoice": self.retry_payment(sub)
            }
            actions[("subscriptions", "cancel")] = lambda: self.cancel(sub, at_period_end=at_end)
            actions[("subscriptions", "change_price")] = lambda: self.change_price(
                sub, query.get("price", "")
            )
        if request.method == "POST" and parts == ["clock", "advance"]:
            seconds = int(query.get("seconds", "0"))
            actions[("clock", "advance")] = lambda: {"events": self.advance_clock(seconds)}
        action = actions.get((parts[0], parts[-1])) if parts else None
        if action is None:
            return web.json_response({"error": "unknown control action"}, status=404)
        try:
            result = action()
        except KeyError as exc:
            return web.json_response({"error": str(exc)}, status=404)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(result or {"ok": True})


def _not_expandable(path: str) -> StripeApiError:
    return StripeApiError(
        400, f"This property cannot be expanded ({path}).", param="expand", cache=False
    )


def _injected_error(status: int, idempotency_key: str | None) -> StripeApiError:
    if status == 409:
        return StripeApiError(
            409,
            "There is currently another in-progress request using this Idempotency Key "
            "(that probably means you submitted twice, and the other request is still going "
            f"through): {idempotency_key}. Please try again later.",
            error_type="idempotency_error",
            code="idempotency_key_in_use",
        )
    if status == 429:
        return StripeApiError(
            429,
            "Request rate limit exceeded. Learn more about rate limits here "
            "https://stripe.com/docs/rate-limits.",
            code="rate_limit",
        )
    return StripeApiError(
        status,
        "An unknown error occurred (injected by the Stripe emulator).",
        error_type="api_error",
    )


def _type_matches(event_type: str, patterns: Iterable[str]) -> bool:
    for pattern in patterns:
        if pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def _html_page(title: str, body: str, status: int = 200) -> web.Response:
    document = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(text=document, status=status, content_type="text/html")


# -- standalone ---------------------------------------------------------------------------------


def _parse_price(text: str) -> tuple[str, int]:
    price_id, _, amount = text.partition("=")
    if not price_id or not amount.isdigit():
        raise argparse.ArgumentTypeError(f"expected PRICE_ID=CENTS, got {text!r}")
    return price_id, int(amount)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the emulator until SIGTERM / SIGINT (``python -m tests.emulators.stripe_api``)."""
    parser = argparse.ArgumentParser(description="Local Stripe API emulator (127.0.0.1 only).")
    parser.add_argument("--port", type=int, default=12111, help="0 picks a free port")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument(
        "--price",
        action="append",
        type=_parse_price,
        metavar="PRICE_ID=CENTS",
        help=f"repeatable; default {DEFAULT_PRICES}",
    )
    parser.add_argument("--webhook-url", help="loopback URL to POST every event to")
    parser.add_argument("--webhook-secret", help="whsec_... used to sign those POSTs")
    args = parser.parse_args(argv)
    prices = dict(args.price) if args.price else dict(DEFAULT_PRICES)
    emulator = StripeEmulator(
        api_key=args.api_key,
        prices=prices,
        port=args.port,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    emulator.start()
    print(f"Stripe emulator listening on {emulator.base_url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
