"""The equity curve of a backtest and its lowest points, in one compiled pass.

The curve has one value per candle close: the amount held after the last fill so far
times the close, plus the cash after that fill (the capital before the first). numpy
built it with two ``np.repeat`` over the fills and two more passes, and took the
running peak for the drawdown in another; one pass here writes the same floats (the
same two operations per value, ``engine.backtest.compiled``) and keeps the lowest
equity and the lowest ratio of equity to its running peak as it goes; a NaN gives
NaN, as ``np.min`` and ``np.maximum.accumulate`` do.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from engine.backtest.compiled import compiled


@compiled("UniTuple(float64, 2)(int64[:], float64[:], float64[:], float64[:], float64, float64[:])")
def fill_equity(
    fill_index: npt.NDArray[np.int64],
    held_after: npt.NDArray[np.float64],
    cash_after: npt.NDArray[np.float64],
    close: npt.NDArray[np.float64],
    capital: float,
    equity: npt.NDArray[np.float64],
) -> tuple[float, float]:
    """Write the curve into ``equity`` (as long as ``close``) from the fills (the candle
    whose open fills each, in order, and the amount held and cash after it); return
    ``min(equity / running peak)`` and ``min(equity)`` (inf for no candle).
    """
    fills = fill_index.shape[0]
    held, cash = 0.0, capital
    k = 0  # fills applied so far
    peak = -math.inf
    lowest_ratio = lowest = math.inf
    broken = False  # a NaN ratio: numpy's minimum is NaN
    for i in range(close.shape[0]):
        while k < fills and fill_index[k] <= i:
            held, cash = held_after[k], cash_after[k]
            k += 1
        value = held * close[i] + cash
        equity[i] = value
        if value > peak:
            peak = value
        ratio = value / peak
        if ratio < lowest_ratio:
            lowest_ratio = ratio
        if value < lowest:
            lowest = value
        if ratio != ratio:  # a NaN value, or 0 / 0, inf / inf
            broken = True
    if broken:
        lowest_ratio = math.nan
        for value in equity:
            if value != value:
                lowest = math.nan  # and np.maximum.accumulate's peaks are NaN from there
    return lowest_ratio, lowest
