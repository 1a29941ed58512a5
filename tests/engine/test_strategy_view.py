"""What a strategy shows it decides on (``Strategy.view``) is what it decides with."""

from __future__ import annotations

import numpy as np
import pytest

from engine.strategies.base import Candles, PositionState
from engine.strategies.indicators import crossover, crossunder, rsi, sma
from engine.strategies.registry import STRATEGIES, get_strategy


def _candles(n: int = 400, seed: int = 7) -> Candles:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    time = np.arange(n, dtype=np.int64) * 60_000
    return Candles(time, close, close * 1.01, close * 0.99, close, np.ones(n))


def test_rsi_view_is_the_line_and_thresholds_its_signals_come_from() -> None:
    strategy = get_strategy("rsi")
    params = strategy.validate({"period": 7, "oversold": 25, "overbought": 75})
    candles = _candles()
    view = strategy.view(candles, params)
    (line,) = view.lines
    assert line.pane == "oscillator" and dict(line.args) == {"period": 7}
    np.testing.assert_array_equal(line.values, rsi(candles.close, 7))
    levels = {level.name: level.value for level in view.levels}
    assert levels == {"oversold": 25.0, "overbought": 75.0}
    signal = strategy.compute(candles, params)
    assert (signal == 1).sum() == crossover(line.values, levels["oversold"]).sum() > 0
    assert (signal == -1).sum() == crossunder(line.values, levels["overbought"]).sum() > 0


def test_sma_view_lines_cross_where_the_signals_are() -> None:
    strategy = get_strategy("sma_crossover")
    params = strategy.validate({"fast": 5, "slow": 20})
    candles = _candles()
    fast, slow = strategy.view(candles, params).lines
    assert (fast.name, fast.args["period"], slow.name, slow.args["period"]) == (
        "sma_fast", 5, "sma_slow", 20,
    )  # fmt: skip
    np.testing.assert_array_equal(fast.values, sma(candles.close, 5))
    signal = strategy.compute(candles, params)
    np.testing.assert_array_equal(signal == 1, crossover(fast.values, slow.values))


def test_grid_view_is_its_lines() -> None:
    strategy = get_strategy("grid")
    params = strategy.validate({"lower": 90, "upper": 110, "levels": 5})
    view = strategy.view(_candles(), params)
    assert [level.value for level in view.levels] == [90.0, 95.0, 100.0, 105.0, 110.0]
    assert not view.lines


def test_dca_view_prices_are_where_decide_acts() -> None:
    strategy = get_strategy("dca")
    params = strategy.validate({"safety_orders": 3, "safety_step_pct": 2, "take_profit_pct": 1.5})
    assert not strategy.view(_candles(), params).levels  # flat: it buys at the next candle
    holding = PositionState(amount=1.0, average_entry=100.0, entries=2)
    levels = strategy.view(_candles(), params, holding).levels
    safety = [level for level in levels if level.name == "safety"]
    assert [level.args["number"] for level in safety] == [2, 3]
    (take_profit,) = [level for level in levels if level.name == "take_profit_price"]
    next_safety = safety[0].value
    assert strategy.decide(0, next_safety, holding, params) is not None
    assert strategy.decide(0, next_safety * 1.0001, holding, params) is None
    assert strategy.decide(0, take_profit.value, holding, params).reason == "take_profit"
    assert strategy.decide(0, take_profit.value * 0.9999, holding, params) is None


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_view_is_over_the_candles_it_was_given(name: str) -> None:
    strategy = get_strategy(name)
    candles = _candles(120)
    view = strategy.view(candles, strategy.defaults())
    for line in view.lines:
        assert line.values.shape == (len(candles),)
    for level in view.levels:
        assert np.isfinite(level.value)
