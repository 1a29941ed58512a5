"""PNG charts for chat: a backtest as a trader reads it, and a bot's equity.

A backtest chart shows, on one time axis: the price with what the strategy decides
on (its ``Strategy.view``: SMA lines, grid lines, DCA's take-profit and safety
prices while a position was open) and every buy and sell, marked by its reason;
oscillators (RSI) in their own pane with their thresholds; the equity against buy
and hold; the drawdown. The title names the pair, the timeframe, the period, the
strategy and its parameters; candles that are not the exchange's are marked
synthetic. Figures on the chart are the summary's, formatted by the same functions
as the chat's text (``engine.number_text``), so a return has one sign everywhere.

Words come from the caller (`ChartText`): the engine knows no catalog.

Drawn with matplotlib's object API on the Agg canvas: no pyplot, no global
backend switch and no display, so it is safe in workers and threads. Sized for
a Telegram photo (1280 x 900 px). Long series are reduced to a min/max
envelope per pixel column before drawing: a year of minutes then draws about as
fast as a day, and every spike stays visible. More than ``MAX_MARKERS`` buys and
sells would hide the price: whole trades are then left out evenly, and the chart
says how many it shows.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from engine.backtest.chart_text import ChartText
from engine.backtest.runner import BacktestFill, BacktestResult
from engine.backtest.summary import BacktestSummary
from engine.exchanges.paper import AMOUNT_STEP
from engine.strategies.base import Candles, FloatArray, Level, Params, PositionState, Strategy
from engine.strategies.registry import get_strategy

WIDTH_PX, HEIGHT_PX, DPI = 1280, 900, 100
MAX_POINTS = 2 * WIDTH_PX  # a min and a max per pixel column
MAX_MARKERS = 400  # buys and sells drawn at most; beyond, whole trades are left out evenly
DAY_MS = 86_400_000
TITLE_CHARS = 120  # at 14 pt, what fits across 1280 px
BUY_COLOR, SELL_COLOR, STOP_COLOR, TARGET_COLOR = "#1a9850", "#d73027", "#000000", "#7b3294"
PRICE_COLOR, EQUITY_COLOR, HOLD_COLOR, DRAWDOWN_COLOR = "#2c3e50", "#2166ac", "#999999", "#d73027"
LINE_COLORS = ("#ff7f0e", "#9467bd", "#17becf", "#8c564b")
LEVEL_COLORS = {"take_profit_price": TARGET_COLOR, "safety": "#e08214", "grid_line": "#4d4d4d"}
# Sells by why they happened: a stop is not a signal exit.
SELL_STYLE = {
    "stop_loss": ("X", STOP_COLOR),
    "panic": ("X", STOP_COLOR),
    "take_profit": ("v", TARGET_COLOR),
    "trailing_stop": ("X", STOP_COLOR),
    "breakeven": ("X", STOP_COLOR),
    **{f"target_{n}": ("v", TARGET_COLOR) for n in range(1, 5)},
}


@dataclass(frozen=True)
class TradeMark:
    """A closed trade on a live bot's equity chart: when it closed and what it made."""

    time: datetime
    pnl: Decimal


def _days(ms: npt.NDArray[np.int64] | int) -> Any:
    """ms since the epoch -> matplotlib's date numbers (days since 1970-01-01, its default)."""
    return np.asarray(ms, dtype=np.float64) / DAY_MS


def _day_of(moment: datetime) -> float:
    return moment.timestamp() * 1000 / DAY_MS


def envelope(
    x: FloatArray, y: FloatArray, limit: int = MAX_POINTS
) -> tuple[FloatArray, FloatArray]:
    """At most ``limit`` points that keep each bucket's lowest and highest value, in time order.

    Buckets are consecutive runs of equal length; NaN (an indicator before its warm-up)
    is kept only where a whole bucket is NaN, so the line starts where the values do.
    """
    n = y.shape[0]
    if n <= limit:
        return x, y
    buckets = limit // 2
    size = -(-n // buckets)
    buckets = -(-n // size)
    padded = np.full(buckets * size, np.nan)
    padded[:n] = y
    grid = padded.reshape(buckets, size)
    nan = np.isnan(grid)
    low = np.where(nan, np.inf, grid).argmin(axis=1)
    high = np.where(nan, -np.inf, grid).argmax(axis=1)
    base = np.arange(buckets) * size
    first = np.minimum(base + np.minimum(low, high), n - 1)
    second = np.minimum(base + np.maximum(low, high), n - 1)
    order = np.empty(2 * buckets, dtype=np.int64)
    order[0::2], order[1::2] = first, second
    return x[order], y[order]


def _figure(ratios: Sequence[int]) -> tuple[Figure, list[Axes]]:
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(
        len(ratios), 1, sharex=True, squeeze=False, gridspec_kw={"height_ratios": list(ratios)}
    )
    axes_list = [ax for (ax,) in axes]
    for ax in axes_list:
        ax.grid(True, alpha=0.25)
        ax.tick_params(labelsize=10)
    bottom = axes_list[-1]
    # Ticks chosen for the span and labels only as long as they need to be: they never overlap.
    locator = mdates.AutoDateLocator(minticks=3, maxticks=9, tz=UTC)  # type: ignore[no-untyped-call]
    bottom.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator, tz=UTC)  # type: ignore[no-untyped-call]
    bottom.xaxis.set_major_formatter(formatter)
    return figure, axes_list


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _round_trips(fills: Sequence[BacktestFill]) -> list[list[BacktestFill]]:
    """Fills grouped by position: from the buy that opened one to the sell that closed it."""
    trips: list[list[BacktestFill]] = []
    current: list[BacktestFill] = []
    held = Decimal(0)
    for fill in fills:
        current.append(fill)
        held += fill.amount if fill.side == "buy" else -fill.amount
        if fill.side == "sell" and held <= AMOUNT_STEP:  # the bookkeeping's dust rule
            trips.append(current)
            current, held = [], Decimal(0)
    if current:
        trips.append(current)
    return trips


def _shown_trips(trips: list[list[BacktestFill]]) -> list[list[BacktestFill]]:
    """Every trip when their fills fit under MAX_MARKERS; else every k-th, evenly."""
    total = sum(len(trip) for trip in trips)
    if total <= MAX_MARKERS:
        return trips
    step = -(-total // MAX_MARKERS)
    kept = trips[::step]
    while kept and sum(len(trip) for trip in kept) > MAX_MARKERS:
        step += 1
        kept = trips[::step]
    return kept


def _holding_spans(
    trip: list[BacktestFill], end_index: int
) -> Iterator[tuple[int, int, PositionState]]:
    """(first candle, last candle, position held) between consecutive fills of one trip."""
    amount = cost = 0.0
    entries = 0
    for fill, after in zip(trip, [*trip[1:], None], strict=True):
        quantity = float(fill.amount)
        if fill.side == "buy":
            amount += quantity
            cost += quantity * float(fill.price) + float(fill.fee)
            entries += 1
        else:
            cost -= cost * quantity / amount if amount else 0.0
            amount -= quantity
        until = after.index if after is not None else end_index
        if amount > float(AMOUNT_STEP) and until > fill.index:
            yield fill.index, until, PositionState(amount, cost / amount, entries)


def _level_key(level: Level) -> tuple[str, str, float]:
    return (level.name, level.pane, round(level.value, 12))


def _draw_position_levels(
    ax: Axes,
    strategy: Strategy,
    candles: Candles,
    trips: list[list[BacktestFill]],
    params: Params,
    flat_levels: set[tuple[str, str, float]],
    text: ChartText,
    x: FloatArray,
) -> None:
    """Levels that follow the bot's own position (DCA's take profit and safety prices),
    drawn over the candles where that position was held, as ``decide`` saw them then.

    Only those levels are taken from these views, so the last candle is all they need.
    """
    last = candles.tail(1)
    segments: dict[str, list[list[tuple[float, float]]]] = {}
    labels: dict[str, str] = {}
    end = len(candles) - 1
    for trip in trips:
        for start, until, position in _holding_spans(trip, end):
            for level in strategy.view(last, params, position).levels:
                if level.pane != "price" or _level_key(level) in flat_levels:
                    continue
                segments.setdefault(level.name, []).append(
                    [(x[start], level.value), (x[until], level.value)]
                )
                labels.setdefault(level.name, text(f"indicator.{level.name}", **level.args))
    for name, lines in segments.items():
        collection = LineCollection(
            lines,
            colors=LEVEL_COLORS.get(name, "#666666"),
            linewidths=1.0,
            linestyles="--",
            label=labels[name] if name != "safety" else text("chart.legend.safety_levels"),
            zorder=2,
        )
        collection.set_gid(f"position_level:{name}")
        ax.add_collection(collection)


def _draw_fills(ax: Axes, trips: list[list[BacktestFill]], text: ChartText, x: FloatArray) -> None:
    groups: dict[tuple[str, str], list[BacktestFill]] = {}
    for trip in trips:
        for fill in trip:
            groups.setdefault((fill.side, fill.reason), []).append(fill)
    for (side, reason), fills in sorted(groups.items()):
        if side == "buy":
            marker, color = "^", BUY_COLOR
        else:
            marker, color = SELL_STYLE.get(reason, ("v", SELL_COLOR))
        collection = ax.scatter(
            [x[f.index] for f in fills],
            [float(f.price) for f in fills],
            marker=marker,
            s=48,
            color=color,
            edgecolors="white",
            linewidths=0.6,
            zorder=4,
            label=text(f"chart.legend.{side}", reason=text(f"reason.{reason}")),
        )
        collection.set_gid(f"fills:{side}:{reason}")


def backtest_figure(
    candles: Candles, result: BacktestResult, summary: BacktestSummary, text: ChartText
) -> Figure:
    """The backtest chart as a matplotlib Figure (see the module docstring)."""
    strategy = get_strategy(result.strategy)
    params = dict(result.params)
    view = strategy.view(candles, params)
    oscillator = [line for line in view.lines if line.pane == "oscillator"]
    ratios = [5, 2, 3, 2] if oscillator else [5, 3, 2]
    figure, axes = _figure(ratios)
    price_ax, equity_ax, drawdown_ax = axes[0], axes[-2], axes[-1]
    price_ax.set_gid("pane:price")
    equity_ax.set_gid("pane:equity")
    drawdown_ax.set_gid("pane:drawdown")
    x = _days(np.asarray(candles.time, dtype=np.int64))
    spec = summary.spec

    title = text(
        "chart.backtest.title",
        strategy=text(f"strategy.{result.strategy}.title"),
        parameters=", ".join(f"{k}={v}" for k, v in params.items()) or "—",
        symbol=spec.symbol,
        timeframe=spec.timeframe,
        exchange=spec.exchange,
        start=text.day(summary.first_candle_ms),
        end=text.day(summary.last_candle_ms),
    )
    # Many parameters make a long title: it wraps rather than running off the picture.
    figure.suptitle(textwrap.fill(title, TITLE_CHARS), fontsize=14)
    price_ax.set_title(
        text(
            "chart.backtest.figures",
            pnl_pct=text.percent(summary.total_pnl_pct),
            hold_pct=text.percent(summary.buy_and_hold_pct),
            drawdown=text.percent(-summary.max_drawdown_pct),
            trades=summary.trade_count,
        ),
        fontsize=12,
        loc="left",
    )
    if summary.synthetic:
        price_ax.text(
            0.99, 0.97, text("chart.backtest.synthetic"), transform=price_ax.transAxes,
            ha="right", va="top", fontsize=11, color="#7f2704", zorder=5, gid="synthetic",
            bbox={"boxstyle": "round", "facecolor": "#fee6ce", "edgecolor": "#e6550d"},
        )  # fmt: skip

    close = np.asarray(candles.close, dtype=np.float64)
    (line,) = price_ax.plot(
        *envelope(x, close), color=PRICE_COLOR, linewidth=0.9, label=text("chart.legend.close")
    )
    line.set_gid("close")
    colors = iter(LINE_COLORS * 4)
    for indicator in view.lines:
        ax = price_ax if indicator.pane == "price" else axes[1]
        (drawn,) = ax.plot(
            *envelope(x, np.asarray(indicator.values, dtype=np.float64)),
            color=next(colors),
            linewidth=1.1,
            label=text(f"indicator.{indicator.name}", **indicator.args),
        )
        drawn.set_gid(f"indicator:{indicator.name}")
    labelled: set[str] = set()
    for level in view.levels:
        ax = price_ax if level.pane == "price" else axes[1]
        label = text(f"indicator.{level.name}", **level.args)
        drawn = ax.axhline(
            level.value,
            color=LEVEL_COLORS.get(level.name, "#666666"),
            linewidth=0.9,
            linestyle=":" if level.pane == "price" else "--",
            label=label if level.name not in labelled else "_nolegend_",
        )
        drawn.set_gid(f"level:{level.name}")
        labelled.add(level.name)

    fills = result.fills
    trips = _round_trips(fills)
    shown = _shown_trips(trips)
    flat_levels = {_level_key(level) for level in view.levels}
    _draw_position_levels(price_ax, strategy, candles, shown, params, flat_levels, text, x)
    _draw_fills(price_ax, shown, text, x)
    if shown is not trips:
        sells = sum(1 for trip in shown for fill in trip if fill.side == "sell")
        price_ax.text(
            0.01, 0.03, text("chart.backtest.thinned", shown=sells, total=summary.trade_count),
            transform=price_ax.transAxes, fontsize=10, gid="thinned",
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8},
        )  # fmt: skip
    price_ax.set_ylabel(text("chart.axis.price", symbol=spec.symbol), fontsize=11)
    price_ax.legend(loc="upper left", fontsize=9, ncols=2, framealpha=0.85)
    if oscillator:
        axes[1].set_gid("pane:oscillator")
        if all(o.name == "rsi" for o in oscillator):
            axes[1].set_ylim(0, 100)
        axes[1].legend(loc="upper left", fontsize=9, ncols=3, framealpha=0.85)

    capital = float(result.capital)
    equity = np.asarray(result.equity, dtype=np.float64)
    (drawn,) = equity_ax.plot(
        *envelope(x, equity), color=EQUITY_COLOR, linewidth=1.1, label=text("chart.legend.equity")
    )
    drawn.set_gid("equity")
    hold = capital * close / float(candles.open[0])
    (drawn,) = equity_ax.plot(
        *envelope(x, hold),
        color=HOLD_COLOR,
        linewidth=0.9,
        linestyle="--",
        label=text("chart.legend.buy_and_hold"),
    )
    drawn.set_gid("buy_and_hold")
    equity_ax.axhline(capital, color=HOLD_COLOR, linewidth=0.6)
    equity_ax.set_ylabel(text("chart.axis.equity"), fontsize=11)
    equity_ax.legend(loc="upper left", fontsize=9, framealpha=0.85)

    # Signed, as the text says it: a drawdown of 12 % reads -12 %.
    drawdown = (equity / np.maximum.accumulate(equity) - 1.0) * 100.0
    dx, dy = envelope(x, drawdown)
    drawdown_ax.fill_between(dx, dy, 0.0, color=DRAWDOWN_COLOR, alpha=0.25, linewidth=0)
    (drawn,) = drawdown_ax.plot(dx, dy, color=DRAWDOWN_COLOR, linewidth=0.8)
    drawn.set_gid("drawdown")
    drawdown_ax.set_ylabel(text("chart.axis.drawdown"), fontsize=11)
    drawdown_ax.set_xlim(x[0], x[-1])
    return figure


def render_chart(
    candles: Candles, result: BacktestResult, summary: BacktestSummary, text: ChartText
) -> bytes:
    """The backtest chart as a PNG (1280 x 900)."""
    return _png(backtest_figure(candles, result, summary, text))


class EquityStep(Protocol):
    """From ``at`` on (until the next step), the equity was ``value``."""

    @property
    def at(self) -> datetime: ...

    @property
    def value(self) -> Decimal: ...


def equity_figure(
    steps: Sequence[EquityStep],
    trades: Sequence[TradeMark],
    *,
    title: str,
    text: ChartText,
) -> Figure:
    """A bot's equity as a step line (it changes when a trade closes), closed trades marked
    (green won, red lost); with no trade, the flat line says so.
    """
    figure, (ax,) = _figure([1])
    ax.set_gid("pane:equity")
    x = np.asarray([_day_of(s.at) for s in steps], dtype=np.float64)
    y = np.asarray([float(s.value) for s in steps], dtype=np.float64)
    (line,) = ax.plot(
        x, y, drawstyle="steps-post", color=EQUITY_COLOR, linewidth=1.6,
        label=text("chart.legend.equity"),
    )  # fmt: skip
    line.set_gid("equity")
    marks = list(trades)[-MAX_MARKERS:]
    if marks:
        when = np.asarray([_day_of(m.time) for m in marks], dtype=np.float64)
        # A trade sits on the step its close made.
        at = np.searchsorted(x, when, side="right") - 1
        on_curve = y[np.clip(at, 0, y.shape[0] - 1)]
        won = np.asarray([m.pnl > 0 for m in marks])
        for mask, color, key in ((won, BUY_COLOR, "won"), (~won, SELL_COLOR, "lost")):
            if mask.any():
                dots = ax.scatter(
                    when[mask], on_curve[mask], marker="o", s=45, color=color, zorder=3,
                    label=text(f"chart.legend.{key}"),
                )  # fmt: skip
                dots.set_gid(key)
    else:
        ax.text(
            0.5, 0.55, text("chart.no_trade_yet"), transform=ax.transAxes, ha="center",
            fontsize=14, color="#57606a", gid="no_trade_yet",
        )  # fmt: skip
    ax.set_title(title, fontsize=14)
    ax.set_ylabel(text("chart.axis.equity"), fontsize=11)
    ax.legend(loc="upper left", fontsize=10)
    if x.shape[0] and x[-1] > x[0]:
        ax.set_xlim(x[0], x[-1])
    return figure


def render_equity_chart(
    steps: Sequence[EquityStep],
    trades: Sequence[TradeMark],
    *,
    title: str,
    text: ChartText,
) -> bytes:
    """A bot's equity chart as a PNG (1280 x 900)."""
    return _png(equity_figure(steps, trades, title=title, text=text))
