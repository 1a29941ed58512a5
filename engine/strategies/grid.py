"""Grid trading: buy a step each time price falls through a grid line, sell a step when it rises."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from engine.strategies.base import (
    FLAT,
    Candles,
    FloatArray,
    Intent,
    Level,
    Param,
    ParameterError,
    Params,
    PositionState,
    SignalArray,
    Strategy,
    StrategyInfo,
    StrategyView,
)


def grid_lines(params: Params) -> FloatArray:
    """The ``levels`` prices of the grid, evenly spaced from ``lower`` to ``upper`` inclusive."""
    return np.linspace(float(params["lower"]), float(params["upper"]), int(params["levels"]))


class Grid(Strategy):
    """Signal = grid lines the close crossed since the previous close, signed.

    Positive means the close fell through that many lines (buy steps), negative
    that it rose through them (sell steps). A close exactly on a line counts as
    above it, so falling through a line and coming back is always +1 then -1 and
    the steps balance. The lines are ``lower``, ``upper`` and evenly spaced ones
    between: the candle that breaks out of the range acts once on the edge line,
    and while the close stays outside the range there is no line to cross, so
    the grid does nothing new until the price comes back.

    A candle that crosses several lines still places one step (the engine counts
    one entry per buy); the count is kept in the signal for charts and reports.
    """

    info: ClassVar[StrategyInfo] = StrategyInfo(
        name="grid",
        basic=False,
        params=(
            Param(
                name="lower",
                kind=float,
                default=80_000.0,
                minimum=0.00000001,
                maximum=10_000_000.0,
            ),
            Param(
                name="upper",
                kind=float,
                default=100_000.0,
                minimum=0.00000001,
                maximum=10_000_000.0,
            ),
            Param(
                name="levels",
                kind=int,
                default=10,
                minimum=2,
                maximum=100,
            ),
        ),
    )

    def check(self, params: Params) -> None:
        if params["lower"] >= params["upper"]:
            raise ParameterError("lower_not_below_upper")

    def warmup(self, params: Params) -> int:
        return 2  # one previous close to compare with

    def compute(self, candles: Candles, params: Params) -> SignalArray:
        lines = grid_lines(params)
        # Lines at or below each close; the drop in that count is the lines crossed downward.
        lines_below = np.searchsorted(lines, candles.close, side="right").astype(np.int16)
        signal = np.zeros(len(candles), dtype=np.int8)
        signal[1:] = lines_below[:-1] - lines_below[1:]
        return signal

    def view(
        self, candles: Candles, params: Params, position: PositionState = FLAT
    ) -> StrategyView:
        return StrategyView(
            levels=tuple(Level("grid_line", float(price)) for price in grid_lines(params))
        )

    def decide(
        self, signal: int, price: float, position: PositionState, params: Params
    ) -> Intent | None:
        # No check of `price` against the range here: crossing an edge line (almost) always leaves
        # the close outside the range, so such a check would make both edges dead (and a 2-line
        # grid never trade). "Outside does nothing new" is already in the signal: 0 there.
        levels = int(params["levels"])
        if signal > 0 and position.entries < levels:
            return Intent("buy", 1.0 / levels, "grid_buy")
        if signal < 0 and position.is_open:
            return Intent("sell", 1.0 / max(position.entries, 1), "grid_sell")
        return None
