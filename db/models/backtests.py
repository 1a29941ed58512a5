"""Backtest jobs: asked for in chat, run by the engine, read back by the chat (and the CLI)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base
from db.models.enums import BacktestStatus
from db.types import JSONType, UTCDateTime, utcnow


class Backtest(Base):
    """One backtest: queued by a use case, claimed and run by one engine worker.

    The id is random (not a sequence): a job can never be mistaken for another one,
    whatever process or database it ends up in. While it runs, the worker writes its
    stage and progress about once a second; that write is also its heartbeat.
    """

    __tablename__ = "backtests"
    __table_args__ = (Index("ix_backtests_user_status", "user_id", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    bot_id: Mapped[int | None] = mapped_column(
        ForeignKey("bots.id", ondelete="SET NULL"), default=None
    )
    # What to run (engine.backtest.summary.BacktestSpec as JSON).
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[BacktestStatus] = mapped_column(String(16), default=BacktestStatus.QUEUED)
    stage: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # 0..1, for a progress bar
    # The figures (engine.backtest.summary.BacktestSummary as JSON) once done.
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    chart_png: Mapped[bytes | None] = mapped_column(LargeBinary, default=None, deferred=True)
    error: Mapped[str | None] = mapped_column(String(32), default=None)  # a catalog key part
    # Nobody waits in a chat for it any more: the engine says it is done through the outbox.
    notify_when_done: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
