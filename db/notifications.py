"""The notification contract: every kind of notification, and the payload each one carries.

Writers (the engine, billing, the use cases) build one of the ``*Notice`` classes
and hand it to the outbox (`db.outbox.add_notification`), which stores its kind
and `Notice.to_payload` as a JSON row. Readers (every renderer) turn a stored row
back into the same class with `read_notice`, so mypy checks both ends against one
definition, and a kind with no payload class, or a row of a kind nobody knows,
fails instead of falling through to a generic text.

Frozen dataclasses rather than TypedDicts: a TypedDict is only a static view of a
dict, so the rows stored before a field existed would still reach the renderer
without it (hence the ``.get(key, default)`` everywhere). A dataclass is built
once, where the row is read: the field types are checked there, amounts come out
as `Decimal`, and the few keys older rows lack get their default in one place
(``legacy``). The JSON is unchanged: same keys, amounts as strings.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Self, Union, get_args, get_origin, get_type_hints

from db.models.enums import BotMode, OrderSide, Plan


class NotificationKind(StrEnum):
    """What a notification is about; stored in ``notifications.kind``, muted by users."""

    TRADE_OPENED = "trade_opened"
    TRADE_CLOSED = "trade_closed"
    ORDER_REJECTED = "order_rejected"
    BOT_PAUSED = "bot_paused"
    DATA_FALLBACK = "data_fallback"
    SIGNAL_EXPIRED = "signal_expired"
    KILL_SWITCH = "kill_switch"
    DAILY_SUMMARY = "daily_summary"
    BACKTEST_DONE = "backtest_done"
    BACKTEST_FAILED = "backtest_failed"
    PLAN_CHANGED = "plan_changed"
    PAYMENT_FAILED = "payment_failed"
    EXCHANGE_CONNECTED = "exchange_connected"


class UnreadableNotification(ValueError):
    """A stored row of an unknown kind, or whose payload does not fit its kind."""


@dataclass(frozen=True)
class _Notice:
    kind: ClassVar[NotificationKind]
    # Keys rows written by an older version lack, with the value they stood for.
    legacy: ClassVar[Mapping[str, object]] = types.MappingProxyType({})

    def to_payload(self) -> dict[str, Any]:
        """The JSON stored for it: amounts and times as strings, enums as their values.

        An optional field left at its default (None) is not written at all, as before.
        """
        payload: dict[str, Any] = {}
        for name, _, optional in _fields_of(type(self)):
            value = getattr(self, name)
            if value is None and optional:
                continue
            payload[name] = _to_json(value)
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Self:
        """The notice a stored payload holds (keys it does not know are ignored)."""
        values: dict[str, Any] = {}
        for name, hint, _ in _fields_of(cls):
            if name in payload:
                raw = payload[name]
            elif name in cls.legacy:
                raw = cls.legacy[name]
            elif _optional(hint):
                raw = None
            else:
                raise UnreadableNotification(f"{cls.kind}: no {name!r} in the payload")
            try:
                values[name] = _from_json(hint, raw)
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise UnreadableNotification(f"{cls.kind}: {name}={raw!r}") from exc
        return cls(**values)


_FIELDS: dict[type, tuple[tuple[str, Any, bool], ...]] = {}


def _fields_of(notice: type[_Notice]) -> tuple[tuple[str, Any, bool], ...]:
    """(name, type, left out when None) of each field: read once per class (a tick writes many)."""
    fields = _FIELDS.get(notice)
    if fields is None:
        hints = get_type_hints(notice)
        fields = _FIELDS[notice] = tuple(
            (field.name, hints[field.name], field.default is None)
            for field in dataclasses.fields(notice)
        )
    return fields


def _to_json(value: object) -> object:
    if isinstance(value, Decimal | StrEnum):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_to_json(item) for item in value]
    return value


def _optional(hint: Any) -> bool:
    return get_origin(hint) in (Union, types.UnionType) and type(None) in get_args(hint)


def _from_json(hint: Any, raw: Any) -> Any:
    if _optional(hint):
        if raw is None:
            return None
        (hint,) = (arg for arg in get_args(hint) if arg is not type(None))
    if get_origin(hint) is tuple:
        (item, _) = get_args(hint)
        return tuple(_from_json(item, value) for value in raw)
    if hint is bool:
        if not isinstance(raw, bool):
            raise TypeError(raw)
        return raw
    if hint is Decimal:
        return Decimal(str(raw))
    if hint is datetime:
        return datetime.fromisoformat(str(raw))
    if hint is int:
        return int(raw)
    if hint is str:
        return str(raw)
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return hint(raw)
    raise TypeError(f"no JSON reading for {hint!r}")


# --- what a bot did -------------------------------------------------------------------------


@dataclass(frozen=True)
class _TradeNotice(_Notice):
    bot_id: int
    bot: str  # the bot's name
    mode: BotMode
    symbol: str
    side: OrderSide
    reason: str  # why the order was placed: entry, stop_loss, signal... (catalog reason.*)
    amount: Decimal
    price: Decimal


@dataclass(frozen=True)
class TradeOpenedNotice(_TradeNotice):
    """A buy filled."""

    kind: ClassVar[NotificationKind] = NotificationKind.TRADE_OPENED
    value: Decimal  # amount × price, rounded to cents


@dataclass(frozen=True)
class TradeClosedNotice(_TradeNotice):
    """A sell filled: part of a position or all of it."""

    kind: ClassVar[NotificationKind] = NotificationKind.TRADE_CLOSED
    entry_price: Decimal
    pnl: Decimal
    pnl_pct: Decimal
    closed: bool  # nothing left of the position


@dataclass(frozen=True)
class OrderRejectedNotice(_Notice):
    """The exchange, or its rules checked before sending, refused an order."""

    kind: ClassVar[NotificationKind] = NotificationKind.ORDER_REJECTED
    bot_id: int
    bot: str
    symbol: str
    side: OrderSide
    reason: str  # catalog rejection.*
    limits: str | None = None  # the exchange's rule broken (below_minimum, above_maximum)


@dataclass(frozen=True)
class BotPausedNotice(_Notice):
    """The engine paused a bot (auth refused, daily loss limit, no market data...)."""

    kind: ClassVar[NotificationKind] = NotificationKind.BOT_PAUSED
    bot_id: int
    bot: str
    reason: str  # catalog pause.*


@dataclass(frozen=True)
class DataFallbackNotice(_Notice):
    """A paper bot trades on replayed market data: the exchange is out of reach."""

    kind: ClassVar[NotificationKind] = NotificationKind.DATA_FALLBACK
    bot_id: int
    bot: str


@dataclass(frozen=True)
class SignalExpiredNotice(_Notice):
    """A TradingView alert arrived too late to act on."""

    kind: ClassVar[NotificationKind] = NotificationKind.SIGNAL_EXPIRED
    bot_id: int
    bot: str
    action: str
    received: str  # HH:MM, UTC
    minutes: int  # how late it was
    limit: int  # the most an alert may be late, in minutes


@dataclass(frozen=True)
class KillSwitchNotice(_Notice):
    """The user's kill switch: bots stopped, live positions sold."""

    kind: ClassVar[NotificationKind] = NotificationKind.KILL_SWITCH
    # Before orders could wait for the exchange, a row said only how many were "closing".
    legacy: ClassVar[Mapping[str, object]] = types.MappingProxyType({"sold": 0, "waiting": 0})
    bots: int
    sold: int
    waiting: int  # orders the exchange has not settled yet


@dataclass(frozen=True)
class DailySummaryNotice(_Notice):
    """The day's realised PnL and open positions, at the hour the user chose."""

    kind: ClassVar[NotificationKind] = NotificationKind.DAILY_SUMMARY
    date: str  # YYYY-MM-DD
    pnl: Decimal
    trades: int
    open_positions: int


@dataclass(frozen=True)
class _BacktestNotice(_Notice):
    job: str
    strategy: str
    symbol: str
    days: int
    bot: str  # the bot backtested with its own settings, else ""


@dataclass(frozen=True)
class BacktestDoneNotice(_BacktestNotice):
    """A backtest nobody waited for in a chat finished."""

    kind: ClassVar[NotificationKind] = NotificationKind.BACKTEST_DONE
    pnl_pct: Decimal
    trades: int


@dataclass(frozen=True)
class BacktestFailedNotice(_BacktestNotice):
    """A backtest nobody waited for in a chat failed."""

    kind: ClassVar[NotificationKind] = NotificationKind.BACKTEST_FAILED
    error: str  # catalog backtest.error.*


# --- keys ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExchangeConnectedNotice(_Notice):
    """A key received on the web form was checked with the exchange and stored."""

    kind: ClassVar[NotificationKind] = NotificationKind.EXCHANGE_CONNECTED
    exchange: str
    title: str
    trade: bool | None  # what the exchange said of the key's rights (None: not said)
    withdraw: bool | None
    egress_ips: tuple[str, ...]  # the server's addresses to restrict the key to


# --- billing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanChangedNotice(_Notice):
    """A subscription started, changed or ended."""

    kind: ClassVar[NotificationKind] = NotificationKind.PLAN_CHANGED
    plan: Plan
    old_plan: Plan
    downgrade: bool
    paused: tuple[str, ...]  # names of the bots paused for being over the new plan
    renews_at: datetime | None


@dataclass(frozen=True)
class PaymentFailedNotice(_Notice):
    """Stripe could not charge the user: the portal fixes it (never posted in a channel)."""

    kind: ClassVar[NotificationKind] = NotificationKind.PAYMENT_FAILED
    portal_url: str


Notice = (
    TradeOpenedNotice
    | TradeClosedNotice
    | OrderRejectedNotice
    | BotPausedNotice
    | DataFallbackNotice
    | SignalExpiredNotice
    | KillSwitchNotice
    | DailySummaryNotice
    | BacktestDoneNotice
    | BacktestFailedNotice
    | PlanChangedNotice
    | PaymentFailedNotice
    | ExchangeConnectedNotice
)

NOTICE_OF_KIND: Mapping[NotificationKind, type[Notice]] = types.MappingProxyType(
    {notice.kind: notice for notice in get_args(Notice)}
)
if NOTICE_OF_KIND.keys() != set(NotificationKind):  # pragma: no cover - a bug of this module
    raise RuntimeError("one payload class per NotificationKind")


def read_notice(kind: str, payload: Mapping[str, Any]) -> Notice:
    """A stored notification as the notice its writer built (`UnreadableNotification` if not)."""
    try:
        notice = NOTICE_OF_KIND[NotificationKind(kind)]
    except ValueError:
        raise UnreadableNotification(f"unknown notification kind {kind!r}") from None
    result: Notice = notice.from_payload(payload)
    return result
