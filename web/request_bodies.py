"""Request bodies: how many bytes each endpoint reads at most, and JSON that fails cleanly.

The caps are enforced while the body streams in (Starlette's body-limit middleware, set
per route through FastAPI's ``max_body_size``): a declared Content-Length over the cap is
refused before a byte is read, a body without one at the first chunk past it. This
happens before any authentication, signature or secret check, since those need the body
(Stripe) or come after it, and a caller who knows nothing must not make us hold 400 MB.
"""

from __future__ import annotations

import json
from typing import Any

# Everything not listed below: API bodies, dashboard forms, the key intake form.
DEFAULT_MAX_BODY = 64 * 1024
SIGNAL_MAX_BODY = 16 * 1024  # TradingView caps alert messages far below this
STRIPE_MAX_BODY = 512 * 1024  # Stripe events are a few KB; invoices with many lines more
TELEGRAM_MAX_BODY = 1024 * 1024  # an update with a long message and its entities

MAX_BODY: dict[str, int] = {
    "/signals/": SIGNAL_MAX_BODY,
    "/stripe/webhook": STRIPE_MAX_BODY,
    "/telegram/webhook": TELEGRAM_MAX_BODY,
}


class BadJson(ValueError):
    """Not JSON, not UTF-8, or nested deeper than the decoder goes."""


def decode_json(body: bytes) -> Any:
    """The body as JSON (a BOM tolerated); BadJson for anything else, deep nesting included."""
    try:
        return json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        # RecursionError: 16 KB of "[" exhausts the decoder's stack; that is a bad
        # request from the caller, not a bug of ours.
        raise BadJson from None
