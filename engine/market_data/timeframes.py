"""Candle timeframes the engine supports, as exchanges name them (ccxt's strings)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

MINUTE_MS = 60_000

TIMEFRAME_MS: Mapping[str, int] = MappingProxyType(
    {
        "1m": MINUTE_MS,
        "5m": 5 * MINUTE_MS,
        "15m": 15 * MINUTE_MS,
        "1h": 60 * MINUTE_MS,
        "4h": 240 * MINUTE_MS,
        "1d": 1440 * MINUTE_MS,
    }
)


def timeframe_ms(tf: str) -> int:
    """Length of one ``tf`` candle in milliseconds; ValueError for a timeframe we do not offer.

    Candles are aligned to multiples of this length since the Unix epoch (UTC),
    as exchanges align them, so a ``1d`` candle opens at 00:00 UTC.
    """
    try:
        return TIMEFRAME_MS[tf]
    except KeyError:
        offered = ", ".join(TIMEFRAME_MS)
        raise ValueError(f"unsupported timeframe {tf!r} (use one of {offered})") from None
