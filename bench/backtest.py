"""Backtester speed and agreement: ours vs backtesting.py vs vectorbt, same rules, same trades.

The two libraries are benchmark-only (bench/requirements.txt), never product
dependencies, so this runs from its own virtualenv. Once, from the repository root:

    python3 -m venv bench/.venv
    bench/.venv/bin/pip install -e . -r bench/requirements.txt

Then:

    bench/.venv/bin/python bench/backtest.py                # a year of 1m candles
    bench/.venv/bin/python bench/backtest.py --minutes 100000 --repeat 3

What runs: SMA crossover (the product's ``sma_crossover``, default 9/21) over one
year of 1-minute candles (525,600) of the offline feed's synthetic market around
60,000 (``engine.market_data.replay.synthetic_candles``, seeded per ``--seed``).
All three are configured to the same rules, the ones the three can express
identically:

- signals: ``SmaCrossover.compute`` (one int8 array, computed inside every timed
  run of every library, so its cost counts the same for all three); enter on +1
  when flat, exit on -1 when holding (``SmaCrossover.decide``);
- fills: a signal on candle i's close fills at candle i+1's open (backtesting.py
  market orders with ``trade_on_close=False``; vectorbt with the signals shifted
  one candle and ``price=open``);
- fee: 0.1 % of the fill value on entry and on exit (``fee_rate``, ``commission``,
  ``fees``);
- slippage: none. backtesting.py's ``spread`` is paid on entry only, so it
  cannot express the paper exchange's two-sided slippage; all three use 0;
- size: ours is the live tick's (``engine.sizing.buy_quote``): the budget,
  capital (10,000) plus the PnL realised so far, over 1 + the fee, / decision
  close, rounded down to 1e-8; it compounds, so this losing strategy buys less
  and less. The other two are handed our amount for each entry: backtesting.py
  trades whole satoshis (``FractionalBacktest``, ``fractional_unit=1e-8``),
  vectorbt takes ``size_type="amount"``; their cash is set high enough never to
  limit a trade;
- no stop loss, take profit or other risk rule; a trade still open at the end
  is left out of the comparison. Once our budget is under the paper exchange's
  1 USDT minimum order, our orders are rejected, a rule the other two do not
  have: trades are compared up to our first rejected order.

Timing is wall time (``time.perf_counter``) of one whole backtest producing the
summary and the trade records (ours: ``run_backtest``, signals included;
vectorbt: ``Portfolio.from_signals`` and its trade records; backtesting.py:
``Backtest.run``). ``first`` is the first call in this process (vectorbt's
includes compiling its numba code; ours, loading our compiled walk from numba's cache,
or compiling it once on a new machine), ``warm`` the best and the median of
``--repeat`` more calls, and ``CPU`` the least CPU time this process spent in
one warm call: on a shared machine wall time also counts waiting for a core,
CPU time does not. For ours, the Decimal trade list is built lazily on first
access; its cost is printed on its own line. vectorbt gets a timezone-naive
index: a tz-aware one costs it ~0.9 s per call converting timestamps.
The 10-pair sweep times ten of our runs against one vectorbt call over ten
columns (vectorbt's own way to sweep).

Stop loss and take profit (``--stop-loss``/``--take-profit``, 0.3 % and 0.5 % by default, so that
both fire often on minutes):
the same crossover with ``RiskSettings(stop_loss_pct, take_profit_pct)``, against
backtesting.py with the same rule written in its strategy's ``next()``: on a candle's
CLOSE, sell all when it is at or below the average entry (fees included, as our
position's cost / amount) times 1 - stop loss, or at or above it times 1 + take profit;
the sale fills at the next open like any order. Checked before the signal, as the tick
does. Trades are compared (count, and the first ``--compare-trades`` entry by entry).
Goal: ours >= 200x faster.

That case spends our budget early: SMA 9/21 on minutes makes ~14,000 round trips a year,
each paying 0.2 % in fees, so whatever the stop and target the budget falls under the
1 USDT minimum about a third into the year (4,700 trades), and from there on every order
of ours is rejected and backtesting.py, handed no entry, only walks the candles. So a
second case runs too (``--lasting``, SMA 20/100 with a stop loss of 0.5 % and a take profit
of 1 % by default), whose budget lasts the year: 3,425 trades all year long, half of them
closed by the stop or the target, no rejected order (a stop of 2 % and a target of 3 % last
too, but fire on 79 trades of 3,425).

Optimise (``--optimize-sets``, 38 by default: the product's own 8-values grid of SMA
fast 2..100 x slow 3..200 with fast < slow): parameter sets searched per second over the
year. Ours is ``engine.backtest.optimize.optimize`` (each set in-sample 70 % and
out-of-sample 30 %, the full year in all; every SMA window computed once and shared).
vectorbt's own sweep: ``vbt.MA.run`` of the fast and the slow window of every pair (one
column per pair), ``ma_crossed_above``/``below`` as entries and exits shifted one candle,
and one ``Portfolio.from_signals`` over all columns, filled at the next open, 0.1 % fees,
all cash in; its total return per column is read. Sizing differs (vectorbt has no
compounding budget with a minimum order): this case times the sweep, it does not
compare trades. Goal: ours at least as fast.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.backtest import run_backtest
from engine.backtest.optimize import optimize, parameter_grid
from engine.market_data.replay import MarketProfile, stable_seed, synthetic_candles
from engine.risk import RiskSettings
from engine.strategies.base import Candles
from engine.strategies.sma_crossover import SmaCrossover

YEAR_MINUTES = 525_600
START_MS = 1_704_067_200_000  # 2024-01-01T00:00Z
CAPITAL = 10_000
FEE = 0.001
UNITS = 10**8
SWEEP = [(5, 20), (9, 21), (10, 30), (12, 26), (15, 45), (20, 50), (20, 100), (30, 90), (50, 150),
         (50, 200)]  # fmt: skip


@dataclass
class Trades:
    """Closed trades as plain arrays, for the comparison."""

    entry_ms: np.ndarray
    exit_ms: np.ndarray
    entry_price: np.ndarray
    exit_price: np.ndarray
    size: np.ndarray
    pnl: np.ndarray


@dataclass
class Timing:
    first: float  # wall seconds of the first call in this process
    warm: list[float]  # wall seconds of the later calls
    cpu: list[float]  # CPU seconds of this process during the later calls

    @property
    def best(self) -> float:
        return min(self.warm) if self.warm else self.first

    @property
    def median(self) -> float:
        return statistics.median(self.warm) if self.warm else self.first

    @property
    def cpu_best(self) -> float:
        return min(self.cpu) if self.cpu else self.first


def timed(run: Callable[[], Any], repeat: int) -> tuple[Timing, Any]:
    started = time.perf_counter()
    result = run()
    timing = Timing(time.perf_counter() - started, [], [])
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.process_time()
        result = run()
        timing.warm.append(time.perf_counter() - started)
        timing.cpu.append(time.process_time() - cpu)
    return timing, result


def table(title: str, rows: list[tuple[str, Timing]]) -> None:
    print(f"\n{title:32s}   first    warm best  warm median   CPU best")
    for name, timing in rows:
        print(
            f"  {name:30s}{seconds(timing.first)}{seconds(timing.best)}"
            f"{seconds(timing.median)}{seconds(timing.cpu_best)}"
        )


def make_candles(minutes: int, seed: int) -> Candles:
    profile = MarketProfile(stable_seed(f"bench:{seed}"), price=60_000.0, daily_volatility=0.03)
    started = time.perf_counter()
    candles = synthetic_candles(profile, "1m", START_MS - START_MS % 60_000, minutes)
    print(f"synthetic data: {minutes:,} 1m candles in {time.perf_counter() - started:.3f} s")
    return candles


def our_units(candles: Candles, result: Any) -> np.ndarray:
    """Our amount of each buy in 1e-8 steps, at the candle that decided it; 0 elsewhere."""
    units = np.zeros(len(candles), dtype=np.int64)
    for fill in result.fills:
        if fill.side == "buy":
            units[fill.index - 1] = int(fill.amount * UNITS)
    return units


def first_rejection_ms(candles: Candles, fast: int, slow: int, result: Any) -> int:
    """Open time of the candle deciding our first order the paper exchange rejected, or
    the end: the first signal that acts on our position without a fill of ours after it.
    """
    signal = SmaCrossover().compute(candles, {"fast": fast, "slow": slow})
    filled = {fill.index - 1 for fill in result.fills}
    holding = False
    for i in np.flatnonzero(signal[:-1]).tolist():
        if (signal[i] > 0) != holding:  # a buy when flat, a sale when holding
            if i not in filled:
                return int(candles.time[i])
            holding = not holding
    return int(candles.time[-1]) + 1


# --- ours ---------------------------------------------------------------------------------
def ours(candles: Candles, fast: int, slow: int) -> Any:
    return run_backtest(
        candles, SmaCrossover(), {"fast": fast, "slow": slow}, capital=Decimal(CAPITAL),
        risk=RiskSettings(), fee_rate=Decimal(repr(FEE)), slippage=Decimal(0),
    )  # fmt: skip


def ours_trades(candles: Candles, result: Any) -> Trades:
    trades = result.trades
    return Trades(
        entry_ms=np.asarray([t.entry_time for t in trades], dtype=np.int64),
        exit_ms=np.asarray([t.exit_time for t in trades], dtype=np.int64),
        entry_price=np.asarray([float(t.entry_price) for t in trades]),
        exit_price=np.asarray([float(t.exit_price) for t in trades]),
        size=np.asarray([float(t.amount) for t in trades]),
        pnl=np.asarray([float(t.pnl) for t in trades]),
    )


# --- backtesting.py -------------------------------------------------------------------------
def backtesting_py(candles: Candles, fast: int, slow: int, units: np.ndarray) -> Any:
    import pandas as pd
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest

    frame = pd.DataFrame(
        {"Open": candles.open, "High": candles.high, "Low": candles.low,
         "Close": candles.close, "Volume": candles.volume},
        index=pd.to_datetime(candles.time, unit="ms"),
    )  # fmt: skip
    signals_of = SmaCrossover().compute

    class Crossover(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.signal = signals_of(candles, {"fast": fast, "slow": slow})

        def next(self) -> None:
            i = len(self.data) - 1
            signal = self.signal[i]
            if signal > 0 and not self.position:
                if units[i] > 0:  # where our order was rejected, no entry
                    self.buy(size=int(units[i]))
            elif signal < 0 and self.position:
                self.position.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        backtest = FractionalBacktest(
            frame, Crossover, cash=1e12, commission=FEE, spread=0.0, trade_on_close=False,
            fractional_unit=1 / UNITS, finalize_trades=False,
        )  # fmt: skip
        return backtest.run()


def backtesting_trades(stats: Any) -> Trades:
    frame = stats["_trades"]
    return Trades(
        entry_ms=frame["EntryTime"].to_numpy().astype("datetime64[ms]").astype(np.int64),
        exit_ms=frame["ExitTime"].to_numpy().astype("datetime64[ms]").astype(np.int64),
        entry_price=frame["EntryPrice"].to_numpy(dtype=np.float64),
        exit_price=frame["ExitPrice"].to_numpy(dtype=np.float64),
        size=frame["Size"].to_numpy(dtype=np.float64),
        pnl=frame["PnL"].to_numpy(dtype=np.float64),
    )


# --- vectorbt -------------------------------------------------------------------------------
def vectorbt_run(candles: Candles, pairs: list[tuple[int, int]], units: np.ndarray) -> Any:
    """``units``: per candle, one column per pair (our amount of each entry, 0 elsewhere)."""
    import pandas as pd
    import vectorbt as vbt

    # A timezone-naive index (UTC by convention): a tz-aware one costs vectorbt ~0.9 s
    # per call converting it to objects, which would not be a fair comparison.
    index = pd.to_datetime(candles.time, unit="ms")
    close = pd.Series(candles.close, index=index)
    price = pd.Series(candles.open, index=index)
    compute = SmaCrossover().compute
    n = len(candles)
    entries = np.zeros((n, len(pairs)), dtype=np.bool_)
    exits = np.zeros((n, len(pairs)), dtype=np.bool_)
    for column, (fast, slow) in enumerate(pairs):
        signal = compute(candles, {"fast": fast, "slow": slow})
        entries[1:, column] = signal[:-1] > 0  # decided on i's close, filled at i+1's open
        exits[1:, column] = signal[:-1] < 0
    size = np.full((n, len(pairs)), np.nan)
    size[1:] = units[:-1] / UNITS
    portfolio = vbt.Portfolio.from_signals(
        close, entries=entries, exits=exits, price=price, size=size, size_type="amount",
        fees=FEE, slippage=0.0, init_cash=1e12, freq="1min",
    )  # fmt: skip
    return portfolio, portfolio.trades.values


def vectorbt_trades(candles: Candles, records: Any, column: int) -> Trades:
    mine = records[(records["col"] == column) & (records["status"] == 1)]
    return Trades(
        entry_ms=candles.time[mine["entry_idx"]],
        exit_ms=candles.time[mine["exit_idx"]],
        entry_price=mine["entry_price"].astype(np.float64),
        exit_price=mine["exit_price"].astype(np.float64),
        size=mine["size"].astype(np.float64),
        pnl=mine["pnl"].astype(np.float64),
    )


# --- stop loss and take profit ----------------------------------------------------------------
def ours_risk(candles: Candles, fast: int, slow: int, stop: float, take: float) -> Any:
    risk = RiskSettings(stop_loss_pct=Decimal(repr(stop)), take_profit_pct=Decimal(repr(take)))
    return run_backtest(
        candles, SmaCrossover(), {"fast": fast, "slow": slow}, capital=Decimal(CAPITAL),
        risk=risk, fee_rate=Decimal(repr(FEE)), slippage=Decimal(0),
    )  # fmt: skip


def backtesting_py_risk(
    candles: Candles, fast: int, slow: int, units: np.ndarray, stop: float, take: float
) -> Any:
    """backtesting.py with our stop loss and take profit, judged on closes in ``next()``."""
    import pandas as pd
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest

    frame = pd.DataFrame(
        {"Open": candles.open, "High": candles.high, "Low": candles.low,
         "Close": candles.close, "Volume": candles.volume},
        index=pd.to_datetime(candles.time, unit="ms"),
    )  # fmt: skip
    signals_of = SmaCrossover().compute
    below, above = 1 - stop / 100, 1 + take / 100

    class CrossoverWithExits(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.signal = signals_of(candles, {"fast": fast, "slow": slow})

        def next(self) -> None:
            i = len(self.data) - 1
            if self.position:
                # Our position's average entry: cost (value plus fee) / amount. Fractional
                # trading scales prices and sizes alike, so the ratios below are unchanged.
                price = self.trades[0].entry_price
                entry = price + price * FEE
                close = self.data.Close[-1]
                if close <= entry * below or close >= entry * above:
                    self.position.close()
                    return
            signal = self.signal[i]
            if signal > 0 and not self.position:
                if units[i] > 0:  # where our order was rejected, no entry
                    self.buy(size=int(units[i]))
            elif signal < 0 and self.position:
                self.position.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        backtest = FractionalBacktest(
            frame, CrossoverWithExits, cash=1e12, commission=FEE, spread=0.0,
            trade_on_close=False, fractional_unit=1 / UNITS, finalize_trades=False,
        )  # fmt: skip
        return backtest.run()


def first(trades: Trades, count: int) -> Trades:
    return Trades(*(getattr(trades, f.name)[:count] for f in fields(Trades)))


# --- optimise -----------------------------------------------------------------------------------
def ours_optimize(candles: Candles, sets: list[dict[str, Any]]) -> Any:
    return optimize(
        candles, SmaCrossover(), sets, capital=Decimal(CAPITAL), risk=RiskSettings(),
        fee_rate=Decimal(repr(FEE)), slippage=Decimal(0),
    )  # fmt: skip


def vectorbt_sweep(candles: Candles, pairs: list[tuple[int, int]]) -> Any:
    import pandas as pd
    import vectorbt as vbt

    index = pd.to_datetime(candles.time, unit="ms")
    close = pd.Series(candles.close, index=index)
    price = pd.Series(candles.open, index=index)
    fast = vbt.MA.run(close, [f for f, _ in pairs], short_name="fast")
    slow = vbt.MA.run(close, [s for _, s in pairs], short_name="slow")
    entries = fast.ma_crossed_above(slow).vbt.fshift(1, fill_value=False)
    exits = fast.ma_crossed_below(slow).vbt.fshift(1, fill_value=False)
    portfolio = vbt.Portfolio.from_signals(
        close, entries=entries, exits=exits, price=price, fees=FEE, init_cash=CAPITAL,
        freq="1min",
    )  # fmt: skip
    return portfolio.total_return().to_numpy()


# --- comparison -----------------------------------------------------------------------------
def before(trades: Trades, end_ms: int) -> Trades:
    keep = trades.exit_ms < end_ms
    return Trades(*(getattr(trades, f.name)[keep] for f in fields(Trades)))


def agreement(name: str, reference: Trades, other: Trades, end_ms: int) -> bool:
    reference, other = before(reference, end_ms), before(other, end_ms)
    if reference.entry_ms.shape != other.entry_ms.shape:
        print(
            f"  {name}: {other.entry_ms.shape[0]} trades vs {reference.entry_ms.shape[0]}: DIFFER"
        )
        return False
    same_times = bool(
        (reference.entry_ms == other.entry_ms).all() and (reference.exit_ms == other.exit_ms).all()
    )

    def gap(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.max(np.abs(a - b) / np.abs(a))) if a.size else 0.0

    prices = max(gap(reference.entry_price, other.entry_price),
                 gap(reference.exit_price, other.exit_price))  # fmt: skip
    sizes = gap(reference.size, other.size)
    pnl = float(np.max(np.abs(reference.pnl - other.pnl))) if reference.pnl.size else 0.0
    ok = same_times and prices < 1e-12 and sizes < 1e-12 and pnl < 1e-6
    print(
        f"  {name}: {other.entry_ms.shape[0]} trades, entry/exit times "
        f"{'identical' if same_times else 'DIFFER'}, prices max rel. diff {prices:.1e}, "
        f"sizes {sizes:.1e}, PnL max abs diff {pnl:.1e} -> {'AGREE' if ok else 'DIFFER'}"
    )
    return ok


def seconds(value: float) -> str:
    return f"{value * 1000:9.1f} ms" if value < 10 else f"{value:9.2f} s "


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=YEAR_MINUTES)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fast", type=int, default=9)
    parser.add_argument("--slow", type=int, default=21)
    parser.add_argument("--repeat", type=int, default=5, help="warm runs of ours and vectorbt")
    parser.add_argument("--bt-repeat", type=int, default=2, help="warm runs of backtesting.py")
    parser.add_argument("--skip-backtesting", action="store_true", help="it takes seconds")
    parser.add_argument("--stop-loss", type=float, default=0.3, help="percent")
    parser.add_argument("--take-profit", type=float, default=0.5, help="percent")
    parser.add_argument(
        "--lasting", type=float, nargs=4, default=(20, 100, 0.5, 1.0),
        metavar=("FAST", "SLOW", "STOP", "TAKE"),
        help="the second risk case, whose budget lasts the year (percent for STOP, TAKE)",
    )  # fmt: skip
    parser.add_argument("--compare-trades", type=int, default=500)
    parser.add_argument("--optimize-sets", type=int, default=38)
    parser.add_argument("--only", choices=("all", "basic", "risk", "optimize"), default="all")
    args = parser.parse_args()

    candles = make_candles(args.minutes, args.seed)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    ok = True
    if args.only in ("all", "risk"):
        ok = risk_case(candles, args, args.fast, args.slow, args.stop_loss, args.take_profit)
        fast, slow, stop, take = args.lasting
        ok = risk_case(candles, args, int(fast), int(slow), stop, take) and ok
    if args.only in ("all", "optimize"):
        optimize_case(candles, args)
    if args.only in ("risk", "optimize"):
        print(f"load average {os.getloadavg()[0]:.2f} at the end")
        return 0 if ok else 1
    return basic_case(candles, args) if ok else 1


def risk_case(
    candles: Candles, args: argparse.Namespace, fast: int, slow: int, stop: float, take: float
) -> bool:
    print(f"\nSMA {fast}/{slow}, stop loss {stop} %, take profit {take} %, on closes")
    ours_time, result = timed(lambda: ours_risk(candles, fast, slow, stop, take), args.repeat)
    started, cpu = time.perf_counter(), time.process_time()
    reference = ours_trades(candles, result)
    ledger = Timing(time.perf_counter() - started, [], [time.process_time() - cpu])
    units = our_units(candles, result)
    reasons: dict[str, int] = {}
    for trade in result.trades:
        reasons[trade.exit_reason] = reasons.get(trade.exit_reason, 0) + 1
    last_fill = result.fills[-1].index / len(candles) if result.fills else 0.0
    print(f"  ours: {result.trade_count} closed trades {reasons}, "
          f"{result.rejected_orders} orders under the 1 USDT minimum, last fill "
          f"{last_fill:.0%} into the candles")  # fmt: skip
    bt_time, stats = timed(
        lambda: backtesting_py_risk(candles, fast, slow, units, stop, take), args.bt_repeat
    )
    theirs = backtesting_trades(stats)
    count = min(args.compare_trades, reference.entry_ms.shape[0])
    same_count = theirs.entry_ms.shape[0] == reference.entry_ms.shape[0]
    print(f"  trade count: ours {reference.entry_ms.shape[0]}, backtesting.py "
          f"{theirs.entry_ms.shape[0]} -> {'SAME' if same_count else 'DIFFER'}")  # fmt: skip
    agree = agreement(f"backtesting.py, first {count} trades", first(reference, count),
                      first(theirs, count), 2**62)  # fmt: skip
    table("wall time, SMA with SL/TP", [("ours (run_backtest)", ours_time),
                                        ("backtesting.py", bt_time)])  # fmt: skip
    print(f"  backtesting.py / ours   {bt_time.best / ours_time.best:8.1f}x  "
          f"{bt_time.cpu_best / ours_time.cpu_best:8.1f}x   (goal >= 200x)")  # fmt: skip
    # backtesting.py's run builds its trade table; ours builds the Decimal one on first
    # access, outside the timing above: here is what it costs, and the ratio with it.
    print(f"  ours, Decimal trade list, built once on first access: "
          f"{seconds(ledger.first).strip()} (CPU {seconds(ledger.cpu_best).strip()})")  # fmt: skip
    print(f"  with it, backtesting.py / ours "
          f"{bt_time.best / (ours_time.best + ledger.first):8.1f}x  "
          f"{bt_time.cpu_best / (ours_time.cpu_best + ledger.cpu_best):8.1f}x")  # fmt: skip
    return agree and same_count


def optimize_case(candles: Candles, args: argparse.Namespace) -> None:
    grid = parameter_grid(SmaCrossover(), limit=args.optimize_sets)
    sets = [dict(s) for s in grid.sets]
    pairs = [(int(s["fast"]), int(s["slow"])) for s in sets]
    print(f"\noptimise: {len(sets)} SMA pairs (fast 2..100 x slow 3..200, fast < slow) "
          f"over {len(candles):,} candles")  # fmt: skip
    repeat = max(1, args.repeat // 2)
    ours_time, found = timed(lambda: ours_optimize(candles, sets), repeat)
    vbt_time, returns = timed(lambda: vectorbt_sweep(candles, pairs), repeat)
    best = found.best
    print(f"  ours: best out-of-sample {best.params if best else None}, "
          f"warnings {list(found.warnings)}; vectorbt: {returns.shape[0]} returns")  # fmt: skip
    table("wall time of the search", [("ours (optimize, IS+OOS)", ours_time),
                                      ("vectorbt (MA.run + from_signals)", vbt_time)])  # fmt: skip
    print(f"  sets per second, warm best: ours {len(sets) / ours_time.best:8.1f}, "
          f"vectorbt {len(sets) / vbt_time.best:8.1f}")  # fmt: skip
    print(f"  vectorbt / ours         {vbt_time.best / ours_time.best:8.2f}x  "
          f"{vbt_time.cpu_best / ours_time.cpu_best:8.2f}x   (goal >= 1x)")  # fmt: skip


def basic_case(candles: Candles, args: argparse.Namespace) -> int:
    print(
        f"{len(candles):,} candles of 1m (seed {args.seed}), SMA {args.fast}/{args.slow}, "
        f"fee {FEE:.1%}, no slippage, next-open fills, size = budget {CAPITAL:,} + realised "
        "PnL, / (1 + fee) / decision close"
    )

    ours_time, result = timed(lambda: ours(candles, args.fast, args.slow), args.repeat)
    started = time.perf_counter()
    reference = ours_trades(candles, result)
    ledger = time.perf_counter() - started
    units = our_units(candles, result)
    end_ms = first_rejection_ms(candles, args.fast, args.slow, result)
    print(
        f"  ours: {result.trade_count} closed trades, total PnL {result.total_pnl}, "
        f"{result.rejected_orders} orders under the 1 USDT minimum; compared: "
        f"{before(reference, end_ms).entry_ms.shape[0]} trades before the first of those"
    )

    vbt_time, (_, records) = timed(
        lambda: vectorbt_run(candles, [(args.fast, args.slow)], units[:, None]), args.repeat
    )
    agree = agreement("vectorbt", reference, vectorbt_trades(candles, records, 0), end_ms)
    if not args.skip_backtesting:
        bt_time, stats = timed(
            lambda: backtesting_py(candles, args.fast, args.slow, units), args.bt_repeat
        )
        agree = agreement("backtesting.py", reference, backtesting_trades(stats), end_ms) and agree

    rows = [("ours (run_backtest)", ours_time), ("vectorbt", vbt_time)]
    if not args.skip_backtesting:
        rows.append(("backtesting.py", bt_time))
    table("wall time of one backtest", rows)
    print(f"  ours, Decimal trade list, built once on first access: {seconds(ledger).strip()}")
    print("\nratios, wall (warm best) and CPU (best)")
    if not args.skip_backtesting:
        print(
            f"  backtesting.py / ours   {bt_time.best / ours_time.best:8.1f}x  "
            f"{bt_time.cpu_best / ours_time.cpu_best:8.1f}x   (goal >= 50x)"
        )
    print(
        f"  vectorbt / ours         {vbt_time.best / ours_time.best:8.2f}x  "
        f"{vbt_time.cpu_best / ours_time.cpu_best:8.2f}x   (goal >= 1x)"
    )

    print(f"\nsweep of {len(SWEEP)} SMA pairs: {', '.join(f'{f}/{s}' for f, s in SWEEP)}")
    sweep_repeat = max(1, args.repeat // 2)
    ours_sweep, results = timed(
        lambda: [ours(candles, fast, slow) for fast, slow in SWEEP], sweep_repeat
    )
    sweep_units = np.stack([our_units(candles, res) for res in results], axis=1)
    vbt_sweep, (_, sweep_records) = timed(
        lambda: vectorbt_run(candles, SWEEP, sweep_units), sweep_repeat
    )
    sweep_agree = all([
        agreement(f"vectorbt {fast}/{slow}", ours_trades(candles, res),
                  vectorbt_trades(candles, sweep_records, column),
                  first_rejection_ms(candles, fast, slow, res))
        for column, ((fast, slow), res) in enumerate(zip(SWEEP, results, strict=True))
    ])  # fmt: skip
    table(
        "wall time of the sweep",
        [("ours (10 runs)", ours_sweep), ("vectorbt (1 call, 10 columns)", vbt_sweep)],
    )
    print(
        f"  vectorbt / ours         {vbt_sweep.best / ours_sweep.best:8.2f}x  "
        f"{vbt_sweep.cpu_best / ours_sweep.cpu_best:8.2f}x (wall, CPU)"
    )
    verdict = "identical" if agree and sweep_agree else "NOT identical"
    print(f"\ntrade lists: {verdict} across the libraries compared")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    return 0 if agree and sweep_agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
