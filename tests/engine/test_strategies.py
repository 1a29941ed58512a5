"""Each strategy's signals on fixed candles, its decisions, its parameters, and no look-ahead."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.strategies.base import Candles, Intent, ParameterError, PositionState, Strategy
from engine.strategies.dca import Dca
from engine.strategies.grid import Grid, grid_lines
from engine.strategies.registry import (
    STRATEGIES,
    UnknownStrategy,
    basic_strategies,
    get_strategy,
)
from engine.strategies.rsi_reversion import RsiReversion
from engine.strategies.signal import WebhookSignal
from engine.strategies.sma_crossover import SmaCrossover
from robotrader.i18n import Translator

FLAT = PositionState()


def holding(entries: int = 1, average_entry: float = 100.0) -> PositionState:
    return PositionState(amount=0.5, average_entry=average_entry, entries=entries)


def candles_of(closes: list[float]) -> Candles:
    close = np.asarray(closes, dtype=np.float64)
    return Candles(
        time=60_000 * np.arange(close.shape[0], dtype=np.int64),
        open=close.copy(),
        high=close.copy(),
        low=close.copy(),
        close=close,
        volume=np.ones_like(close),
    )


def first(candles: Candles, count: int) -> Candles:
    return Candles(
        candles.time[:count],
        candles.open[:count],
        candles.high[:count],
        candles.low[:count],
        candles.close[:count],
        candles.volume[:count],
    )


def signals(strategy: Strategy, closes: list[float], **params: Any) -> list[int]:
    result = strategy.compute(candles_of(closes), strategy.validate(params))
    assert result.dtype == np.int8
    assert result.shape == (len(closes),)
    return [int(v) for v in result]


# --- the registry ----------------------------------------------------------------------


def test_registry_holds_every_strategy_by_its_name() -> None:
    assert list(STRATEGIES) == ["sma_crossover", "rsi", "grid", "dca", "signal"]
    for name, strategy in STRATEGIES.items():
        assert strategy.info.name == name
        assert get_strategy(name) is strategy


def test_unknown_strategy_is_a_key_error_naming_it() -> None:
    with pytest.raises(UnknownStrategy) as raised:
        get_strategy("martingale")
    assert isinstance(raised.value, KeyError)
    assert raised.value.name == "martingale"
    assert "martingale" in str(raised.value)


def test_basic_strategies_are_the_free_plan_ones() -> None:
    assert [s.info.name for s in basic_strategies()] == ["sma_crossover", "rsi"]


# --- declared parameters ---------------------------------------------------------------


@pytest.mark.parametrize("strategy", list(STRATEGIES.values()), ids=list(STRATEGIES))
def test_the_title_and_every_param_help_are_catalog_keys_of_their_own(strategy: Strategy) -> None:
    # The words are in the message catalog (tests/robotrader/test_catalog.py checks each
    # language has them); the engine names them and translates nothing.
    info = strategy.info
    keys = [info.title_key] + [info.help_key(p.name) for p in info.params]
    assert len(set(keys)) == len(keys)
    assert all(key.startswith(f"strategy.{info.name}.") for key in keys)


@pytest.mark.parametrize("strategy", list(STRATEGIES.values()), ids=list(STRATEGIES))
def test_defaults_are_valid_and_within_range(strategy: Strategy) -> None:
    for param in strategy.info.params:
        assert isinstance(param.default, param.kind), param.name
        assert param.minimum <= param.default <= param.maximum, param.name
    assert strategy.validate({}) == strategy.defaults()
    assert strategy.warmup(strategy.defaults()) >= 1


def test_the_documented_defaults() -> None:
    assert SmaCrossover().defaults() == {"fast": 9, "slow": 21}
    assert RsiReversion().defaults() == {"period": 14, "oversold": 30.0, "overbought": 70.0}
    assert Grid().defaults() == {"lower": 80_000.0, "upper": 100_000.0, "levels": 10}
    assert Dca().defaults() == {
        "base_order_pct": 20.0,
        "safety_orders": 4,
        "safety_step_pct": 2.0,
        "take_profit_pct": 1.5,
    }
    assert WebhookSignal().defaults() == {}


@pytest.mark.parametrize(
    ("strategy", "params", "message"),
    [
        (SmaCrossover(), {"fast": 21, "slow": 21}, "fast must be smaller than slow"),
        (SmaCrossover(), {"fast": 30}, "fast must be smaller than slow"),
        (SmaCrossover(), {"fast": 1}, "fast must be between 2 and 100"),
        (SmaCrossover(), {"slow": 500}, "slow must be between 3 and 200"),
        (SmaCrossover(), {"slow": "abc"}, "slow must be a number"),
        (SmaCrossover(), {"speed": 3}, "this strategy has no speed (it has: fast, slow)"),
        (RsiReversion(), {"oversold": 50, "overbought": 50}, "oversold must be smaller"),
        (RsiReversion(), {"period": 1}, "period must be between 2 and 50"),
        (RsiReversion(), {"overbought": 100}, "overbought must be between 50.0 and 99.0"),
        (RsiReversion(), {"oversold": float("nan")}, "oversold must be a number"),
        (Grid(), {"lower": 100, "upper": 90}, "lower must be smaller than upper"),
        (Grid(), {"lower": 0}, "lower must be between"),
        (Grid(), {"levels": 1}, "levels must be between 2 and 100"),
        (Grid(), {"levels": 101}, "levels must be between 2 and 100"),
        (Dca(), {"base_order_pct": 0.5}, "base_order_pct must be between 1.0 and 100.0"),
        (Dca(), {"safety_orders": 21}, "safety_orders must be between 0 and 20"),
        (Dca(), {"safety_orders": 10, "safety_step_pct": 10}, "below 100%"),
        (WebhookSignal(), {"anything": 1}, "this strategy has no anything"),
    ],
)
def test_bad_params_are_refused(strategy: Strategy, params: dict[str, Any], message: str) -> None:
    """The engine names the problem; the catalog says it (here in English)."""
    with pytest.raises(ParameterError) as raised:
        strategy.validate(params)
    error = raised.value
    assert message in Translator("en")(f"parameter.{error.problem}", **error.args_)


def test_params_are_converted_to_their_kind() -> None:
    assert SmaCrossover().validate({"fast": "5", "slow": 20.0}) == {"fast": 5, "slow": 20}
    assert Grid().validate({"lower": "1.5", "upper": 3, "levels": 4}) == {
        "lower": 1.5,
        "upper": 3.0,
        "levels": 4,
    }


# --- SMA crossover -----------------------------------------------------------------------


def test_sma_crossover_signals_by_hand() -> None:
    closes = [5.0, 4, 3, 2, 3, 4, 5, 4, 3, 2]
    # SMA(2): -, 4.5, 3.5, 2.5, 2.5, 3.5, 4.5, 4.5, 3.5, 2.5
    # SMA(3): -, -,   4,   3,   2.67, 3,  4,   4.33, 4,  3
    # fast - slow goes - - - + + + - -  from index 2: up at 5, down at 8
    assert signals(SmaCrossover(), closes, fast=2, slow=3) == [0, 0, 0, 0, 0, 1, 0, 0, -1, 0]


def test_sma_crossover_counts_a_touch_then_cross_once() -> None:
    closes = [4.0, 3, 2, 3, 3, 4]
    # SMA(2): -, 3.5, 2.5, 2.5, 3, 3.5;  SMA(3): -, -, 3, 2.67, 2.67, 3.33
    # diff from 2: -0.5, -0.17, +0.33, +0.17 -> one crossing at 4
    assert signals(SmaCrossover(), closes, fast=2, slow=3) == [0, 0, 0, 0, 1, 0]


def test_sma_crossover_warmup_covers_the_first_possible_crossing() -> None:
    assert SmaCrossover().warmup({"fast": 9, "slow": 21}) == 22


def test_sma_crossover_decides() -> None:
    strategy, params = SmaCrossover(), SmaCrossover().defaults()
    assert strategy.decide(1, 100.0, FLAT, params) == Intent("buy", 1.0, "entry")
    assert strategy.decide(1, 100.0, holding(), params) is None
    assert strategy.decide(-1, 100.0, holding(), params) == Intent("sell", 1.0, "exit")
    assert strategy.decide(-1, 100.0, FLAT, params) is None
    assert strategy.decide(0, 100.0, FLAT, params) is None
    assert strategy.decide(0, 100.0, holding(), params) is None


# --- RSI ---------------------------------------------------------------------------------


def test_rsi_signals_by_hand() -> None:
    closes = [10.0, 11, 12, 11, 10, 9, 10, 11, 12, 13, 12, 11]
    # RSI(2) (see test_indicators): -, -, 100, 50, 25, 12.5, 56.25, 78.1, 89.1, 94.5, 47.3, 23.6
    # up through 30 at 6 (12.5 -> 56.25); down through 70 at 3 (100 -> 50) and 10 (94.5 -> 47.3)
    expected = [0, 0, 0, -1, 0, 0, 1, 0, 0, 0, -1, 0]
    assert signals(RsiReversion(), closes, period=2, oversold=30, overbought=70) == expected


def test_rsi_levels_are_crossed_tradingview_style() -> None:
    # Period 2 with changes of 1, so RSI = 100 * average gain. Reaching a level exactly is
    # not a crossing yet; leaving it on the other side is.
    rising = [10.0, 9, 8, 9, 10]  # RSI: -, -, 0, 50, 75
    assert signals(RsiReversion(), rising, period=2, oversold=50, overbought=90) == [0, 0, 0, 0, 1]
    assert signals(RsiReversion(), rising, period=2, oversold=49, overbought=90) == [0, 0, 0, 1, 0]
    falling = [8.0, 9, 10, 9, 8]  # RSI: -, -, 100, 50, 25
    assert signals(RsiReversion(), falling, period=2, oversold=10, overbought=50) == [
        0, 0, 0, 0, -1,
    ]  # fmt: skip
    assert signals(RsiReversion(), falling, period=2, oversold=10, overbought=51) == [
        0, 0, 0, -1, 0,
    ]  # fmt: skip


def test_rsi_decides_like_sma() -> None:
    strategy, params = RsiReversion(), RsiReversion().defaults()
    assert strategy.decide(1, 50.0, FLAT, params) == Intent("buy", 1.0, "entry")
    assert strategy.decide(-1, 50.0, holding(), params) == Intent("sell", 1.0, "exit")
    assert strategy.decide(1, 50.0, holding(), params) is None
    assert strategy.decide(-1, 50.0, FLAT, params) is None


def test_rsi_warmup_allows_the_smoothing_to_converge() -> None:
    assert RsiReversion().warmup({"period": 14, "oversold": 30, "overbought": 70}) == 114


# --- grid --------------------------------------------------------------------------------


def test_grid_lines() -> None:
    assert grid_lines({"lower": 100.0, "upper": 110.0, "levels": 3}).tolist() == [100, 105, 110]


def test_grid_signals_by_hand() -> None:
    # Lines 100, 105, 110. Lines at or below each close: 2 1 2 0 0 1 3 3 2 2 1 2
    closes = [107.0, 104, 106, 99, 95, 101, 111, 120, 108, 105, 104.9, 105]
    expected = [0, 1, -1, 2, 0, -1, -2, 0, 1, 0, 1, -1]
    assert signals(Grid(), closes, lower=100, upper=110, levels=3) == expected


def test_grid_is_silent_while_price_stays_outside() -> None:
    closes = [90.0, 80, 95, 85, 120, 130, 115]  # all outside 100..110, except the jumps across
    result = signals(Grid(), closes, lower=100, upper=110, levels=3)
    assert result == [0, 0, 0, 0, -3, 0, 0]  # only the jump over the whole grid crosses lines


def test_grid_breaking_out_acts_once_on_the_edge_line() -> None:
    strategy = Grid()
    params = strategy.validate({"lower": 100, "upper": 110, "levels": 2})
    closes = [101.0, 99, 95, 90, 102, 111, 130]
    assert signals(strategy, closes, lower=100, upper=110, levels=2) == [0, 1, 0, 0, -1, -1, 0]
    assert strategy.decide(1, 99.0, FLAT, params) == Intent("buy", 0.5, "grid_buy")
    assert strategy.decide(0, 95.0, holding(1), params) is None  # further down: nothing new
    assert strategy.decide(-1, 111.0, holding(1), params) == Intent("sell", 1.0, "grid_sell")


def test_grid_steps_balance() -> None:
    closes = np.random.default_rng(9).uniform(90, 120, 1_000).tolist()
    result = np.array(signals(Grid(), closes, lower=100, upper=110, levels=5))
    lines = np.array([100, 102.5, 105, 107.5, 110])
    below = np.searchsorted(lines, closes, side="right")
    assert result.sum() == below[0] - below[-1]


def test_grid_decides() -> None:
    strategy = Grid()
    params = strategy.validate({"lower": 100, "upper": 110, "levels": 4})
    assert strategy.decide(1, 104.0, FLAT, params) == Intent("buy", 0.25, "grid_buy")
    assert strategy.decide(2, 104.0, holding(entries=3), params) == Intent("buy", 0.25, "grid_buy")
    assert strategy.decide(1, 104.0, holding(entries=4), params) is None  # grid fully bought
    assert strategy.decide(-1, 106.0, holding(entries=4), params) == Intent(
        "sell", 0.25, "grid_sell"
    )
    assert strategy.decide(-1, 106.0, holding(entries=0), params) == Intent(
        "sell", 1.0, "grid_sell"
    )
    assert strategy.decide(-1, 106.0, FLAT, params) is None
    assert strategy.decide(0, 104.0, holding(), params) is None


# --- DCA ---------------------------------------------------------------------------------


def test_dca_compute_is_all_zero() -> None:
    assert signals(Dca(), [100.0, 90, 80, 120]) == [0, 0, 0, 0]


def test_dca_decides() -> None:
    strategy, params = Dca(), Dca().defaults()  # base 20 %, 4 safety orders, 2 % step, TP 1.5 %
    assert strategy.decide(0, 100.0, FLAT, params) == Intent("buy", 0.2, "base")
    safety = Intent("buy", (1 - 0.2) / 4, "safety")
    # one entry: next safety at 2 % under the average
    assert strategy.decide(0, 98.01, holding(1), params) is None
    assert strategy.decide(0, 98.0, holding(1), params) == safety
    # three entries: 6 % under the average
    assert strategy.decide(0, 94.5, holding(3), params) is None
    assert strategy.decide(0, 94.0, holding(3), params) == safety
    # the fourth safety order is the last one (base + 4 = 5 entries)
    assert strategy.decide(0, 90.0, holding(4), params) == safety
    assert strategy.decide(0, 50.0, holding(5), params) is None
    # take profit on the average, whatever the entries
    assert strategy.decide(0, 101.49, holding(2), params) is None
    assert strategy.decide(0, 101.5, holding(2), params) == Intent("sell", 1.0, "take_profit")
    assert strategy.decide(0, 130.0, holding(5), params) == Intent("sell", 1.0, "take_profit")


def test_dca_spends_exactly_the_allocation() -> None:
    strategy = Dca()
    params = strategy.validate({"base_order_pct": 40, "safety_orders": 3})
    fractions = [strategy.decide(0, 100.0, FLAT, params)]
    for entries in (1, 2, 3):
        fractions.append(strategy.decide(0, 1.0, holding(entries), params))
    assert sum(intent.fraction for intent in fractions if intent) == pytest.approx(1.0)


def test_dca_without_safety_orders_only_takes_profit() -> None:
    params = Dca().validate({"safety_orders": 0})
    assert Dca().decide(0, 50.0, holding(1), params) is None
    assert Dca().decide(0, 200.0, holding(1), params) == Intent("sell", 1.0, "take_profit")


# --- webhook signals -------------------------------------------------------------------


def test_signal_compute_is_all_zero() -> None:
    assert signals(WebhookSignal(), [1.0, 2.0, 3.0]) == [0, 0, 0]


def test_signal_decides() -> None:
    strategy = WebhookSignal()
    assert strategy.decide(1, 10.0, FLAT, {}) == Intent("buy", 1.0, "signal_buy")
    assert strategy.decide(1, 10.0, holding(), {}) is None
    assert strategy.decide(-1, 10.0, holding(), {}) == Intent("sell", 1.0, "signal_sell")
    assert strategy.decide(-2, 10.0, holding(), {}) == Intent("sell", 1.0, "signal_close")
    assert strategy.decide(-1, 10.0, FLAT, {}) is None
    assert strategy.decide(-2, 10.0, FLAT, {}) is None
    assert strategy.decide(0, 10.0, holding(), {}) is None
    assert strategy.decide(3, 10.0, FLAT, {}) is None


# --- properties over random candles ----------------------------------------------------

# Prices from a small set produce exact ties (equal SMAs, closes on grid lines).
prices = st.one_of(
    st.floats(min_value=1.0, max_value=1_000.0, allow_nan=False),
    st.sampled_from([100.0, 105.0, 110.0, 200.0]),
)
closes_lists = st.lists(prices, min_size=0, max_size=120)


@st.composite
def strategy_and_params(draw: st.DrawFn) -> tuple[Strategy, dict[str, Any]]:
    name = draw(st.sampled_from(list(STRATEGIES)))
    strategy = get_strategy(name)
    if name == "sma_crossover":
        fast = draw(st.integers(2, 10))
        raw: dict[str, Any] = {"fast": fast, "slow": draw(st.integers(fast + 1, 20))}
    elif name == "rsi":
        raw = {
            "period": draw(st.integers(2, 20)),
            "oversold": draw(st.floats(10, 45)),
            "overbought": draw(st.floats(55, 90)),
        }
    elif name == "grid":
        lower = draw(st.floats(1, 500))
        raw = {
            "lower": lower,
            "upper": lower + draw(st.floats(1, 500)),
            "levels": draw(st.integers(2, 100)),
        }
    else:
        raw = {}
    return strategy, strategy.validate(raw)


@settings(max_examples=300, deadline=None)
@given(strategy_and_params(), closes_lists, st.integers(0, 120))
def test_truncating_candles_never_changes_earlier_signals(
    chosen: tuple[Strategy, dict[str, Any]], closes: list[float], cut: int
) -> None:
    strategy, params = chosen
    candles = candles_of(closes)
    cut = min(cut, len(closes))
    full = strategy.compute(candles, params)
    truncated = strategy.compute(first(candles, cut), params)
    assert full.dtype == truncated.dtype == np.int8
    assert full.shape == (len(closes),) and truncated.shape == (cut,)
    assert np.array_equal(full[:cut], truncated)


@settings(max_examples=100, deadline=None)
@given(closes_lists, st.integers(2, 10), st.integers(1, 10))
def test_sma_crossover_needs_only_its_warmup(closes: list[float], fast: int, extra: int) -> None:
    # The tick computes on the latest candles only: past the warm-up it must agree with
    # a computation over all history.
    strategy = SmaCrossover()
    params = strategy.validate({"fast": fast, "slow": fast + extra})
    candles = candles_of(closes)
    window = strategy.warmup(params)
    if len(candles) < window:
        return
    full = strategy.compute(candles, params)
    recent = strategy.compute(candles.tail(window), params)
    assert full[-1] == recent[-1]


@settings(max_examples=100, deadline=None)
@given(strategy_and_params(), st.integers(-3, 3), st.floats(1, 1_000), st.integers(0, 30))
def test_decide_returns_sane_intents(
    chosen: tuple[Strategy, dict[str, Any]], signal: int, price: float, entries: int
) -> None:
    strategy, params = chosen
    for position in (FLAT, PositionState(1.0, 500.0, entries)):
        intent = strategy.decide(signal, price, position, params)
        if intent is None:
            continue
        assert 0 < intent.fraction <= 1
        assert intent.reason
        if intent.side == "sell":
            assert position.is_open  # never sells what it does not hold


# The backtester tabulates decide() once per signal value for these (flat and holding), so
# nothing else may change their answer: not the price, the amount, the entry or entries.
TABULATED = sorted(n for n, s in STRATEGIES.items() if s.decides_on_signal_and_holding)


def test_the_tabulated_strategies_are_the_ones_deciding_on_events() -> None:
    assert TABULATED == ["rsi", "signal", "sma_crossover"]


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(TABULATED),
    st.integers(-128, 127),
    st.floats(1e-8, 1e7, allow_nan=False),
    st.floats(1e-8, 1e4, allow_nan=False),
    st.floats(1e-8, 1e7, allow_nan=False),
    st.integers(0, 50),
)
def test_tabulated_strategies_decide_on_the_signal_and_holding_alone(
    name: str, signal: int, price: float, amount: float, average_entry: float, entries: int
) -> None:
    strategy = get_strategy(name)
    params = strategy.defaults()
    assert strategy.decide(signal, price, FLAT, params) == strategy.decide(
        signal, 1.0, FLAT, params
    )
    assert strategy.decide(
        signal, price, PositionState(amount, average_entry, entries), params
    ) == strategy.decide(signal, 1.0, PositionState(1.0, 1.0, 1), params)
