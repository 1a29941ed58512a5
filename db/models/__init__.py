"""All tables; importing this module registers them on ``Base.metadata``."""

from db.models.access import ApiToken, AuditEntry, EngineHeartbeat, OneTimeCode, WebSession
from db.models.backtests import Backtest
from db.models.base import Base
from db.models.billing import StripeEvent, Subscription
from db.models.bots import Bot, BotResult, BotSignal
from db.models.community import CommunityChannel, CommunityMember
from db.models.credentials import ExchangeCredential
from db.models.enums import (
    UNSETTLED_ORDER_STATUSES,
    BacktestStatus,
    BotMode,
    BotStatus,
    CredentialStatus,
    OrderSide,
    OrderStatus,
    OrderType,
    Plan,
    Platform,
)
from db.models.notifications import Notification, NotificationDelivery
from db.models.trading import Fill, Order, PaperBalance, Position, Trade
from db.models.users import ChatIdentity, User

__all__ = [
    "UNSETTLED_ORDER_STATUSES",
    "ApiToken",
    "AuditEntry",
    "Backtest",
    "BacktestStatus",
    "Base",
    "Bot",
    "BotMode",
    "BotResult",
    "BotSignal",
    "BotStatus",
    "ChatIdentity",
    "CommunityChannel",
    "CommunityMember",
    "CredentialStatus",
    "EngineHeartbeat",
    "ExchangeCredential",
    "Fill",
    "Notification",
    "NotificationDelivery",
    "OneTimeCode",
    "Order",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "PaperBalance",
    "Plan",
    "Platform",
    "Position",
    "StripeEvent",
    "Subscription",
    "Trade",
    "User",
    "WebSession",
]
