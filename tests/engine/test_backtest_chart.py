"""Backtest charts read off the matplotlib figure: title, indicators, fills, drawdown, dates."""

from __future__ import annotations

import itertools
import struct
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import Collection, LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text

from engine.backtest import BacktestResult, run_backtest
from engine.backtest.chart import (
    MAX_MARKERS,
    MAX_POINTS,
    TradeMark,
    backtest_figure,
    envelope,
    equity_figure,
    render_chart,
    render_equity_chart,
)
from engine.backtest.chart_text import ChartText
from engine.backtest.summary import BacktestSummary, Source
from engine.market_data.replay import ReplayFeed
from engine.risk import RiskSettings
from engine.strategies.base import Candles
from engine.strategies.indicators import sma
from engine.strategies.registry import get_strategy
from robotrader.formatting import percent
from robotrader.i18n import chart_text, translate
from robotrader.use_cases.backtests import backtest_spec
from robotrader.use_cases.equity import EquityPoint

DAY = 86_400_000
T0 = 1_735_689_600_000  # 2025-01-01T00:00Z
EN, PT = chart_text("en"), chart_text("pt-BR")


@cache
def _run(
    strategy: str, timeframe: str = "15m", days: int = 7, risk: RiskSettings | None = None
) -> tuple[Candles, BacktestResult, BacktestSummary]:
    end = T0 + days * DAY
    candles = ReplayFeed().history("BTC/USDT", timeframe, T0, end)
    # A grid around where the (synthetic) price is, as /newbot suggests one.
    first = float(candles.close[0])
    parameters = {"lower": first * 0.9, "upper": first * 1.1} if strategy == "grid" else None
    spec = backtest_spec(
        strategy, "BTC/USDT", days, timeframe=timeframe, end_ms=end, parameters=parameters
    )
    result = run_backtest(
        candles, get_strategy(strategy), spec.parameters, capital=spec.capital,
        risk=risk or RiskSettings(),
    )  # fmt: skip
    return candles, result, BacktestSummary.of(spec, result, "exchange", candles)


def _figure(
    strategy: str,
    timeframe: str = "15m",
    days: int = 7,
    *,
    text: ChartText = EN,
    source: Source = "exchange",
    risk: RiskSettings | None = None,
) -> tuple[Figure, BacktestResult, BacktestSummary]:
    candles, result, summary = _run(strategy, timeframe, days, risk)
    if source != summary.source:
        summary = BacktestSummary.of(summary.spec, result, source, candles)
    return backtest_figure(candles, result, summary, text), result, summary


def _pane(figure: Figure, name: str) -> Axes:
    [ax] = [ax for ax in figure.axes if ax.get_gid() == f"pane:{name}"]
    return ax


def _lines(ax: Axes, gid: str) -> list[Line2D]:
    return [line for line in ax.get_lines() if line.get_gid() == gid]


def _markers(figure: Figure, side: str) -> int:
    ax = _pane(figure, "price")
    return sum(
        len(c.get_offsets())
        for c in ax.collections
        if (c.get_gid() or "").startswith(f"fills:{side}:")
    )


def _texts(figure: Figure) -> list[str]:
    return [t.get_text() for t in figure.findobj(Text) if t.get_text()]


@pytest.mark.parametrize("strategy", ["rsi", "sma_crossover", "grid", "dca"])
def test_the_title_names_the_pair_timeframe_period_strategy_and_parameters(strategy: str) -> None:
    figure, result, _ = _figure(strategy)
    title = figure.get_suptitle().replace("\n", " ")
    assert "BTC/USDT 15m" in title and "binance" in title
    assert translate("en", f"strategy.{strategy}.title") in title
    assert "Jan 1, 2025" in title and "Jan 7, 2025" in title
    for name, value in result.params.items():
        assert f"{name}={value}" in title


@pytest.mark.parametrize("strategy", ["rsi", "sma_crossover", "grid", "dca"])
def test_every_buy_and_sell_is_marked(strategy: str) -> None:
    figure, result, summary = _figure(strategy)
    assert result.trade_count > 0
    assert _markers(figure, "sell") == summary.trade_count
    assert _markers(figure, "buy") == sum(1 for f in result.fills if f.side == "buy")
    assert not [t for t in figure.findobj(Text) if t.get_gid() == "thinned"]


def test_a_stop_loss_exit_is_marked_apart_from_signal_exits() -> None:
    figure, result, _ = _figure("sma_crossover", risk=RiskSettings(stop_loss_pct=Decimal("0.3")))
    reasons = {f.reason for f in result.fills if f.side == "sell"}
    assert {"stop_loss", "exit"} <= reasons
    ax = _pane(figure, "price")
    styles = {
        c.get_gid(): c for c in ax.collections if (c.get_gid() or "").startswith("fills:sell")
    }
    stop, exit_ = styles["fills:sell:stop_loss"], styles["fills:sell:exit"]
    assert tuple(stop.get_facecolor()[0]) != tuple(exit_.get_facecolor()[0])
    labels = ax.get_legend_handles_labels()[1]
    assert "sell: stop loss" in labels and "sell: exit signal" in labels


def test_rsi_has_its_own_pane_with_its_two_thresholds() -> None:
    figure, result, _ = _figure("rsi")
    oscillator = _pane(figure, "oscillator")
    [line] = _lines(oscillator, "indicator:rsi")
    assert line.get_label() == f"RSI {result.params['period']}"
    [oversold] = _lines(oscillator, "level:oversold")
    [overbought] = _lines(oscillator, "level:overbought")
    assert set(oversold.get_ydata()) == {result.params["oversold"]}  # type: ignore[arg-type]
    assert set(overbought.get_ydata()) == {result.params["overbought"]}  # type: ignore[arg-type]
    assert oscillator.get_ylim() == (0, 100)
    assert not _lines(_pane(figure, "price"), "indicator:rsi")


def test_sma_crossover_draws_both_averages_on_the_price() -> None:
    figure, result, _ = _figure("sma_crossover")
    candles = _run("sma_crossover")[0]
    assert len(candles) <= MAX_POINTS  # drawn as they are, no envelope
    price = _pane(figure, "price")
    assert not [ax for ax in figure.axes if ax.get_gid() == "pane:oscillator"]
    for name, param in (("sma_fast", "fast"), ("sma_slow", "slow")):
        [line] = _lines(price, f"indicator:{name}")
        expected = sma(candles.close, int(result.params[param]))
        np.testing.assert_array_equal(np.asarray(line.get_ydata(), dtype=np.float64), expected)
    labels = price.get_legend_handles_labels()[1]
    assert "fast SMA 9" in labels and "slow SMA 21" in labels


def test_grid_lines_are_horizontal_levels() -> None:
    figure, result, _ = _figure("grid")
    lines = _lines(_pane(figure, "price"), "level:grid_line")
    assert len(lines) == int(result.params["levels"])
    values = sorted(float(line.get_ydata()[0]) for line in lines)  # type: ignore[index]
    assert values[0] == pytest.approx(float(result.params["lower"]))
    assert values[-1] == pytest.approx(float(result.params["upper"]))


def test_dca_levels_follow_each_position_while_it_is_held() -> None:
    figure, result, _ = _figure("dca")
    price = _pane(figure, "price")
    [target] = [c for c in price.collections if c.get_gid() == "position_level:take_profit_price"]
    [safety] = [c for c in price.collections if c.get_gid() == "position_level:safety"]
    assert isinstance(target, LineCollection) and isinstance(safety, LineCollection)
    # The first position: its base order alone, so its take profit is exact.
    first = result.fills[0]
    entry = (first.amount * first.price + first.fee) / first.amount
    take_profit = float(entry) * (1 + float(result.params["take_profit_pct"]) / 100)
    start = T0 / DAY + first.index * 15 / 1440
    segment = target.get_segments()[0]
    assert segment[0][0] == pytest.approx(start) and segment[0][1] == pytest.approx(take_profit)
    assert segment[1][1] == pytest.approx(take_profit)
    # No level is drawn where the bot held nothing.
    held = [(s[0][0], s[1][0]) for s in target.get_segments()]
    for (_, end), (begin, _) in itertools.pairwise(held):
        assert end <= begin + 1e-9


def test_the_drawdown_pane_reaches_the_summarys_max_drawdown_signed() -> None:
    for strategy in ("rsi", "sma_crossover", "grid", "dca"):
        figure, _, summary = _figure(strategy)
        [line] = _lines(_pane(figure, "drawdown"), "drawdown")
        lowest = float(np.min(np.asarray(line.get_ydata(), dtype=np.float64)))
        assert lowest == pytest.approx(-float(summary.max_drawdown_pct), abs=1e-4)
        assert lowest < 0


@pytest.mark.parametrize(("language", "text"), [("en", EN), ("pt-BR", PT)])
def test_a_loss_reads_with_the_same_sign_on_the_chart_as_in_the_text(
    language: str, text: ChartText
) -> None:
    figure, _, summary = _figure("sma_crossover", "1m", 7, text=text)
    assert summary.total_pnl_pct < 0  # a losing week
    figures = _pane(figure, "price").get_title(loc="left")
    assert percent(summary.total_pnl_pct, language) in figures  # the chat's own formatting
    assert percent(-summary.max_drawdown_pct, language) in figures
    assert percent(summary.total_pnl_pct, language).startswith("-")
    assert percent(abs(summary.total_pnl_pct), language) not in figures


def test_synthetic_candles_are_marked_and_exchange_candles_are_not() -> None:
    replay, _, _ = _figure("rsi", source="replay")
    [mark] = [t for t in replay.findobj(Text) if t.get_gid() == "synthetic"]
    assert mark.get_text() == translate("en", "chart.backtest.synthetic")
    exchange, _, _ = _figure("rsi", source="exchange")
    assert not [t for t in exchange.findobj(Text) if t.get_gid() == "synthetic"]


@pytest.mark.parametrize("strategy", ["rsi", "sma_crossover", "grid", "dca"])
def test_every_word_comes_from_the_catalog_in_the_readers_language(strategy: str) -> None:
    figure, _, _ = _figure(strategy, text=PT, source="replay")
    texts = _texts(figure) + _pane(figure, "price").get_legend_handles_labels()[1]
    assert not [t for t in texts if t.startswith(("chart.", "indicator.", "reason.", "strategy."))]
    assert translate("pt-BR", "chart.legend.buy_and_hold") in _texts(figure)
    assert translate("pt-BR", "chart.backtest.synthetic") in _texts(figure)


def _tick_labels_do_not_overlap(figure: Figure) -> int:
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    bottom = figure.axes[-1]
    labels = [t for t in bottom.get_xticklabels() if t.get_visible() and t.get_text()]
    boxes = [t.get_window_extent(renderer) for t in labels]
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (a, b)
    inside = figure.bbox
    assert all(box.x0 >= inside.x0 and box.x1 <= inside.x1 for box in boxes)
    return len(labels)


@pytest.mark.parametrize(("timeframe", "days"), [("1m", 1), ("15m", 7), ("4h", 365)])
def test_date_labels_never_overlap(timeframe: str, days: int) -> None:
    figure, _, _ = _figure("sma_crossover", timeframe, days)
    assert _tick_labels_do_not_overlap(figure) >= 3


def test_a_year_of_minutes_shows_some_trades_and_says_how_many() -> None:
    candles, result, summary = _run("sma_crossover", "1m", 365)
    figure = backtest_figure(candles, result, summary, EN)
    assert len(result.fills) > MAX_MARKERS
    shown = _markers(figure, "sell")
    assert 0 < shown < summary.trade_count
    assert _markers(figure, "buy") + shown <= MAX_MARKERS
    [note] = [t for t in figure.findobj(Text) if t.get_gid() == "thinned"]
    assert note.get_text() == f"Showing {shown} of {summary.trade_count} trades"
    # Every line is drawn with at most a min and a max per pixel column.
    for line in figure.findobj(Line2D):
        assert len(np.atleast_1d(line.get_xdata())) <= MAX_POINTS
    assert _tick_labels_do_not_overlap(figure) >= 3


def test_the_envelope_keeps_every_spike_in_time_order() -> None:
    rng = np.random.default_rng(7)
    y = rng.normal(100.0, 1.0, 100_003)
    y[12_345], y[54_321] = 1_000.0, -1_000.0
    y[:50] = np.nan  # an indicator's warm-up
    x = np.arange(y.shape[0], dtype=np.float64)
    ex, ey = envelope(x, y)
    assert len(ex) <= MAX_POINTS
    assert np.nanmax(ey) == 1_000.0 and np.nanmin(ey) == -1_000.0
    assert np.all(np.diff(ex) >= 0)
    np.testing.assert_array_equal(ey, y[ex.astype(np.int64)])
    small = np.arange(10, dtype=np.float64)
    assert envelope(small, small)[1] is small


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_charts_are_telegram_sized_pngs() -> None:
    candles, result, summary = _run("rsi")
    assert _png_size(render_chart(candles, result, summary, EN)) == (1280, 900)
    steps = _steps((0, "1000"), (1, "1000"))
    assert _png_size(render_equity_chart(steps, [], title="", text=EN)) == (1280, 900)


def test_missing_words_show_their_key_rather_than_failing() -> None:
    text = ChartText({"chart.legend.buy": "buy: {reason}"})
    assert text("chart.legend.buy", reason="x") == "buy: x"
    assert text("chart.legend.buy") == "buy: {reason}"
    assert text("chart.nothing") == "chart.nothing"
    assert ChartText.from_json(PT.to_json()) == PT


# --- a bot's equity -----------------------------------------------------------------------------

START = datetime(2025, 3, 1, tzinfo=UTC)


def _steps(*values: tuple[int, str]) -> list[EquityPoint]:
    return [EquityPoint(START + timedelta(days=d), Decimal(v)) for d, v in values]


def test_a_bot_without_trades_is_a_flat_line_that_says_so() -> None:
    figure = equity_figure(_steps((0, "1000"), (5, "1000")), [], title="bot", text=EN)
    [line] = _lines(_pane(figure, "equity"), "equity")
    assert line.get_drawstyle() == "steps-post"
    assert list(line.get_ydata()) == [1000.0, 1000.0]  # type: ignore[arg-type]
    [note] = [t for t in figure.findobj(Text) if t.get_gid() == "no_trade_yet"]
    assert note.get_text() == "no trade yet"
    assert _tick_labels_do_not_overlap(figure) >= 3


def test_a_bot_equity_steps_at_each_close_and_marks_won_and_lost() -> None:
    steps = _steps((0, "1000"), (2, "1019.5"), (3, "1010"), (6, "1010"))
    marks = [
        TradeMark(START + timedelta(days=2), Decimal("19.5")),
        TradeMark(START + timedelta(days=3), Decimal("-9.5")),
    ]
    figure = equity_figure(steps, marks, title="bot", text=PT)
    ax = _pane(figure, "equity")
    [line] = _lines(ax, "equity")
    assert list(line.get_ydata()) == [1000.0, 1019.5, 1010.0, 1010.0]  # type: ignore[arg-type]
    dots: dict[str | None, Collection] = {c.get_gid(): c for c in ax.collections}
    assert [tuple(p) for p in dots["won"].get_offsets()] == [
        (float(line.get_xdata()[1]), 1019.5)  # type: ignore[index]
    ]
    assert [p[1] for p in dots["lost"].get_offsets()] == [1010.0]
    assert ax.get_xlim()[1] == pytest.approx(line.get_xdata()[-1])  # type: ignore[index]
    assert "patrimônio" in ax.get_legend_handles_labels()[1]
