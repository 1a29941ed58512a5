"""Indicator math shared by every strategy: numpy in, numpy out, one value per candle.

Two properties matter more than raw speed, because the live tick and the
backtester must agree on every signal:

- No look-ahead: the value at index ``i`` depends only on ``values[:i + 1]``,
  so truncating the input never changes an earlier value (bit for bit).
- Windowed indicators (``sma``) depend only on their own window, so the tick,
  which sees only the most recent candles, gets the same numbers as a
  backtest that started years earlier.

Indices that do not have enough history yet are NaN; comparisons with NaN are
False, so ``crossover``/``crossunder`` never fire during warm-up.

A parameter search computes one strategy over the same candles with many parameter
sets: inside ``shared_indicators()`` each indicator of one series and one period is
computed once and shared (SMA 20 serves the pairs 5/20 and 20/50 alike).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial

import numpy as np
import numpy.typing as npt

from engine.strategies.base import FloatArray

BoolArray = npt.NDArray[np.bool_]

# Values per segment of the passes over long series (sma, crossings): a few arrays of them
# fit in a core's 2 MB cache, so a pass reads back what the one before it wrote from there,
# ~2.5x faster than from memory over a year of minutes.
SEGMENT = 32_768

# (indicator, id of the series, period) -> (the series, its read-only result); the series
# is held so that its id cannot be reused by another array while the entry lives.
_Shared = dict[tuple[str, int, int], tuple[object, FloatArray]]
_shared: ContextVar[_Shared | None] = ContextVar("shared_indicators", default=None)


@contextmanager
def shared_indicators() -> Iterator[None]:
    """Within this block, ``sma`` and ``rsi`` of one series and one period are computed once.

    The results handed out are read-only (a caller cannot change another's values); the
    memory is given back when the block ends.
    """
    token = _shared.set({})
    try:
        yield
    finally:
        _shared.reset(token)


def _remembered(
    name: str, values: FloatArray, period: int, compute: Callable[[], FloatArray]
) -> FloatArray:
    memo = _shared.get()
    if memo is None:
        return compute()
    hit = _memo_hit(memo, name, values, period)
    if hit is not None:
        return hit
    result = compute()
    result.flags.writeable = False
    memo[(name, id(values), period)] = (values, result)
    return result


def _memo_hit(memo: _Shared, name: str, values: FloatArray, period: int) -> FloatArray | None:
    hit = memo.get((name, id(values), period))
    return hit[1] if hit is not None and hit[0] is values else None


def _as_float_array(values: FloatArray) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def sma(values: FloatArray, period: int) -> FloatArray:
    """Simple moving average; NaN for the first ``period - 1`` values.

    Each window is summed from its own values alone, in a fixed order: the
    window splits into blocks of power-of-two lengths (21 = 16 + 4 + 1), each
    block a balanced pairwise sum, and the blocks are added from the shortest
    (at the window's end) to the longest. Unlike a running ``cumsum``
    difference, this gives each average exactly the rounding of its own
    window, so the result is identical however much earlier history the
    caller passed in (a cumsum drifts by ~1e-6 on a year of BTC minutes,
    enough to flip a crossover between the tick and the backtester). Sums of
    2, 4, 8... consecutive values are each one vectorised pass over the
    previous ones, so the cost is ``O(n * log2(period))``, never a loop over
    candles; over a long series the passes run a ``SEGMENT`` of windows at a
    time, in the cache: SMA 9 and 21 together take ~1.9 ms over 525,600 values
    (2.9 ms pass by pass over the whole series; adding ``period`` shifted
    slices one by one took 1 ms for period 9 alone and 17 ms for period 200).
    """
    return smas(values, (period,))[0]


def smas(values: FloatArray, periods: Sequence[int]) -> list[FloatArray]:
    """``sma`` of ``values`` for each of ``periods``, each the same as alone, bit for bit.

    The sums of 2, 4, 8... consecutive values are computed once for all of them: SMA 9
    (8 + 1) and SMA 21 (16 + 4 + 1) share those of 2, 4 and 8, so a crossover's two
    averages cost little more than the slower one.
    """
    if any(period < 1 for period in periods):
        raise ValueError("period must be at least 1")
    memo = _shared.get()
    missing = [
        period
        for period in dict.fromkeys(periods)
        if memo is None or _memo_hit(memo, "sma", values, period) is None
    ]
    fresh = dict(zip(missing, _sma(values, missing), strict=True))
    return [_remembered("sma", values, p, partial(fresh.__getitem__, p)) for p in periods]


def _sma(values: FloatArray, periods: Sequence[int]) -> list[FloatArray]:
    source = _as_float_array(values)
    count = source.shape[0]
    results: list[FloatArray] = []
    for period in periods:
        result = np.empty(count, dtype=np.float64)
        result[: period - 1] = np.nan
        results.append(result)
    live = [i for i, period in enumerate(periods) if count - period + 1 > 0]
    if not live:
        return results
    top = max(periods[i] for i in live)
    # Each window's sum depends on its own values alone, so the windows can be summed a
    # SEGMENT at a time (the last one up to twice as long), each pass in the cache.
    windows = count - top + 1
    size = SEGMENT if windows > 2 * SEGMENT else windows
    longest = min(2 * size, windows) + top  # a segment's values, the last one's included
    spares = (np.empty(longest, dtype=np.float64), np.empty(longest, dtype=np.float64))
    for first in range(0, windows, size):
        last = windows if windows - first < 2 * size else first + size  # no short tail
        totals = [
            results[i][first + periods[i] - 1 : last + periods[i] - 1 if last < windows else count]
            for i in live
        ]
        _window_sums(source[first : last + top - 1], [periods[i] for i in live], totals, spares)
    return results


def _window_sums(
    source: FloatArray,
    periods: Sequence[int],
    totals: Sequence[FloatArray],
    spares: tuple[FloatArray, FloatArray],
) -> None:
    """``totals[i][k]``: the mean of ``source[k : k + periods[i]]`` summed in sma's order.

    ``spares`` are two buffers of at least ``len(source)`` values, which take turns holding
    the sums of 2, 4, 8... consecutive values.
    """
    count = source.shape[0]
    top = max(periods)
    ends = list(periods)  # each window's values from its `end` on are in its total already
    started = [False] * len(periods)
    # An odd period's first block is the values themselves, which no later pass overwrites:
    # it is added to the second block (or divided) directly, without copying it first.
    pending: list[FloatArray | None] = [None] * len(periods)
    sums = source  # sums[i] = source[i] + ... + source[i + width - 1]
    width = 1
    turn = 0
    while True:
        for i, period in enumerate(periods):  # each period's blocks in the same order as alone
            if period & width:
                ends[i] -= width
                block = sums[ends[i] : ends[i] + totals[i].shape[0]]
                first = pending[i]
                if first is not None:
                    np.add(first, block, out=totals[i])
                    pending[i] = None
                elif started[i]:
                    totals[i] += block
                elif sums is source:
                    pending[i] = block
                else:
                    np.copyto(totals[i], block)
                started[i] = True
        if width * 2 > top:
            break
        length = count - 2 * width + 1
        doubled = spares[turn][:length]
        np.add(sums[:length], sums[width : width + length], out=doubled)
        sums, width, turn = doubled, width * 2, 1 - turn
    for i, period in enumerate(periods):
        only = pending[i]  # a period of 1
        if only is not None:
            np.divide(only, period, out=totals[i])
        else:
            totals[i] /= period


def _wilder_average(series: FloatArray, period: int) -> FloatArray:
    """Wilder's running average of ``series`` from index ``period - 1`` on.

    The first value is the simple mean of the first ``period`` items; each next
    one is ``(previous * (period - 1) + current) / period``, evaluated in exactly
    that order so the numbers match TradingView's and StockCharts' tables.
    """
    keep = period - 1
    average = float(series[:period].sum()) / period
    averages = [average]
    for current in series[period:].tolist():
        average = (average * keep + current) / period
        averages.append(average)
    return np.asarray(averages, dtype=np.float64)


def rsi(values: FloatArray, period: int) -> FloatArray:
    """Wilder's Relative Strength Index (0..100); NaN for the first ``period`` values.

    Gains and losses are the positive and negative parts of the close-to-close
    changes. The averages follow Wilder (as TradingView's ``ta.rsi`` and
    StockCharts do): the first is the simple mean of the first ``period``
    changes, then ``avg = (prev * (period - 1) + current) / period``. When the
    average loss is zero the RSI is 100, else when the average gain is zero it
    is 0 (TradingView's convention, which also makes a perfectly flat series
    read 100).

    Why a Python loop: the smoothing is a first-order recursive filter. Its
    closed forms (powers of ``(period - 1) / period`` scaled over blocks) either
    overflow/underflow over 525,000 values or round differently from the
    reference definition, and numpy has no recursive filter without scipy. A
    tight loop over plain Python floats (``.tolist()``) is exact and takes
    ~0.18 s for 525,000 values; everything around it is vectorised.
    """
    if period < 1:
        raise ValueError("period must be at least 1")
    return _remembered("rsi", values, period, lambda: _rsi(values, period))


def _rsi(values: FloatArray, period: int) -> FloatArray:
    source = _as_float_array(values)
    count = source.shape[0]
    result = np.full(count, np.nan, dtype=np.float64)
    if count <= period:
        return result
    change = np.diff(source)
    average_gain = _wilder_average(np.maximum(change, 0.0), period)
    average_loss = _wilder_average(np.maximum(-change, 0.0), period)
    with np.errstate(divide="ignore", invalid="ignore"):
        strength = 100.0 - 100.0 / (1.0 + average_gain / average_loss)
    strength = np.where(average_gain == 0.0, 0.0, strength)
    strength = np.where(average_loss == 0.0, 100.0, strength)
    result[period:] = strength
    return result


def crossover(a: FloatArray, b: FloatArray | float) -> BoolArray:
    """True where ``a`` goes above ``b``: ``a > b`` now and ``a <= b`` on the previous value.

    The same definition as TradingView's ``ta.crossover``; ``b`` may be a level.
    Index 0 is never a crossing (no previous value), nor is any index where
    either side is NaN now or before.
    """
    now_a, now_b = _aligned(a, b)
    crossed = np.zeros(now_a.shape[0], dtype=np.bool_)
    crossed[1:] = (now_a[1:] > now_b[1:]) & (now_a[:-1] <= now_b[:-1])
    return crossed


def crossunder(a: FloatArray, b: FloatArray | float) -> BoolArray:
    """True where ``a`` goes below ``b``: ``a < b`` now and ``a >= b`` on the previous value."""
    now_a, now_b = _aligned(a, b)
    crossed = np.zeros(now_a.shape[0], dtype=np.bool_)
    crossed[1:] = (now_a[1:] < now_b[1:]) & (now_a[:-1] >= now_b[:-1])
    return crossed


def crossings(a: FloatArray, b: FloatArray | float) -> npt.NDArray[np.int8]:
    """+1 where ``crossover(a, b)``, -1 where ``crossunder(a, b)``, 0 elsewhere (never both).

    The same booleans as those two, from three comparisons instead of four: ``a <= b`` is
    ``a < b or a == b`` (each False where a side is NaN), and ``a >= b`` likewise. A
    ``SEGMENT`` at a time, so that the comparisons are read back from the cache.
    """
    now_a, now_b = _aligned(a, b)
    count = now_a.shape[0]
    crossed = np.zeros(count, dtype=np.int8)
    for first in range(0, count - 1, SEGMENT):
        end = min(first + SEGMENT + 1, count)  # one value of overlap: the previous one
        part_a, part_b = now_a[first:end], now_b[first:end]
        above, below, equal = part_a > part_b, part_a < part_b, part_a == part_b
        up = above[1:] & (below[:-1] | equal[:-1])
        down = below[1:] & (above[:-1] | equal[:-1])
        np.subtract(up.view(np.int8), down.view(np.int8), out=crossed[first + 1 : end])
    return crossed


def _aligned(a: FloatArray, b: FloatArray | float) -> tuple[FloatArray, FloatArray]:
    series = _as_float_array(a)
    other = np.broadcast_to(np.asarray(b, dtype=np.float64), series.shape)
    return series, other
