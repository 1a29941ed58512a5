"""Search a strategy's parameters: in-sample to fit, out-of-sample to judge, ranked by the latter.

How a search runs (``optimize``):

- the grid (``parameter_grid``): each searched parameter takes up to ``values`` values
  over its range (the strategy's declared minimum..maximum, or narrower): evenly
  spaced, except whole-number parameters whose range spans ten times or more (window
  lengths, periods), spaced geometrically so that 5, 8 and 13 are tried as well as
  150, 175 and 200. Sets the strategy's own ``check`` refuses (fast >= slow) are left
  out. When the grid holds more sets than ``limit`` (the plan's), fewer values per
  parameter are taken until it fits, and the grid says it was cut;
- the candles are split once: the first ``in_sample_share`` (70 % by default) is the
  in-sample part, the rest the out-of-sample part;
- per set, the signals are computed ONCE over all candles (so the indicators are warm
  at the first out-of-sample candle, as a bot created then would have them from its
  history) and ``run_backtest`` runs on each part's slice of candles and signals, with
  the full capital at the start of each part (a fresh bot). Inside the search every
  indicator of one period is computed once and shared (``shared_indicators``);
- the sets are ranked by their out-of-sample return, then lower out-of-sample drawdown,
  then in-sample return.

Overfitting warnings (``Optimization.warnings``), each a short code the chat translates:

- ``best_in_sample_loses``: the set with the best in-sample return made money in-sample
  and lost (or made nothing) out-of-sample: what looked best was fitted to noise;
- ``low_rank_correlation``: with at least ``MIN_SETS_FOR_CORRELATION`` sets, the
  Spearman rank correlation between in-sample and out-of-sample returns is below
  ``LOW_CORRELATION``: being good in-sample says little about being good afterwards;
- ``few_trades``: the top set closed fewer than ``FEW_TRADES`` trades out-of-sample,
  too few for its return to mean much.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from engine.backtest.runner import BacktestResult, run_backtest
from engine.exchanges.paper import FEE_RATE, SLIPPAGE
from engine.risk import RiskSettings
from engine.strategies.base import Candles, Param, ParameterError, ParamValue, Strategy
from engine.strategies.indicators import shared_indicators

DEFAULT_VALUES = 8  # values per searched parameter, before the plan's limit
MIN_VALUES = 2
DEFAULT_IN_SAMPLE = 0.7
MIN_PART_CANDLES = 2  # each part needs at least this many candles
GEOMETRIC_SPAN = 10  # whole-number ranges whose maximum is this many times the minimum
LOW_CORRELATION = 0.3
MIN_SETS_FOR_CORRELATION = 5
FEW_TRADES = 3

Ranges = Mapping[str, tuple[ParamValue, ParamValue]]


@dataclass(frozen=True)
class ParameterGrid:
    """The parameter sets a search tries (every one passes the strategy's ``validate``)."""

    sets: tuple[dict[str, ParamValue], ...]
    searched: tuple[str, ...]  # the parameters that vary
    values: int  # values per searched parameter actually used
    full_size: int  # sets the grid would hold with the values asked for
    limit: int

    @property
    def truncated(self) -> bool:
        """Whether the limit made the grid smaller than asked."""
        return len(self.sets) < self.full_size


def axis(param: Param, low: ParamValue, high: ParamValue, count: int) -> list[ParamValue]:
    """Up to ``count`` values of ``param`` from ``low`` to ``high`` (both included)."""
    if count < 1 or low > high:
        return []
    if low == high or count == 1:
        return [param.kind(low)]
    if param.kind is int:
        if low > 0 and high >= GEOMETRIC_SPAN * low:
            raw = np.geomspace(float(low), float(high), count)
        else:
            raw = np.linspace(float(low), float(high), count)
        return sorted({round(float(x)) for x in raw})
    raw = np.linspace(float(low), float(high), count)
    span = float(high) - float(low)
    digits = max(0, 2 - math.floor(math.log10(span))) if span > 0 else 2
    values = sorted({round(float(x), digits) for x in raw})
    return [min(max(v, float(low)), float(high)) for v in values]


def _sets(
    strategy: Strategy,
    fixed: Mapping[str, ParamValue],
    axes: Mapping[str, list[ParamValue]],
) -> list[dict[str, ParamValue]]:
    names = list(axes)
    found: list[dict[str, ParamValue]] = []
    for combination in itertools.product(*(axes[name] for name in names)):
        try:
            found.append(strategy.validate({**fixed, **dict(zip(names, combination, strict=True))}))
        except ParameterError:
            continue  # the strategy's own cross-rules (fast < slow)
    return found


def parameter_grid(
    strategy: Strategy,
    *,
    limit: int,
    fixed: Mapping[str, ParamValue] | None = None,
    ranges: Ranges | None = None,
    values: int = DEFAULT_VALUES,
) -> ParameterGrid:
    """The sets to try: every parameter not in ``fixed`` is searched over its range.

    ``ranges`` narrows a parameter's declared range; ``fixed`` values are kept as given
    (both are validated by the caller). At most ``limit`` sets: fewer values per
    parameter are taken until the grid fits, then, if two each still do not, the first
    ``limit`` sets.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    fixed = dict(fixed or {})
    ranges = dict(ranges or {})
    searched = [p for p in strategy.info.params if p.name not in fixed]

    def axes_of(count: int) -> dict[str, list[ParamValue]]:
        return {
            p.name: axis(p, *ranges.get(p.name, (p.minimum, p.maximum)), count) for p in searched
        }

    wanted = max(values, MIN_VALUES)
    full = _sets(strategy, fixed, axes_of(wanted))
    count, sets = wanted, full
    while len(sets) > limit and count > MIN_VALUES:
        count -= 1
        sets = _sets(strategy, fixed, axes_of(count))
    return ParameterGrid(
        sets=tuple(sets[:limit]),
        searched=tuple(p.name for p in searched),
        values=count,
        full_size=len(full),
        limit=limit,
    )


@dataclass(frozen=True)
class Figures:
    """What one run of one set found, kept small (the equity curve is not kept)."""

    return_pct: Decimal
    max_drawdown_pct: Decimal
    trades: int
    win_rate_pct: Decimal | None
    final_equity: Decimal

    @classmethod
    def of(cls, result: BacktestResult) -> Figures:
        return cls(
            return_pct=result.total_pnl_pct,
            max_drawdown_pct=result.max_drawdown_pct,
            trades=result.trade_count,
            win_rate_pct=result.win_rate_pct,
            final_equity=result.final_equity,
        )


@dataclass(frozen=True)
class Candidate:
    params: dict[str, ParamValue]
    in_sample: Figures
    out_of_sample: Figures


@dataclass(frozen=True)
class Optimization:
    """A finished search: the sets ranked best first, the split, and the warnings."""

    strategy: str
    candidates: tuple[Candidate, ...]  # ranked: out-of-sample return first
    in_sample_share: float
    split_index: int  # first out-of-sample candle
    in_sample_candles: int
    out_of_sample_candles: int
    split_time: int  # open time (ms, UTC) of the first out-of-sample candle
    rank_correlation: float | None  # Spearman, in-sample vs out-of-sample returns
    best_in_sample: Candidate | None
    warnings: tuple[str, ...]

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


def split_index(candles: int, in_sample_share: float) -> int:
    """The first out-of-sample candle; ValueError when a part would be too short."""
    if not 0 < in_sample_share < 1:
        raise ValueError("in_sample_share must be between 0 and 1")
    split = round(candles * in_sample_share)
    if split < MIN_PART_CANDLES or candles - split < MIN_PART_CANDLES:
        raise ValueError("too few candles to split")
    return split


def _ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank (as Spearman's coefficient wants)."""
    data = np.asarray(values, dtype=np.float64)
    order = np.argsort(data, kind="mergesort")
    ranks = np.empty(data.shape[0], dtype=np.float64)
    ranks[order] = np.arange(1, data.shape[0] + 1, dtype=np.float64)
    for value in np.unique(data):
        same = data == value
        if int(same.sum()) > 1:
            ranks[same] = ranks[same].mean()
    return ranks


def rank_correlation(first: Sequence[float], second: Sequence[float]) -> float | None:
    """Spearman's rank correlation; None for fewer than two values or a constant side."""
    if len(first) != len(second):
        raise ValueError("two sequences of the same length")
    if len(first) < 2:
        return None
    a, b = _ranks(first), _ranks(second)
    a -= a.mean()
    b -= b.mean()
    scale = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    if scale == 0:
        return None
    return float((a * b).sum()) / scale


def _ranked(candidates: list[Candidate]) -> list[Candidate]:
    return sorted(
        candidates,
        key=lambda c: (
            -c.out_of_sample.return_pct,
            c.out_of_sample.max_drawdown_pct,
            -c.in_sample.return_pct,
        ),
    )


def overfitting_warnings(
    ranked: Sequence[Candidate], correlation: float | None
) -> tuple[tuple[str, ...], Candidate | None]:
    """The warnings of the module docstring, and the set with the best in-sample return."""
    if not ranked:
        return (), None
    warnings: list[str] = []
    best_in = max(ranked, key=lambda c: (c.in_sample.return_pct, -c.in_sample.max_drawdown_pct))
    if best_in.in_sample.return_pct > 0 and best_in.out_of_sample.return_pct <= 0:
        warnings.append("best_in_sample_loses")
    if (
        len(ranked) >= MIN_SETS_FOR_CORRELATION
        and correlation is not None
        and correlation < LOW_CORRELATION
    ):
        warnings.append("low_rank_correlation")
    if ranked[0].out_of_sample.trades < FEW_TRADES:
        warnings.append("few_trades")
    return tuple(warnings), best_in


def optimize(
    candles: Candles,
    strategy: Strategy,
    sets: Sequence[Mapping[str, Any]],
    *,
    capital: Decimal,
    risk: RiskSettings,
    in_sample_share: float = DEFAULT_IN_SAMPLE,
    fee_rate: Decimal = FEE_RATE,
    slippage: Decimal = SLIPPAGE,
    progress: Callable[[float], None] | None = None,
) -> Optimization:
    """Run every set of ``sets`` in-sample and out-of-sample; rank them (see the docstring).

    ``progress``, if given, is called with the fraction of sets done (0..1).
    """
    split = split_index(len(candles), in_sample_share)
    parts = (_slice(candles, 0, split), _slice(candles, split, len(candles)))
    found: list[Candidate] = []
    total = len(sets)
    if progress is not None:
        progress(0.0)
    with shared_indicators():
        for done, params in enumerate(sets, start=1):
            values = strategy.validate(params)
            signals = strategy.compute(candles, values)
            figures = [
                Figures.of(
                    run_backtest(
                        part,
                        strategy,
                        values,
                        capital=capital,
                        risk=risk,
                        fee_rate=fee_rate,
                        slippage=slippage,
                        signals=part_signals,
                    )
                )
                for part, part_signals in zip(
                    parts, (signals[:split], signals[split:]), strict=True
                )
            ]
            found.append(Candidate(dict(values), figures[0], figures[1]))
            if progress is not None:
                progress(done / total)
    ranked = _ranked(found)
    correlation = rank_correlation(
        [float(c.in_sample.return_pct) for c in ranked],
        [float(c.out_of_sample.return_pct) for c in ranked],
    )
    warnings, best_in = overfitting_warnings(ranked, correlation)
    return Optimization(
        strategy=strategy.info.name,
        candidates=tuple(ranked),
        in_sample_share=in_sample_share,
        split_index=split,
        in_sample_candles=split,
        out_of_sample_candles=len(candles) - split,
        split_time=int(candles.time[split]),
        rank_correlation=correlation,
        best_in_sample=best_in,
        warnings=warnings,
    )


def _slice(candles: Candles, start: int, end: int) -> Candles:
    return Candles(
        candles.time[start:end],
        candles.open[start:end],
        candles.high[start:end],
        candles.low[start:end],
        candles.close[start:end],
        candles.volume[start:end],
    )
