"""The notification contract (`db.notifications`), for the front ends that render it.

Front ends import robotrader, never db: the kinds, their payloads and the reading
of a stored row reach them from here.
"""

from __future__ import annotations

from db.notifications import (
    NOTICE_OF_KIND,
    BacktestDoneNotice,
    BacktestFailedNotice,
    BotPausedNotice,
    DailySummaryNotice,
    DataFallbackNotice,
    ExchangeConnectedNotice,
    KillSwitchNotice,
    Notice,
    NotificationKind,
    OrderRejectedNotice,
    PaymentFailedNotice,
    PlanChangedNotice,
    SignalExpiredNotice,
    TradeClosedNotice,
    TradeOpenedNotice,
    UnreadableNotification,
    read_notice,
)

__all__ = [
    "NOTICE_OF_KIND",
    "BacktestDoneNotice",
    "BacktestFailedNotice",
    "BotPausedNotice",
    "DailySummaryNotice",
    "DataFallbackNotice",
    "ExchangeConnectedNotice",
    "KillSwitchNotice",
    "Notice",
    "NotificationKind",
    "OrderRejectedNotice",
    "PaymentFailedNotice",
    "PlanChangedNotice",
    "SignalExpiredNotice",
    "TradeClosedNotice",
    "TradeOpenedNotice",
    "UnreadableNotification",
    "read_notice",
]
