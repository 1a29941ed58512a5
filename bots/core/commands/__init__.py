"""Every chat command; importing this package registers them (see bots/core/registry.py)."""

from bots.core.commands import account, billing, bots, exchanges, portfolio, preferences

__all__ = ["account", "billing", "bots", "exchanges", "portfolio", "preferences"]
