"""The parameter search: its grid, the in-sample / out-of-sample split, ranking, overfitting."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from engine.backtest import run_backtest
from engine.backtest.optimize import (
    Candidate,
    Figures,
    axis,
    optimize,
    overfitting_warnings,
    parameter_grid,
    rank_correlation,
    split_index,
)
from engine.market_data.replay import MarketProfile, synthetic_candles
from engine.risk import RiskSettings
from engine.strategies.base import Candles
from engine.strategies.indicators import rsi, shared_indicators, sma
from engine.strategies.registry import get_strategy

D = Decimal
T0 = 1_735_689_600_000
SMA = get_strategy("sma_crossover")
RSI = get_strategy("rsi")


@pytest.fixture(scope="module")
def candles() -> Candles:
    return synthetic_candles(MarketProfile.of("BTC/USDT"), "1m", T0, 6_000)


def figures(return_pct: str, trades: int = 10, drawdown: str = "5") -> Figures:
    return Figures(D(return_pct), D(drawdown), trades, D(50), D(1000) + D(return_pct) * 10)


def candidate(fast: int, in_pct: str, out_pct: str, trades: int = 10) -> Candidate:
    return Candidate({"fast": fast}, figures(in_pct), figures(out_pct, trades))


# --- the grid ---------------------------------------------------------------------------------


def test_grid_respects_the_strategy_cross_rule_and_the_declared_ranges() -> None:
    grid = parameter_grid(SMA, limit=1000)
    assert grid.sets and not grid.truncated
    assert all(s["fast"] < s["slow"] for s in grid.sets)
    assert {s["fast"] for s in grid.sets} <= set(range(2, 101))
    assert min(s["fast"] for s in grid.sets) == 2 and max(s["slow"] for s in grid.sets) == 200
    assert grid.searched == ("fast", "slow")


def test_window_lengths_are_spaced_geometrically_levels_evenly() -> None:
    fast = SMA.info.params[0]
    assert axis(fast, 2, 100, 5) == [2, 5, 14, 38, 100]
    oversold = RSI.info.params[1]
    assert axis(oversold, 10.0, 30.0, 3) == [10.0, 20.0, 30.0]


def test_a_grid_over_the_limit_takes_fewer_values_and_says_it_was_cut() -> None:
    full = parameter_grid(RSI, limit=10_000)
    cut = parameter_grid(RSI, limit=30)
    assert not full.truncated and len(full.sets) == full.full_size
    assert cut.truncated and len(cut.sets) <= 30 and cut.full_size == full.full_size
    assert cut.values < full.values
    # Still spread over the whole range, not the first 30 sets of the big grid.
    assert {s["period"] for s in cut.sets} >= {2, 50}


def test_fixed_parameters_and_narrower_ranges() -> None:
    grid = parameter_grid(SMA, limit=100, fixed={"slow": 30}, ranges={"fast": (5, 20)}, values=4)
    assert [s["fast"] for s in grid.sets] == [5, 10, 15, 20]
    assert {s["slow"] for s in grid.sets} == {30}
    assert grid.searched == ("fast",)


# --- the split and the runs -------------------------------------------------------------------


def test_split_is_seventy_thirty_by_default_and_can_change(candles: Candles) -> None:
    grid = parameter_grid(SMA, limit=4, values=2)
    result = optimize(candles, SMA, grid.sets, capital=D(1000), risk=RiskSettings())
    assert (result.in_sample_candles, result.out_of_sample_candles) == (4200, 1800)
    assert result.split_time == int(candles.time[4200])
    other = optimize(
        candles, SMA, grid.sets, capital=D(1000), risk=RiskSettings(), in_sample_share=0.5
    )
    assert other.split_index == 3000
    with pytest.raises(ValueError):
        split_index(3, 0.7)


def test_each_part_is_the_backtest_of_a_fresh_bot_on_that_part(candles: Candles) -> None:
    params = {"fast": 5, "slow": 20}
    risk = RiskSettings(stop_loss_pct=D(2), take_profit_pct=D(3))
    result = optimize(candles, SMA, [params], capital=D(1000), risk=risk)
    (only,) = result.candidates
    split = result.split_index
    head = Candles(*(getattr(candles, f)[:split] for f in candles.__dataclass_fields__))
    tail = Candles(*(getattr(candles, f)[split:] for f in candles.__dataclass_fields__))
    in_sample = run_backtest(head, SMA, params, capital=D(1000), risk=risk)
    assert only.in_sample == Figures.of(in_sample)
    # Out of sample the indicators are warm from the candles before the split: the signals
    # are the full series', sliced.
    signals = SMA.compute(candles, params)[split:]
    out = run_backtest(tail, SMA, params, capital=D(1000), risk=risk, signals=signals)
    assert only.out_of_sample == Figures.of(out)
    assert only.out_of_sample.trades > 0


def test_sets_are_ranked_by_out_of_sample_return(candles: Candles) -> None:
    grid = parameter_grid(SMA, limit=20, values=5)
    result = optimize(candles, SMA, grid.sets, capital=D(1000), risk=RiskSettings())
    returns = [c.out_of_sample.return_pct for c in result.candidates]
    assert returns == sorted(returns, reverse=True)
    assert len(result.candidates) == len(grid.sets)
    assert result.best is result.candidates[0]
    in_returns = [float(c.in_sample.return_pct) for c in result.candidates]
    assert result.rank_correlation == pytest.approx(
        rank_correlation(in_returns, [float(r) for r in returns])
    )


def test_progress_is_reported_per_set(candles: Candles) -> None:
    seen: list[float] = []
    grid = parameter_grid(SMA, limit=3, values=3)
    optimize(candles, SMA, grid.sets, capital=D(1000), risk=RiskSettings(), progress=seen.append)
    assert seen[0] == 0.0 and seen[-1] == 1.0 and len(seen) == len(grid.sets) + 1


# --- overfitting ------------------------------------------------------------------------------


def test_rank_correlation_is_spearman_with_ties() -> None:
    assert rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # Ranks 1, 2.5, 2.5, 4 and 1, 3, 2, 4: 4.5 / sqrt(4.5 * 5) (scipy's spearmanr agrees).
    assert rank_correlation([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / (4.5 * 5) ** 0.5)
    assert rank_correlation([1, 1, 1], [1, 2, 3]) is None
    assert rank_correlation([1], [2]) is None


def test_best_in_sample_losing_out_of_sample_is_a_warning() -> None:
    ranked = [candidate(1, "5", "4"), candidate(2, "30", "-8"), candidate(3, "2", "-1")]
    warnings, best_in = overfitting_warnings(ranked, None)
    assert "best_in_sample_loses" in warnings
    assert best_in is ranked[1]
    honest = [candidate(1, "30", "4"), candidate(2, "5", "1")]
    assert "best_in_sample_loses" not in overfitting_warnings(honest, None)[0]


def test_low_rank_correlation_is_a_warning_with_enough_sets() -> None:
    ranked = [candidate(i, str(i), str(10 - i)) for i in range(6)]
    correlation = rank_correlation(
        [float(c.in_sample.return_pct) for c in ranked],
        [float(c.out_of_sample.return_pct) for c in ranked],
    )
    assert correlation == pytest.approx(-1.0)
    assert "low_rank_correlation" in overfitting_warnings(ranked, correlation)[0]
    # Too few sets for a correlation to mean anything: no such warning.
    assert "low_rank_correlation" not in overfitting_warnings(ranked[:4], -1.0)[0]
    agreeing = [candidate(i, str(i), str(i)) for i in range(6)]
    assert "low_rank_correlation" not in overfitting_warnings(agreeing, 1.0)[0]


def test_few_out_of_sample_trades_is_a_warning() -> None:
    assert "few_trades" in overfitting_warnings([candidate(1, "5", "4", trades=2)], None)[0]
    assert overfitting_warnings([candidate(1, "5", "4", trades=3)], None)[0] == ()


# --- indicators shared within a search --------------------------------------------------------


def test_shared_indicators_compute_each_period_once_and_agree(candles: Candles) -> None:
    close = candles.close
    alone = sma(close, 20)
    with shared_indicators():
        first = sma(close, 20)
        again = sma(close, 20)
        strength = rsi(close, 14)
        assert again is first and rsi(close, 14) is strength
        assert not first.flags.writeable
        assert sma(close.copy(), 20) is not first  # another series, its own
    np.testing.assert_array_equal(first, alone)
    np.testing.assert_array_equal(strength, rsi(close, 14))
    assert sma(close, 20) is not first  # outside the block nothing is kept
