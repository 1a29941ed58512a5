"""Trading bots: a strategy on some symbols of one exchange with some capital."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ColumnElement, ForeignKey, Index, Integer, String, text
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base
from db.models.enums import BotMode, BotStatus
from db.types import JSONType, Money, UTCDateTime, utcnow

# The tick is split into shards of whole users (engine.sharding): a bot is in its
# owner's bucket, stored with the bot so that a shard's bots are an index range.
TICK_BUCKET_BITS = 10
TICK_BUCKETS = 1 << TICK_BUCKET_BITS


def tick_bucket_of(user_id: int) -> int:
    """The low bits of the owner's id, reversed: consecutive users land far apart.

    Shards are ranges of buckets, so with a plain modulo a small install's users
    (ids 1..200) would all be in the first shard. Reversed, any run of 2^k
    consecutive users covers 2^k shards of a power-of-two ``TICK_SHARDS`` evenly.
    """
    low = user_id % TICK_BUCKETS
    return int(f"{low:0{TICK_BUCKET_BITS}b}"[::-1], 2)


def _tick_bucket_default(context: DefaultExecutionContext) -> int:
    parameters = context.get_current_parameters()  # type: ignore[no-untyped-call]
    return tick_bucket_of(parameters["user_id"])


class Bot(Base):
    __tablename__ = "bots"
    __table_args__ = (
        # Names are unique among a user's bots that are not archived (deleted).
        Index(
            "uq_bots_user_active_name",
            "user_id",
            "name",
            unique=True,
            sqlite_where=text("archived_at IS NULL"),
            postgresql_where=text("archived_at IS NULL"),
        ),
        # A tick shard's running bots: a range of buckets (engine.sharding).
        Index("ix_bots_status_bucket", "status", "tick_bucket"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    tick_bucket: Mapped[int] = mapped_column(Integer, default=_tick_bucket_default)
    exchange: Mapped[str] = mapped_column(String(32))
    credential_id: Mapped[str | None] = mapped_column(
        ForeignKey("exchange_credentials.id", ondelete="SET NULL"), default=None
    )
    symbols: Mapped[list[str]] = mapped_column(JSONType)
    timeframe: Mapped[str] = mapped_column(String(8), default="1m")
    strategy: Mapped[str] = mapped_column(String(32))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    capital: Mapped[Decimal] = mapped_column(Money())
    quote: Mapped[str] = mapped_column(String(16), default="USDT")
    mode: Mapped[BotMode] = mapped_column(String(8), default=BotMode.PAPER)
    status: Mapped[BotStatus] = mapped_column(String(16), default=BotStatus.STOPPED)
    pause_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    # Risk settings; None means off.
    stop_loss_pct: Mapped[Decimal | None] = mapped_column(Money(), default=None)
    take_profit_pct: Mapped[Decimal | None] = mapped_column(Money(), default=None)
    max_position: Mapped[Decimal | None] = mapped_column(Money(), default=None)
    daily_loss_limit_pct: Mapped[Decimal | None] = mapped_column(Money(), default=None)
    # Exits (robotrader.use_cases.bot_settings reads and writes them; engine.risk applies them).
    trailing_stop_pct: Mapped[Decimal | None] = mapped_column(Money(), default=None)
    trailing_arm_pct: Mapped[Decimal | None] = mapped_column(Money(), default=None)
    # [[profit_pct, share_pct], ...] as decimal strings, profits increasing; None = no targets.
    take_profit_targets: Mapped[list[list[str]] | None] = mapped_column(JSONType, default=None)
    breakeven_after_target: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    # Secret part of the signal-webhook URL (signal strategy only).
    signal_secret: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    # Where the last tick's market data came from: "exchange" or "replay".
    market_data_source: Mapped[str | None] = mapped_column(String(16), default=None)
    # Deleted by its owner: kept, with its orders, fills and trades, out of every list.
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The kill switch asked to sell everything: what an order in flight leaves is sold
    # once it settles; cleared when the bot holds nothing and has nothing in flight.
    liquidating_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    @hybrid_property
    def is_active(self) -> bool:
        """Not deleted: listed, counted by the plan, found by name. In SQL as in Python."""
        return self.archived_at is None

    @is_active.inplace.expression
    @classmethod
    def _is_active_expression(cls) -> ColumnElement[bool]:
        return cls.archived_at.is_(None)


class BotSignal(Base):
    """A TradingView-style alert received for a signal-strategy bot, consumed by the next tick."""

    __tablename__ = "bot_signals"
    __table_args__ = (Index("ix_bot_signals_pending", "bot_id", "consumed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(8))  # buy | sell | close
    symbol: Mapped[str | None] = mapped_column(String(32), default=None)
    price: Mapped[Decimal | None] = mapped_column(Money(), default=None)
    amount: Mapped[Decimal | None] = mapped_column(Money(), default=None)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class BotResult(Base):
    """Every closed trade's PnL summed per bot: the bot trades with capital plus this.

    Its own row, not a column of ``bots``: bookkeeping writes it after locking the
    positions it books, while starting, stopping or the kill switch lock the bot row
    first; keeping the two apart keeps one lock order.
    """

    __tablename__ = "bot_results"

    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"), primary_key=True)
    realized_pnl: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
