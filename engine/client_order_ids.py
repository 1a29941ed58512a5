"""Deterministic client order ids: one decision, one id, however often a tick is retried."""

from __future__ import annotations

import hashlib


def client_order_id(
    bot_id: int, symbol: str, candle_time_ms: int, reason: str, entries: int
) -> str:
    """``rt`` + 30 hex chars (Binance and Bybit accept up to 36 of ``[A-Za-z0-9_-]``).

    ``entries`` (buys already in the position) is part of the decision: a DCA
    safety order after the first one on the same candle is a new decision.
    """
    digest = hashlib.sha256(
        f"{bot_id}|{symbol}|{candle_time_ms}|{reason}|{entries}".encode()
    ).hexdigest()
    return f"rt{digest[:30]}"
