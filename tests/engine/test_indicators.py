"""Indicators against hand-computed numbers, a published RSI table, and naive reference code."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.strategies.indicators import (
    crossings,
    crossover,
    crossunder,
    rsi,
    shared_indicators,
    sma,
    smas,
)

NAN = math.nan


def naive_sma(values: list[float], period: int) -> list[float]:
    return [
        NAN if i < period - 1 else sum(values[i - period + 1 : i + 1]) / period
        for i in range(len(values))
    ]


def naive_rsi(values: list[float], period: int) -> list[float]:
    """Wilder's RSI written out step by step, the way the textbooks tabulate it."""
    result = [NAN] * len(values)
    if len(values) <= period:
        return result
    gains = [max(values[i] - values[i - 1], 0.0) for i in range(1, len(values))]
    losses = [max(values[i - 1] - values[i], 0.0) for i in range(1, len(values))]
    average_gain = sum(gains[:period]) / period
    average_loss = sum(losses[:period]) / period
    for i in range(period, len(values)):
        if i > period:
            average_gain = (average_gain * (period - 1) + gains[i - 1]) / period
            average_loss = (average_loss * (period - 1) + losses[i - 1]) / period
        if average_loss == 0:
            result[i] = 100.0
        elif average_gain == 0:
            result[i] = 0.0
        else:
            result[i] = 100 - 100 / (1 + average_gain / average_loss)
    return result


def assert_same(actual: np.ndarray, expected: list[float], tolerance: float = 1e-12) -> None:
    assert actual.dtype == np.float64
    assert actual.shape == (len(expected),)
    np.testing.assert_allclose(actual, np.array(expected), rtol=0, atol=tolerance)


# --- SMA -------------------------------------------------------------------------------


def test_sma_by_hand() -> None:
    assert_same(sma(np.array([1.0, 2, 3, 4, 5, 6]), 3), [NAN, NAN, 2, 3, 4, 5])
    assert_same(sma(np.array([2.0, 4, 6, 9]), 2), [NAN, 3, 5, 7.5])
    assert_same(sma(np.array([3.0, 1, 4]), 1), [3, 1, 4])


def test_sma_shorter_than_period_is_all_nan() -> None:
    assert np.isnan(sma(np.array([1.0, 2.0]), 3)).all()
    assert sma(np.array([], dtype=np.float64), 3).shape == (0,)


def test_sma_rejects_a_period_below_one() -> None:
    with pytest.raises(ValueError):
        sma(np.array([1.0]), 0)


def test_sma_matches_a_naive_implementation() -> None:
    values = np.random.default_rng(7).uniform(10, 100_000, 500)
    for period in (1, 2, 9, 21, 200):
        assert_same(sma(values, period), naive_sma(values.tolist(), period), 1e-9)


def windowed_sma(values: list[float], period: int) -> list[float]:
    """Each window summed on its own in sma's documented order: power-of-two blocks, each a
    balanced pairwise sum, added from the shortest (at the window's end) to the longest."""

    def pairwise(block: list[float]) -> float:
        if len(block) == 1:
            return block[0]
        half = len(block) // 2
        return pairwise(block[:half]) + pairwise(block[half:])

    result = []
    for i in range(len(values)):
        if i < period - 1:
            result.append(NAN)
            continue
        window = values[i - period + 1 : i + 1]
        total: float | None = None
        end, width = period, 1
        while width <= period:
            if period & width:
                end -= width
                block = pairwise(window[end : end + width])
                total = block if total is None else total + block
            width *= 2
        assert total is not None
        result.append(total / period)
    return result


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(1e-3, 1e6, allow_nan=False), max_size=150),
    st.integers(1, 70),
)
def test_sma_sums_each_window_alone_bit_for_bit(values: list[float], period: int) -> None:
    expected = np.asarray(windowed_sma(values, period), dtype=np.float64)
    actual = sma(np.asarray(values, dtype=np.float64), period)
    assert np.array_equal(actual, expected, equal_nan=True)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(1e-3, 1e6, allow_nan=False), max_size=150),
    st.lists(st.integers(1, 70), min_size=1, max_size=4),
    st.booleans(),
)
def test_smas_of_several_periods_are_each_sma_alone_bit_for_bit(
    values: list[float], periods: list[int], shared: bool
) -> None:
    # One pass of power-of-two sums serves every period (a crossover's fast and slow).
    series = np.asarray(values, dtype=np.float64)
    alone = [np.asarray(windowed_sma(values, p), dtype=np.float64) for p in periods]
    if shared:
        with shared_indicators():
            sma(series, periods[0])  # one of them already there
            together = smas(series, periods)
    else:
        together = smas(series, periods)
    assert len(together) == len(periods)
    for actual, expected in zip(together, alone, strict=True):
        assert np.array_equal(actual, expected, equal_nan=True)


def test_sma_of_a_candle_depends_only_on_its_window() -> None:
    # The tick sees a short recent window, the backtester years: both must get the same bits.
    values = 90_000 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.001, 20_000)))
    period = 21
    recent = values[-500:]
    assert np.array_equal(
        sma(values, period)[-500 + period - 1 :], sma(recent, period)[period - 1 :]
    )


# --- RSI -------------------------------------------------------------------------------


def test_rsi_by_hand() -> None:
    # Every change is ±1 here, so from the second average on RSI = 100 * average gain:
    # gains 1, 1 -> first averages gain 1, loss 0 -> 100; then avg = (prev + current) / 2.
    closes = np.array([10.0, 11, 12, 11, 10, 9, 10, 11, 12, 13, 12, 11])
    expected = [
        NAN,
        NAN,
        100,
        50,
        25,
        12.5,
        56.25,
        78.125,
        89.0625,
        94.53125,
        47.265625,
        23.6328125,
    ]
    assert_same(rsi(closes, 2), expected)


# StockCharts' ChartSchool RSI worksheet (closes of QQQQ, 14 periods), the example most
# references reproduce. The exact values below are the ones independent implementations
# agree on; StockCharts' own sheet shows 70.53, 66.32... because it rounds intermediate
# averages to 2 decimals.
WILDER_EXAMPLE_CLOSES = [
    44.34, 44.09, 44.15, 43.61, 44.33, 44.83, 45.10, 45.42, 45.84, 46.08, 45.89, 46.03,
    45.61, 46.28, 46.28, 46.00, 46.03, 46.41, 46.22, 45.64, 46.21, 46.25, 45.71, 46.45,
    45.78, 45.35, 44.03, 44.18, 44.22, 44.57, 43.42, 42.66, 43.13,
]  # fmt: skip
WILDER_EXAMPLE_RSI = [
    70.46, 66.25, 66.48, 69.35, 66.29, 57.92, 62.88, 63.21, 56.01, 62.34, 54.67, 50.39,
    40.02, 41.49, 41.90, 45.50, 37.32, 33.09, 37.79,
]  # fmt: skip


def test_rsi_matches_the_classic_worked_example() -> None:
    result = rsi(np.array(WILDER_EXAMPLE_CLOSES), 14)
    assert np.isnan(result[:14]).all()
    np.testing.assert_allclose(result[14:], WILDER_EXAMPLE_RSI, rtol=0, atol=0.005)


def test_rsi_matches_a_naive_implementation() -> None:
    values = 3_000 * np.exp(np.cumsum(np.random.default_rng(11).normal(0, 0.01, 2_000)))
    for period in (2, 14, 50):
        assert_same(rsi(values, period), naive_rsi(values.tolist(), period), 1e-9)


def test_rsi_edge_values_follow_tradingview() -> None:
    rising = np.arange(1.0, 21.0)
    assert (rsi(rising, 14)[14:] == 100).all()
    assert (rsi(rising[::-1].copy(), 14)[14:] == 0).all()
    assert (rsi(np.full(20, 5.0), 14)[14:] == 100).all()  # no loss at all reads 100
    assert np.isnan(rsi(np.arange(1.0, 15.0), 14)).all()  # 14 closes = 13 changes: none yet


def test_rsi_stays_within_0_and_100() -> None:
    values = np.random.default_rng(5).uniform(1, 2, 5_000)
    result = rsi(values, 3)[3:]
    assert ((result >= 0) & (result <= 100)).all()


# --- crossings -------------------------------------------------------------------------


def test_crossover_and_crossunder_by_hand() -> None:
    a = np.array([1.0, 2.0, 3.0, 3.0, 2.0, 4.0, 1.0])
    b = np.array([2.0, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0])
    # above now and at/below before: index 2 (2 -> 3 over 2) and 5 (2 -> 4 over 3)
    assert crossover(a, b).tolist() == [False, False, True, False, False, True, False]
    # below now and at/above before: index 4 (3 == 3 -> 2 < 3) and 6
    assert crossunder(a, b).tolist() == [False, False, False, False, True, False, True]


def test_crossing_a_level() -> None:
    values = np.array([25.0, 30.0, 31.0, 29.0, 30.0, 30.0, 35.0])
    assert np.flatnonzero(crossover(values, 30.0)).tolist() == [2, 6]
    assert np.flatnonzero(crossunder(values, 30.0)).tolist() == [3]


def test_no_crossing_through_nan_or_at_the_first_value() -> None:
    a = np.array([NAN, 5.0, 1.0, NAN, 5.0])
    b = np.array([2.0, 2.0, 2.0, 2.0, 2.0])
    assert not crossover(a, b).any()
    assert crossunder(a, b).tolist() == [False, False, True, False, False]
    assert crossover(np.array([]), 1.0).shape == (0,)


# --- speed -----------------------------------------------------------------------------


def test_a_year_of_minutes_is_fast() -> None:
    # Typically ~0.01 s for SMA(21) and ~0.2 s for RSI(14); the bound only catches a
    # regression to something quadratic or per-candle numpy calls, not a loaded machine.
    values = 90_000 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.001, 525_000)))
    started = time.perf_counter()
    sma(values, 21)
    sma(values, 9)
    rsi(values, 14)
    assert time.perf_counter() - started < 2.0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([1.0, 2.0, 3.0, NAN, math.inf]), st.sampled_from([1.0, 2.0, NAN])
        ),
        max_size=40,
    )
)
def test_crossings_are_crossover_minus_crossunder(pairs: list[tuple[float, float]]) -> None:
    # Ties, NaN on either side and infinities, where <= is not "not >".
    a = np.asarray([x for x, _ in pairs], dtype=np.float64)
    b = np.asarray([y for _, y in pairs], dtype=np.float64)
    expected = crossover(a, b).astype(np.int8) - crossunder(a, b).astype(np.int8)
    assert np.array_equal(crossings(a, b), expected)
    assert crossings(a, b).dtype == np.int8
    assert np.array_equal(crossings(a, 2.0), crossover(a, 2.0).astype(np.int8) - crossunder(a, 2.0))
