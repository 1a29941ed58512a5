"""One PNG of several backtests' equity curves on the same candles (``/backtest compare``)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import numpy as np

from engine.backtest.chart import HOLD_COLOR, _days, _figure, _png, envelope
from engine.backtest.chart_text import ChartText
from engine.backtest.compare import ComparedRun
from engine.strategies.base import Candles

# Colour-blind safe (Okabe-Ito), one per contender; buy and hold stays grey and dashed.
COLORS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#000000", "#f0e442")


def render_comparison_chart(
    candles: Candles, runs: Sequence[ComparedRun], text: ChartText
) -> bytes:
    """The equity of each run over time, the buy-and-hold curve and the capital line."""
    x = _days(candles.time)
    figure, (ax,) = _figure([1])
    for number, run in enumerate(runs):
        xs, ys = envelope(x, np.asarray(run.result.equity, dtype=np.float64))
        label = f"{run.label}: {text.percent(Decimal(str(run.result.total_pnl_pct)))}"
        ax.plot(xs, ys, color=COLORS[number % len(COLORS)], linewidth=1.2, label=label)
    if runs:
        capital = float(runs[0].result.capital)
        hold = capital * np.asarray(candles.close, dtype=np.float64) / float(candles.open[0])
        xs, ys = envelope(x, hold)
        ax.plot(
            xs, ys, color=HOLD_COLOR, linewidth=0.9, linestyle="--",
            label=text("chart.legend.buy_and_hold"),
        )  # fmt: skip
        ax.axhline(capital, color=HOLD_COLOR, linewidth=0.6)
    ax.set_title(
        text("chart.compare.title", count=len(runs), candles=f"{len(candles):,}"), fontsize=14
    )
    ax.set_ylabel(text("chart.axis.equity"), fontsize=12)
    ax.legend(loc="upper left", fontsize=10)
    return _png(figure)
