"""Strategy signals on a market's newest candles, kept by a process for the shards it runs.

A tick's shards each hold bots of many markets and parameter sets, so every shard
would compute the same (market, strategy, parameters) again: with 64 shards a
worker computed each signal up to 64 times a tick. A signal depends only on the
candles, and a market's candles are the same for every shard of one candle (same
newest candle, same length, same source: closed candles never change), so the
first shard a worker runs computes it and the others read it. Each market keeps
only its newest candles' signals.
"""

from __future__ import annotations

from engine.market_data.feed import MarketKey, MarketSnapshot

Slot = tuple[str, str]  # (strategy, its parameters as sorted JSON)


class ComputedSignals:
    def __init__(self) -> None:
        self._markets: dict[MarketKey, tuple[tuple[int, int, str], dict[Slot, int]]] = {}

    def of(self, key: MarketKey, snapshot: MarketSnapshot) -> dict[Slot, int]:
        """The signals computed so far on ``snapshot``'s candles (filled in by the caller)."""
        version = (snapshot.last_time, len(snapshot.candles), snapshot.source)
        held = self._markets.get(key)
        if held is None or held[0] != version:
            held = self._markets[key] = (version, {})
        return held[1]
