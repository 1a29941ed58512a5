"""Trend following: enter when the fast moving average crosses above the slow one."""

from __future__ import annotations

from typing import ClassVar

from engine.strategies.base import (
    ENTER,
    EXIT,
    FLAT,
    Candles,
    Intent,
    Line,
    Param,
    ParameterError,
    Params,
    PositionState,
    SignalArray,
    Strategy,
    StrategyInfo,
    StrategyView,
)
from engine.strategies.indicators import crossings, sma, smas


class SmaCrossover(Strategy):
    """+1 on the candle where SMA(fast) crosses above SMA(slow), -1 where it crosses below.

    Signals are events, not states: a bot created in the middle of a trend waits
    for the next crossing instead of buying late into it.
    """

    info: ClassVar[StrategyInfo] = StrategyInfo(
        name="sma_crossover",
        basic=True,
        params=(
            Param(
                name="fast",
                kind=int,
                default=9,
                minimum=2,
                maximum=100,
            ),
            Param(
                name="slow",
                kind=int,
                default=21,
                minimum=3,
                maximum=200,
            ),
        ),
    )
    decides_on_signal_and_holding: ClassVar[bool] = True

    def check(self, params: Params) -> None:
        if params["fast"] >= params["slow"]:
            raise ParameterError("fast_not_below_slow")

    def warmup(self, params: Params) -> int:
        # The slow average needs `slow` candles, and a crossing needs one more before it.
        return int(params["slow"]) + 1

    def compute(self, candles: Candles, params: Params) -> SignalArray:
        fast, slow = smas(candles.close, (int(params["fast"]), int(params["slow"])))
        return crossings(fast, slow)

    def view(
        self, candles: Candles, params: Params, position: PositionState = FLAT
    ) -> StrategyView:
        fast, slow = int(params["fast"]), int(params["slow"])
        return StrategyView(
            lines=(
                Line("sma_fast", sma(candles.close, fast), "price", {"period": fast}),
                Line("sma_slow", sma(candles.close, slow), "price", {"period": slow}),
            )
        )

    def decide(
        self, signal: int, price: float, position: PositionState, params: Params
    ) -> Intent | None:
        if signal > 0 and not position.is_open:
            return ENTER
        if signal < 0 and position.is_open:
            return EXIT
        return None
