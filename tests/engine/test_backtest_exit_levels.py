"""A stop loss and a take profit without the decision loop: the loop's run, bit for bit.

With only these two exit rules (judged on closes, selling all), a strategy that
``decides_on_signal_and_holding`` is backtested trade by trade: from each entry the exit
is the first close past a level or the strategy's next sale. These tests hold that walk
to the decision loop (``_simulate``), figure for figure, rejected orders included.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from engine.backtest import run_backtest, runner
from engine.backtest.runner import _simulate_by_table
from engine.exchanges.paper import FEE_RATE, SLIPPAGE
from engine.market_data.replay import ReplayFeed
from engine.risk import RiskSettings, Target
from engine.strategies.base import Intent, Strategy
from engine.strategies.registry import get_strategy
from engine.strategies.sma_crossover import SmaCrossover
from tests.engine.test_backtest import (
    DAY,
    T0,
    Scripted,
    Tabled,
    _setup_and_signals,
    assert_table_is_the_loop,
    candles_of,
    markets,
)

D = Decimal
SL_TP = RiskSettings(stop_loss_pct=D("0.3"), take_profit_pct=D("0.5"))


def test_a_crossover_day_with_a_stop_loss_and_a_take_profit_needs_no_loop() -> None:
    candles = ReplayFeed().history("BTC/USDT", "1m", T0, T0 + DAY)
    params = {"fast": 5, "slow": 13}
    with mock.patch.object(runner, "_simulate", side_effect=AssertionError("the loop ran")):
        result = run_backtest(candles, SmaCrossover(), params, capital=D(1000), risk=SL_TP)
    reasons = {trade.exit_reason for trade in result.trades}
    assert {"stop_loss", "take_profit", "exit"} <= reasons  # all three kinds of sale happen
    stop_only, take_only = (
        RiskSettings(stop_loss_pct=D("0.2")),
        RiskSettings(take_profit_pct=D("1")),
    )
    for risk in (SL_TP, stop_only, take_only):
        assert assert_table_is_the_loop(candles, SmaCrossover(), params, capital=D(1000), risk=risk)


@pytest.mark.parametrize("arm", [None, D("0.1")])
def test_a_trailing_stop_needs_no_loop_either(arm: Decimal | None) -> None:
    candles = ReplayFeed().history("BTC/USDT", "1m", T0, T0 + DAY)
    params = {"fast": 5, "slow": 13}
    risk = RiskSettings(
        stop_loss_pct=D("0.3"), take_profit_pct=D("0.4"), trailing_stop_pct=D("0.1"),
        trailing_arm_pct=arm,
    )  # fmt: skip
    with mock.patch.object(runner, "_simulate", side_effect=AssertionError("the loop ran")):
        result = run_backtest(candles, SmaCrossover(), params, capital=D(1000), risk=risk)
    assert "trailing_stop" in {trade.exit_reason for trade in result.trades}
    assert assert_table_is_the_loop(candles, SmaCrossover(), params, capital=D(1000), risk=risk)


def test_sales_under_the_minimum_are_rejected_on_every_close_past_a_level() -> None:
    # 1.2 USDT buys 0.012 at 100; the price then falls under the stop (0.012 * 60 is under
    # the 1 USDT minimum, so every close there and the strategy's sale are refused) and
    # recovers over the take profit, where the sale goes through.
    closes = [100, 100, 60, 60, 60, 60, 200, 200, 200, 200]
    opens = [100, 100, 60, 60, 60, 60, 60, 200, 200, 200]
    signals = [1, 0, 0, -1, 0, 0, 0, 0, 0, 0]
    candles = candles_of(opens, closes)
    risk = RiskSettings(stop_loss_pct=D(10), take_profit_pct=D(50))
    strategy = Scripted(signals)
    capital, free = D("1.2"), D(0)
    assert assert_table_is_the_loop(
        candles, strategy, {}, capital=capital, risk=risk, fee_rate=free, slippage=free
    )
    result = run_backtest(
        candles, strategy, {}, capital=capital, risk=risk, fee_rate=free, slippage=free
    )
    assert result.rejected_orders == 4  # closes 2, 3 (the stop first), 4 and 5 under the stop
    assert [(t.exit_index, t.exit_reason) for t in result.trades] == [(7, "take_profit")]


@pytest.mark.parametrize(
    "risk",
    [
        RiskSettings(stop_loss_pct=D("0.2"), max_position=D(700)),
        RiskSettings(take_profit_pct=D("0.2"), daily_loss_limit_pct=D("0.5")),
        RiskSettings(targets=(Target(D("0.2"), D(50)),)),
        RiskSettings(trailing_stop_pct=D("0.3"), targets=(Target(D("0.2"), D(50)),)),
    ],
)
def test_other_risk_rules_are_not_this_walk_s(risk: RiskSettings) -> None:
    candles = ReplayFeed().history("BTC/USDT", "1m", T0, T0 + DAY)
    setup, signals, events = _setup_and_signals(
        candles, SmaCrossover(), {"fast": 5, "slow": 13}, D(1000), risk, FEE_RATE, SLIPPAGE
    )
    assert _simulate_by_table(setup, signals, events, None) is None


def test_the_walk_reports_progress_from_zero_to_one() -> None:
    seen: list[float] = []
    candles = ReplayFeed().history("BTC/USDT", "1m", T0, T0 + DAY)
    with mock.patch.object(runner, "_simulate", side_effect=AssertionError("the loop ran")):
        run_backtest(candles, SmaCrossover(), {}, capital=D(1000), risk=SL_TP, progress=seen.append)
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert seen == sorted(seen) and 5 <= len(seen) <= 25


EXIT_LEVELS = (
    st.builds(
        RiskSettings,
        stop_loss_pct=st.sampled_from([None, D("0.5"), D(3), D(100)]),
        take_profit_pct=st.sampled_from([D("0.5"), D(3), D(40)]),
    )
    | st.builds(RiskSettings, stop_loss_pct=st.sampled_from([D("0.5"), D(3)]))
    | st.builds(
        RiskSettings,
        stop_loss_pct=st.sampled_from([None, D("0.5"), D(3)]),
        take_profit_pct=st.sampled_from([None, D("0.5"), D(3)]),
        trailing_stop_pct=st.sampled_from([D("0.2"), D(1), D(100)]),
        trailing_arm_pct=st.sampled_from([None, D(0), D("0.3"), D(2)]),
        breakeven=st.booleans(),  # without targets it never acts
    )
)

INTENTS = [
    None,
    Intent("buy", 1.0, "entry"),
    Intent("buy", 0.25, "quarter"),
    Intent("sell", 1.0, "exit"),
    Intent("sell", 2.0, "all"),
]


@st.composite
def walked_strategies(draw: st.DrawFn, candles: Any) -> tuple[Strategy, dict[str, Any]]:
    kind = draw(st.sampled_from(["sma_crossover", "rsi", "tabled"]))
    if kind == "sma_crossover":
        fast = draw(st.integers(2, 10))
        return SmaCrossover(), {"fast": fast, "slow": draw(st.integers(fast + 1, 25))}
    if kind == "rsi":
        return get_strategy("rsi"), {"period": draw(st.integers(2, 14))}
    # Repeated opening signals make entry windows that overlap: the walk must still follow.
    values = draw(st.lists(st.sampled_from([-2, -1, 1, 2]), min_size=1, max_size=4, unique=True))
    flat = {v: draw(st.sampled_from(INTENTS)) for v in values}
    holding = {v: draw(st.sampled_from(INTENTS)) for v in values}
    signals = draw(
        st.lists(st.sampled_from([0, 0, *values]), min_size=len(candles), max_size=len(candles))
    )
    return Tabled(signals, flat, holding), {}


@settings(max_examples=300, deadline=None)
@given(st.data(), markets(), EXIT_LEVELS)
def test_the_walk_with_exit_levels_is_the_loop_s_run(
    data: st.DataObject, candles: Any, risk: RiskSettings
) -> None:
    strategy, params = data.draw(walked_strategies(candles))
    capital = data.draw(st.sampled_from([D("0.5"), D("1.2"), D(3), D(1000), D("123456.789")]))
    fee_rate = data.draw(st.sampled_from([D(0), FEE_RATE, D("0.0025")]))
    slippage = data.draw(st.sampled_from([D(0), SLIPPAGE, D("0.01")]))
    walked = assert_table_is_the_loop(
        candles, strategy, params, capital=capital, risk=risk, fee_rate=fee_rate,
        slippage=slippage,
    )  # fmt: skip
    event("without the loop" if walked else "through the loop")
    if isinstance(strategy, SmaCrossover):
        assert walked


@pytest.mark.parametrize(
    "risk",
    [
        RiskSettings(stop_loss_pct=D(100), take_profit_pct=D("0.2")),
        RiskSettings(stop_loss_pct=D(150), take_profit_pct=D("0.2")),
        RiskSettings(stop_loss_pct=D("0.2")),
        RiskSettings(take_profit_pct=D("0.2")),
    ],
    ids=["stop 100 %", "stop 150 %", "stop alone", "take profit alone"],
)
def test_any_pair_of_levels_is_walked_as_the_loop_decides(risk: RiskSettings) -> None:
    candles = ReplayFeed().history("BTC/USDT", "1m", T0, T0 + DAY)
    assert assert_table_is_the_loop(
        candles, SmaCrossover(), {"fast": 5, "slow": 13}, capital=D(1000), risk=risk
    )


def test_a_sale_under_the_minimum_is_asked_again_at_every_later_exit() -> None:
    # 1.2 USDT buys 0.012 at 100; at 80 a sale is worth 0.96, under the 1 USDT minimum:
    # the stop loss is rejected at each close past it (the closing setter's close too, where
    # the strategy's sale is then not asked), until the take profit at 120 sells for 1.44.
    closes = [100, 100, 80, 80, 80, 80, 120, 120, 120, 120]
    opens = [100, 100, 100, 80, 80, 80, 80, 120, 120, 120]
    signals = [1, 0, 0, 0, -1, 0, 0, 0, 0, 0]
    risk = RiskSettings(stop_loss_pct=D(10), take_profit_pct=D(10))
    candles, strategy, free = candles_of(opens, closes), Scripted(signals), D(0)
    assert assert_table_is_the_loop(
        candles, strategy, {}, capital=D("1.2"), risk=risk, fee_rate=free, slippage=free
    )
    result = run_backtest(
        candles, strategy, {}, capital=D("1.2"), risk=risk, fee_rate=free, slippage=free
    )
    assert result.rejected_orders == 4
    assert [(fill.index, fill.reason) for fill in result.fills] == [
        (1, "entry"), (7, "take_profit"),
    ]  # fmt: skip


def test_a_close_exactly_on_a_level_fires_it_and_a_hair_above_does_not() -> None:
    # Without fees the average entry is the fill price, 200: the stop of 0.5 % is at 199
    # and the take profit of 0.5 % at 201, exactly; float64 alone cannot tell these apart.
    closes = [200, 200, 199.00000001, 199, 200, 200, 200.99999999, 201, 201, 201]
    opens = [200, 200, 200, 200, 200, 200, 200, 200, 200, 200]
    signals = [1, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    risk = RiskSettings(stop_loss_pct=D("0.5"), take_profit_pct=D("0.5"))
    candles, strategy, free = candles_of(opens, closes), Scripted(signals), D(0)
    assert assert_table_is_the_loop(
        candles, strategy, {}, capital=D(1000), risk=risk, fee_rate=free, slippage=free
    )
    result = run_backtest(
        candles, strategy, {}, capital=D(1000), risk=risk, fee_rate=free, slippage=free
    )
    assert [(t.exit_index - 1, t.exit_reason) for t in result.trades] == [
        (3, "stop_loss"),
        (7, "take_profit"),
    ]
