"""Why a Stripe webhook was not applied: the route answers each with its own status.

Raised by billing's Stripe gateway through `handle_stripe_webhook`; the web app
takes them from here, since it imports robotrader/ only.
"""

from __future__ import annotations

from billing.stripe_gateway import BillingUnavailable, InvalidSignature

__all__ = ["BillingUnavailable", "InvalidSignature"]
