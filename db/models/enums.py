"""Closed sets of values stored as short strings (portable, readable in SQL)."""

from __future__ import annotations

from enum import StrEnum


class Plan(StrEnum):
    FREE = "free"
    PRO = "pro"
    PREMIUM = "premium"


class Platform(StrEnum):
    TELEGRAM = "telegram"
    DISCORD = "discord"
    CONSOLE = "console"


class CredentialStatus(StrEnum):
    ACTIVE = "active"
    INVALID = "invalid"


class BotMode(StrEnum):
    PAPER = "paper"
    LIVE = "live"


class BotStatus(StrEnum):
    STOPPED = "stopped"
    RUNNING = "running"
    PAUSED = "paused"


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(StrEnum):
    PENDING = "pending"  # decided and recorded, not yet acknowledged by the exchange
    OPEN = "open"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"


# Orders the exchange has not settled: pending (maybe sent) or open (resting, partly filled).
# While a bot has one on a symbol it decides nothing there; the partial index
# ix_orders_unsettled holds exactly these.
UNSETTLED_ORDER_STATUSES = (OrderStatus.PENDING, OrderStatus.OPEN)


class BacktestStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
