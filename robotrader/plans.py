"""The plan in force: what a user's plan allows on this server.

With billing configured (Stripe), the plan stored on the user, as billing/plans.py's
one table says. Self-hosted without Stripe the server has no plans: every user has
every feature, with the limits of the top plan. Every limit check reads the plan
through here, so that rule lives in this one place.
"""

from __future__ import annotations

from billing.plans import PlanLimits, limits_of
from db.models import Plan
from robotrader.settings import Settings

# What everyone has when the server sells no plans: the most any plan allows.
WITHOUT_BILLING = Plan.PREMIUM


def plan_in_force(settings: Settings, stored: Plan | str) -> Plan:
    """The plan whose limits apply to a user whose row says ``stored``."""
    return Plan(stored) if settings.billing_enabled else WITHOUT_BILLING


def limits_in_force(settings: Settings, stored: Plan | str) -> PlanLimits:
    """What a user whose row says ``stored`` may do on this server."""
    return limits_of(plan_in_force(settings, stored))
