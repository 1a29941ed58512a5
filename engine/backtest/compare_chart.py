"""One PNG of several backtests' equity curves on the same candles (``/backtest compare``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.backtest.chart import HOLD_COLOR, _envelope, _figure, _png
from engine.backtest.compare import ComparedRun
from engine.strategies.base import Candles

# Colour-blind safe (Okabe-Ito), one per contender; buy and hold stays grey and dashed.
COLORS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#000000", "#f0e442")


def render_comparison_chart(candles: Candles, runs: Sequence[ComparedRun]) -> bytes:
    """The equity of each run over time, the buy-and-hold curve and the capital line."""
    times = np.asarray(candles.time, dtype=np.int64).astype("datetime64[ms]")
    figure, (ax,) = _figure(1, [1])
    for number, run in enumerate(runs):
        x, y = _envelope(times, run.result.equity)
        label = f"{run.label}: {run.result.total_pnl_pct:+.2f} %"
        ax.plot(x, y, color=COLORS[number % len(COLORS)], linewidth=1.2, label=label)
    if runs:
        capital = float(runs[0].result.capital)
        hold = capital * np.asarray(candles.close, dtype=np.float64) / float(candles.open[0])
        x, y = _envelope(times, hold)
        ax.plot(x, y, color=HOLD_COLOR, linewidth=0.9, linestyle="--", label="buy and hold")
        ax.axhline(capital, color=HOLD_COLOR, linewidth=0.6)
    ax.set_title(f"{len(runs)} strategies on the same {len(candles):,} candles", fontsize=14)
    ax.set_ylabel("equity", fontsize=12)
    ax.legend(loc="upper left", fontsize=10)
    return _png(figure)
