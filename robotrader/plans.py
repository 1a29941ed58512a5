"""What each plan allows, as billing/plans.py's one table says.

Front ends read it from here, since they import robotrader/ only.
"""

from __future__ import annotations

from billing.plans import limits_of

__all__ = ["limits_of"]
