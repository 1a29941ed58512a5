"""Webhook signals (e.g. TradingView alerts): the alert is the signal, the strategy sizes it."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from engine.strategies.base import (
    Candles,
    Intent,
    Params,
    PositionState,
    SignalArray,
    Strategy,
    StrategyInfo,
)

BUY = 1
SELL = -1
CLOSE = -2


class WebhookSignal(Strategy):
    """``compute`` has nothing to say; the tick passes the bot's pending alert to ``decide``.

    Alerts: ``BUY`` (+1) opens a position when flat, ``SELL`` (-1) and ``CLOSE``
    (-2) sell it all when holding; they differ only in the reason recorded.
    Anything else, or a buy while holding, is ignored so a repeated alert
    cannot pyramid.
    """

    info: ClassVar[StrategyInfo] = StrategyInfo(
        name="signal",
        basic=False,
        params=(),
    )
    decides_on_signal_and_holding: ClassVar[bool] = True

    def warmup(self, params: Params) -> int:
        return 1

    def compute(self, candles: Candles, params: Params) -> SignalArray:
        return np.zeros(len(candles), dtype=np.int8)

    def decide(
        self, signal: int, price: float, position: PositionState, params: Params
    ) -> Intent | None:
        if signal == BUY and not position.is_open:
            return Intent("buy", 1.0, "signal_buy")
        if signal == SELL and position.is_open:
            return Intent("sell", 1.0, "signal_sell")
        if signal == CLOSE and position.is_open:
            return Intent("sell", 1.0, "signal_close")
        return None
