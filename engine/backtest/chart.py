"""PNG charts for chat: a backtest (price with its trades, equity below) and a bot's equity.

Drawn with matplotlib's object API on the Agg canvas: no pyplot, no global
backend switch and no display, so it is safe in workers and threads. Sized for
a Telegram photo (1280 x 900 px). Long series are reduced to a min/max
envelope per pixel column before drawing: a year of minutes then draws as
fast as a day, and every spike stays visible.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from engine.backtest.runner import BacktestResult
from engine.strategies.base import Candles, FloatArray

WIDTH_PX, HEIGHT_PX, DPI = 1280, 900, 100
MAX_POINTS = 2 * WIDTH_PX  # a min and a max per pixel column
MAX_MARKERS = 400  # beyond this, trade markers hide the price; the title gives the count
BUY_COLOR, SELL_COLOR, LOSS_COLOR = "#1a9850", "#d73027", "#d73027"
PRICE_COLOR, EQUITY_COLOR, HOLD_COLOR = "#2c3e50", "#2166ac", "#999999"


@dataclass(frozen=True)
class TradeMark:
    """A closed trade on a live bot's equity chart: when it closed and what it made."""

    time: datetime | int  # a datetime, or ms since the epoch (UTC)
    pnl: Decimal


def _as_datetime64(times: Sequence[datetime | int] | npt.NDArray[Any]) -> npt.NDArray[Any]:
    values = list(times) if not isinstance(times, np.ndarray) else times
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        return values.astype("datetime64[ms]")
    return np.asarray(
        [
            np.datetime64(int(v.timestamp() * 1000), "ms")
            if isinstance(v, datetime)
            else np.datetime64(int(v), "ms")
            for v in values
        ],
        dtype="datetime64[ms]",
    )


def _envelope(
    x: npt.NDArray[Any], y: FloatArray, limit: int = MAX_POINTS
) -> tuple[npt.NDArray[Any], FloatArray]:
    """At most ``limit`` points that keep each bucket's lowest and highest value, in order."""
    n = y.shape[0]
    if n <= limit:
        return x, y
    buckets = limit // 2
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    starts = edges[:-1]
    low = np.minimum.reduceat(y, starts)
    high = np.maximum.reduceat(y, starts)
    # Position of each extreme inside its bucket, so the pair is drawn in time order.
    x_out = np.empty(2 * buckets, dtype=x.dtype)
    y_out = np.empty(2 * buckets, dtype=np.float64)
    for_low = np.empty(buckets, dtype=np.int64)
    for_high = np.empty(buckets, dtype=np.int64)
    for b, (s, e) in enumerate(zip(starts.tolist(), edges[1:].tolist(), strict=True)):
        segment = y[s:e]
        for_low[b] = s + int(segment.argmin())
        for_high[b] = s + int(segment.argmax())
    low_first = for_low <= for_high
    first = np.where(low_first, for_low, for_high)
    second = np.where(low_first, for_high, for_low)
    x_out[0::2], x_out[1::2] = x[first], x[second]
    y_out[0::2] = np.where(low_first, low, high)
    y_out[1::2] = np.where(low_first, high, low)
    return x_out, y_out


def _figure(rows: int, ratios: list[int]) -> tuple[Figure, list[Axes]]:
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, 1, sharex=True, gridspec_kw={"height_ratios": ratios})
    axes_list = list(np.atleast_1d(axes))
    for ax in axes_list:
        ax.grid(True, alpha=0.25)
        ax.tick_params(labelsize=11)
    return figure, axes_list


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _signed(value: Decimal) -> str:
    return f"{value:+.2f}"


def render_chart(candles: Candles, result: BacktestResult) -> bytes:
    """A backtest as a PNG: close price with its buys and sells, the equity curve below."""
    times = np.asarray(candles.time, dtype=np.int64).astype("datetime64[ms]")
    figure, (price_ax, equity_ax) = _figure(2, [3, 2])
    x, y = _envelope(times, np.asarray(candles.close, dtype=np.float64))
    price_ax.plot(x, y, color=PRICE_COLOR, linewidth=0.9, label="close")
    fills = result.fills
    if 0 < len(fills) <= MAX_MARKERS:
        for side, marker, color in (("buy", "^", BUY_COLOR), ("sell", "v", SELL_COLOR)):
            mine = [f for f in fills if f.side == side]
            if mine:
                price_ax.scatter(
                    [times[f.index] for f in mine],
                    [float(f.price) for f in mine],
                    marker=marker,
                    s=60,
                    color=color,
                    zorder=3,
                    label=side,
                )
    markers = "" if len(fills) <= MAX_MARKERS else " (markers omitted)"
    params = ", ".join(f"{k}={v}" for k, v in result.params.items())
    price_ax.set_title(
        f"{result.strategy} ({params}): {result.trade_count} trades{markers}, "
        f"return {_signed(result.total_pnl_pct)} %, max drawdown {result.max_drawdown_pct:.2f} %",
        fontsize=14,
    )
    price_ax.set_ylabel("price", fontsize=12)
    price_ax.legend(loc="upper left", fontsize=11)

    x, y = _envelope(times, result.equity)
    equity_ax.plot(x, y, color=EQUITY_COLOR, linewidth=1.1, label="strategy equity")
    capital = float(result.capital)
    hold = capital * np.asarray(candles.close, dtype=np.float64) / float(candles.open[0])
    x, y = _envelope(times, hold)
    equity_ax.plot(x, y, color=HOLD_COLOR, linewidth=0.9, linestyle="--", label="buy and hold")
    equity_ax.axhline(capital, color=HOLD_COLOR, linewidth=0.6)
    equity_ax.set_ylabel("equity", fontsize=12)
    equity_ax.legend(loc="upper left", fontsize=11)
    return _png(figure)


def render_equity_chart(
    times: Sequence[datetime | int] | npt.NDArray[Any],
    equity: Sequence[Decimal | float] | FloatArray,
    trades: Sequence[TradeMark],
) -> bytes:
    """A live bot's equity over time as a PNG, closed trades marked (green won, red lost).

    ``times`` are datetimes or ms since the epoch, one per ``equity`` value.
    """
    x = _as_datetime64(times)
    y = np.asarray([float(v) for v in equity], dtype=np.float64)
    if x.shape[0] != y.shape[0]:
        raise ValueError("times and equity must have the same length")
    figure, (ax,) = _figure(1, [1])
    if y.size:
        ex, ey = _envelope(x, y)
        ax.plot(ex, ey, color=EQUITY_COLOR, linewidth=1.4, label="equity")
    marks = list(trades)[-MAX_MARKERS:]
    if marks and y.size:
        when = _as_datetime64([m.time for m in marks])
        # Each trade sits on the curve at its closing time.
        on_curve = np.interp(when.astype(np.int64), x.astype(np.int64), y)
        won = np.asarray([m.pnl > 0 for m in marks])
        ax.scatter(
            when[won], on_curve[won], marker="o", s=45, color=BUY_COLOR, zorder=3, label="won"
        )
        ax.scatter(
            when[~won], on_curve[~won], marker="o", s=45, color=LOSS_COLOR, zorder=3, label="lost"
        )
    if y.size:
        change = y[-1] - y[0]
        ax.set_title(f"equity {y[-1]:,.2f} ({change:+,.2f}), {len(trades)} trades", fontsize=14)
        ax.legend(loc="upper left", fontsize=11)
    else:
        ax.set_title("no equity recorded yet", fontsize=14)
    ax.set_ylabel("equity", fontsize=12)
    return _png(figure)
