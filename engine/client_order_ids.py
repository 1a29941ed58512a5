"""Deterministic client order ids: one decision, one id, however often a tick is retried."""

from __future__ import annotations

import hashlib


def client_order_id(bot_id: int, symbol: str, moment: int | str, reason: str, entries: int) -> str:
    """``rt`` + 30 hex chars (Binance and Bybit accept up to 36 of ``[A-Za-z0-9_-]``).

    ``moment`` is what the decision was taken on: a candle's open time, or a
    webhook alert. ``entries`` (buys already in the position) is part of the
    decision too: a DCA safety order after the first on the same candle is new.
    """
    digest = hashlib.sha256(f"{bot_id}|{symbol}|{moment}|{reason}|{entries}".encode()).hexdigest()
    return f"rt{digest[:30]}"
