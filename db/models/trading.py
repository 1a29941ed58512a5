"""What bots did: orders and their fills, open positions, closed trades, paper balances."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base
from db.models.enums import BotMode, OrderSide, OrderStatus, OrderType
from db.types import Money, UTCDateTime, utcnow


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_bot_status", "bot_id", "status"),
        # The few orders the exchange has not settled, read at every tick: an index of
        # their own stays small however many settled orders the history holds.
        Index(
            "ix_orders_unsettled",
            "bot_id",
            postgresql_where=text("status IN ('pending', 'open')"),
            sqlite_where=text("status IN ('pending', 'open')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Deterministic from (bot, candle time, action): a retried tick reuses it, so the
    # unique constraint and the exchange both refuse a second order for one decision.
    client_order_id: Mapped[str] = mapped_column(String(36), unique=True)
    exchange_order_id: Mapped[str | None] = mapped_column(String(64), default=None)
    mode: Mapped[BotMode] = mapped_column(String(8))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[OrderSide] = mapped_column(String(4))
    type: Mapped[OrderType] = mapped_column(String(8))
    amount: Mapped[Decimal] = mapped_column(Money())
    # A limit order's price; for a market order, the price its decision saw (the
    # exchange's minimum order value and the account's balance are checked at it).
    price: Mapped[Decimal | None] = mapped_column(Money(), default=None)
    status: Mapped[OrderStatus] = mapped_column(String(16), default=OrderStatus.PENDING)
    filled: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    average_price: Mapped[Decimal | None] = mapped_column(Money(), default=None)
    fee: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    fee_currency: Mapped[str | None] = mapped_column(String(16), default=None)
    # Why the engine placed it: entry, exit, stop_loss, take_profit, safety, grid, signal, panic.
    reason: Mapped[str] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(String(255), default=None)
    # Requests sent to the exchange so far: after the first, look the order up before resending.
    submit_attempts: Mapped[int] = mapped_column(default=0)
    # Until then one process is talking to the exchange about this order; others leave it.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # When the last request for it left: not found sooner after it proves nothing yet.
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # A resting limit order still open then is cancelled on the exchange.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Open time (ms) of the candle the decision was taken on.
    candle_time: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Fill(Base):
    __tablename__ = "fills"
    __table_args__ = (UniqueConstraint("order_id", "exchange_fill_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    exchange_fill_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(Money())
    price: Mapped[Decimal] = mapped_column(Money())
    fee: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    fee_currency: Mapped[str | None] = mapped_column(String(16), default=None)
    filled_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Position(Base):
    """A bot's open holding in one symbol (long-only spot)."""

    __tablename__ = "positions"
    __table_args__ = (UniqueConstraint("bot_id", "symbol"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    symbol: Mapped[str] = mapped_column(String(32))
    amount: Mapped[Decimal] = mapped_column(Money())
    average_entry: Mapped[Decimal] = mapped_column(Money())
    cost: Mapped[Decimal] = mapped_column(Money())  # quote spent incl. fees
    entries: Mapped[int] = mapped_column(default=1)  # DCA safety orders count here
    # What the exit rules remember (engine.risk): the highest price since entry (trailing
    # stop) and how many take-profit targets have sold their share.
    highest_price: Mapped[Decimal | None] = mapped_column(Money(), default=None)
    targets_hit: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Trade(Base):
    """A closed round trip with its realised PnL."""

    __tablename__ = "trades"
    __table_args__ = (
        Index("ix_trades_user_closed", "user_id", "closed_at"),
        # A bot's trades of one day (the daily loss limit, read every tick), or all of them.
        Index("ix_trades_bot_closed", "bot_id", "closed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    symbol: Mapped[str] = mapped_column(String(32))
    mode: Mapped[BotMode] = mapped_column(String(8))
    amount: Mapped[Decimal] = mapped_column(Money())
    entry_price: Mapped[Decimal] = mapped_column(Money())
    exit_price: Mapped[Decimal] = mapped_column(Money())
    pnl: Mapped[Decimal] = mapped_column(Money())
    pnl_pct: Mapped[Decimal] = mapped_column(Money())
    fees: Mapped[Decimal] = mapped_column(Money())
    exit_reason: Mapped[str] = mapped_column(String(32))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PaperBalance(Base):
    """Per-user simulated balances; new users start with 10,000 USDT."""

    __tablename__ = "paper_balances"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    asset: Mapped[str] = mapped_column(String(16), primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Money())
