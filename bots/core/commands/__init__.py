"""Every chat command; importing this package registers them (see bots/core/registry.py)."""

from bots.core.commands import (
    account,
    backtests,
    billing,
    bot_edits,
    bots,
    comparison,
    exchanges,
    optimization,
    portfolio,
    preferences,
    web_access,
)

__all__ = [
    "account",
    "backtests",
    "billing",
    "bot_edits",
    "bots",
    "comparison",
    "exchanges",
    "optimization",
    "portfolio",
    "preferences",
    "web_access",
]
