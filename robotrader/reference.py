"""The engine's reference data a front end shows and validates against.

The exchanges that can be connected, the strategies with their parameters, the
timeframes, the key of one market's candles, and a take-profit target. They live
in the engine; front ends take them from here, since they import robotrader/ only
(DESIGN.md, "Who may import whom").
"""

from __future__ import annotations

from engine.exchanges.catalog import EXCHANGES, ExchangeSpec
from engine.market_data.feed import MarketKey
from engine.market_data.timeframes import TIMEFRAME_MS
from engine.risk import Target
from engine.strategies.registry import STRATEGIES, get_strategy

__all__ = [
    "EXCHANGES",
    "STRATEGIES",
    "TIMEFRAME_MS",
    "ExchangeSpec",
    "MarketKey",
    "Target",
    "get_strategy",
]
