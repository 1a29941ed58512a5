"""Mean reversion: buy as RSI leaves oversold, sell as it falls back from overbought."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from engine.strategies.base import (
    ENTER,
    EXIT,
    FLAT,
    Candles,
    Intent,
    Level,
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
from engine.strategies.indicators import crossover, crossunder, rsi

# Wilder's smoothing never forgets its seed completely: after k more candles the seed
# keeps a weight of ((period - 1) / period) ** k ~ exp(-k / period). 7 periods leave
# < 0.1 %, so the tick (which sees a short window) and a long backtest agree on RSI to a
# few hundredths, and the default warm-up (114 candles) fits the tick's shared window.
CONVERGENCE_PERIODS = 7


class RsiReversion(Strategy):
    """+1 where RSI crosses above ``oversold``, -1 where it crosses below ``overbought``.

    Crossings use TradingView's definition (``ta.crossover``: above now, at or
    below on the previous candle), the rule of TradingView's built-in "RSI
    Strategy": buying the turn back up out of oversold rather than the first dip
    below it avoids catching a falling knife, and one crossing gives exactly one
    signal even if RSI touches the level on the way.
    """

    info: ClassVar[StrategyInfo] = StrategyInfo(
        name="rsi",
        basic=True,
        params=(
            Param(
                name="period",
                kind=int,
                default=14,
                minimum=2,
                maximum=50,
            ),
            Param(
                name="oversold",
                kind=float,
                default=30.0,
                minimum=1.0,
                maximum=50.0,
            ),
            Param(
                name="overbought",
                kind=float,
                default=70.0,
                minimum=50.0,
                maximum=99.0,
            ),
        ),
    )
    decides_on_signal_and_holding: ClassVar[bool] = True

    def check(self, params: Params) -> None:
        if params["oversold"] >= params["overbought"]:
            raise ParameterError("oversold_not_below_overbought")

    def warmup(self, params: Params) -> int:
        # First RSI needs period + 1 closes, a crossing one more; Wilder's smoothing
        # then needs time to forget its seed so the tick agrees with a long backtest.
        period = int(params["period"])
        return period + 2 + CONVERGENCE_PERIODS * period

    def compute(self, candles: Candles, params: Params) -> SignalArray:
        strength = rsi(candles.close, int(params["period"]))
        signal = np.zeros(len(candles), dtype=np.int8)
        signal[crossover(strength, float(params["oversold"]))] = 1
        signal[crossunder(strength, float(params["overbought"]))] = -1
        return signal

    def view(
        self, candles: Candles, params: Params, position: PositionState = FLAT
    ) -> StrategyView:
        period = int(params["period"])
        return StrategyView(
            lines=(Line("rsi", rsi(candles.close, period), "oscillator", {"period": period}),),
            levels=(
                Level("oversold", float(params["oversold"]), "oscillator"),
                Level("overbought", float(params["overbought"]), "oscillator"),
            ),
        )

    def decide(
        self, signal: int, price: float, position: PositionState, params: Params
    ) -> Intent | None:
        if signal > 0 and not position.is_open:
            return ENTER
        if signal < 0 and position.is_open:
            return EXIT
        return None
