"""Passes over a long series run a cache-sized segment at a time: the same numbers as whole."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.backtest.runner import GAP_SEGMENT, _step_ms
from engine.strategies.indicators import SEGMENT, crossings, crossover, crossunder, sma, smas

NAN = math.nan


def test_sma_over_several_segments_is_each_window_alone() -> None:
    # Every window across a segment's edge comes out as it does alone (the short slices
    # here fit in one segment).
    moves = np.random.default_rng(5).normal(0, 0.001, 3 * SEGMENT + 77)
    values = 60_000 * np.exp(np.cumsum(moves))
    periods = (9, 21, 100, 200)
    together = smas(values, periods)
    for period, whole in zip(periods, together, strict=True):
        assert np.isnan(whole[: period - 1]).all()
        assert np.array_equal(whole, sma(values, period), equal_nan=True)
        for edge in (SEGMENT, 2 * SEGMENT, values.shape[0]):
            start = edge - 300
            alone = sma(values[start : edge + 300], period)[period - 1 :]
            assert np.array_equal(whole[start + period - 1 : edge + 300], alone)


def test_crossings_over_several_segments() -> None:
    # A crossing on a segment's first value needs the last value of the segment before it.
    rng = np.random.default_rng(11)
    a = rng.choice([1.0, 2.0, 3.0, NAN], size=2 * SEGMENT + 5)
    b = rng.choice([1.0, 2.0, NAN], size=a.shape[0])
    a[SEGMENT - 1 : SEGMENT + 1] = (1.0, 3.0)  # a cross right at a segment's start
    b[SEGMENT - 1 : SEGMENT + 1] = (2.0, 2.0)
    expected = crossover(a, b).astype(np.int8) - crossunder(a, b).astype(np.int8)
    crossed = crossings(a, b)
    assert crossed[SEGMENT] == 1
    assert np.array_equal(crossed, expected)


@pytest.mark.parametrize("at", [1, GAP_SEGMENT - 1, GAP_SEGMENT, GAP_SEGMENT + 1, 2 * GAP_SEGMENT])
def test_the_candle_length_is_the_shortest_gap_in_any_segment(at: int) -> None:
    times = np.arange(2 * GAP_SEGMENT + 3, dtype=np.int64) * 60_000
    assert _step_ms(times) == 60_000
    times[at:] -= 30_000  # one gap of half a minute, between candles at - 1 and at
    assert _step_ms(times) == 30_000
    times[at:] -= 30_000  # now none: the same time twice
    with pytest.raises(ValueError, match="increase"):
        _step_ms(times)


def test_the_candle_length_of_two_candles_and_of_one() -> None:
    assert _step_ms(np.asarray([0, 300_000], dtype=np.int64)) == 300_000
    assert _step_ms(np.asarray([0], dtype=np.int64)) == 60_000
