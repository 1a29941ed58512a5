"""What goes to one chat, in which messages and in which order, when several notifications are due.

A chat (one user on one platform) gets at most one message a second, and a bot at most
some thirty a second in all: a busy tick that fills five orders of each of two thousand
users cannot go out a message per fill. So the fills due for a chat go out as one
digest, a table of them grouped per bot, while everything else (billing, rejected
orders, pauses, the kill switch, summaries...) keeps its own message and goes first:
none of those waits behind a digest. Rendering, and cutting a long digest into messages
the platform takes, is each front end's (bots/core/digest.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from db.models import BotMode
from db.notifications import (
    NotificationKind,
    TradeClosedNotice,
    TradeOpenedNotice,
    UnreadableNotification,
    read_notice,
)
from db.outbox import ClaimedNotification

# The kinds a digest summarises: fills. Nothing else is ever held back by one.
DIGESTIBLE = frozenset({NotificationKind.TRADE_OPENED, NotificationKind.TRADE_CLOSED})


@dataclass(frozen=True)
class DigestFill:
    """One fill of a digest: the notification to acknowledge and what it says."""

    notification: ClaimedNotification
    notice: TradeOpenedNotice | TradeClosedNotice


@dataclass(frozen=True)
class BotFills:
    """The fills of one bot in a digest, oldest first."""

    bot_id: int
    bot: str
    mode: BotMode
    fills: tuple[DigestFill, ...]


@dataclass(frozen=True)
class ChatDue:
    """Everything due for one user's chat: first ``alone`` (each its own message, in
    order), then ``digest`` (the fills summarised together; empty when there is none).
    """

    user_id: int
    alone: tuple[ClaimedNotification, ...]
    digest: tuple[BotFills, ...]

    @property
    def notifications(self) -> tuple[ClaimedNotification, ...]:
        held = tuple(f.notification for group in self.digest for f in group.fills)
        return self.alone + held


def _fill(notification: ClaimedNotification) -> DigestFill | None:
    if notification.kind not in DIGESTIBLE:
        return None
    try:
        notice = read_notice(notification.kind, notification.payload)
    except UnreadableNotification:
        return None  # goes alone, where its renderer reports it
    if not isinstance(notice, TradeOpenedNotice | TradeClosedNotice):  # pragma: no cover
        return None
    return DigestFill(notification, notice)


def _oldest_first(notification: ClaimedNotification) -> tuple[object, int]:
    return (notification.created_at, notification.notification_id)


def _urgent_first(notification: ClaimedNotification) -> tuple[int, object, int]:
    return (-_priority_of(notification), notification.created_at, notification.notification_id)


def _priority_of(notification: ClaimedNotification) -> int:
    # Billing before anything else the chat has due: it is about the account itself.
    billing = {NotificationKind.PLAN_CHANGED, NotificationKind.PAYMENT_FAILED}
    return 1 if notification.kind in billing else 0


def chat_due(user_id: int, notifications: Sequence[ClaimedNotification]) -> ChatDue:
    """One user's due notifications as the messages they go in.

    Two fills or more make a digest; a single fill goes alone, as it always did.
    """
    fills: list[DigestFill] = []
    alone: list[ClaimedNotification] = []
    for notification in notifications:
        fill = _fill(notification)
        if fill is None:
            alone.append(notification)
        else:
            fills.append(fill)
    alone.sort(key=_urgent_first)
    if len(fills) < 2:
        return ChatDue(user_id, tuple(alone) + tuple(f.notification for f in fills), ())
    fills.sort(key=lambda f: _oldest_first(f.notification))
    groups: dict[int, list[DigestFill]] = {}
    for fill in fills:  # bots in the order of their first fill
        groups.setdefault(fill.notice.bot_id, []).append(fill)
    digest = tuple(
        BotFills(group[0].notice.bot_id, group[-1].notice.bot, group[-1].notice.mode, tuple(group))
        for group in groups.values()
    )
    return ChatDue(user_id, tuple(alone), digest)


def plan_chats(claimed: Iterable[ClaimedNotification]) -> list[ChatDue]:
    """A claim split per user's chat, users in the order the claim gave them."""
    per_user: dict[int, list[ClaimedNotification]] = {}
    for notification in claimed:
        per_user.setdefault(notification.user_id, []).append(notification)
    return [chat_due(user_id, notifications) for user_id, notifications in per_user.items()]
