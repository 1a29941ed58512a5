"""Run a bot's strategy over historical candles with the live tick's own rules.

What runs is the bot's code, not a re-implementation of it:

- ``strategy.compute`` once over all candles (the tick computes it on its window;
  the indicators are written so that both give the same signal, bit for bit);
- ``strategy.decide(signal, close, position, params)`` on a candle's close, with
  the position the bot would hold at that moment;
- ``engine.risk`` first, as in ``engine.tick.decide_for_bot``: ``decide_exit``
  (stop loss, breakeven, trailing stop, take profit, targets, on the candle's CLOSE,
  as the tick checks it, with the same state: the highest close since entry, updated
  on every close while holding, and the targets sold, counted on their fill),
  ``cap_buy_quote`` (max position) and ``daily_loss_breached``;
- sizing by the tick's own rule, ``engine.sizing.buy_quote``: the bot's capital
  is a budget (capital plus the PnL its closed trades realised, less the cost,
  fees included, of what it holds), ``cost_rate(fee_rate, slippage)`` of the
  backtest is what a fill costs on top of its quote amount, and a buy of
  ``quote`` is ``quote`` divided by the decision close; a sell is ``position *
  intent.fraction``; amounts are rounded down to the paper exchange's step,
  and orders under its minimum value are rejected as it would;
- fills as the paper exchange fills them: price moved by ``slippage`` against
  the taker, ``fee_rate`` of the fill value paid in the quote currency, and the
  position booked like ``engine.bookkeeping`` (cost includes fees, each sell is
  a trade whose PnL is proceeds minus fee minus its share of the cost).

Fill rule (``FILL_RULE``): a decision on candle ``i``'s close fills at candle
``i + 1``'s open. Live paper bots fill at the decision close itself; on a
continuous market the next open is that price, and using it keeps the backtest
honest on gaps. A decision on the last candle has no next open and is dropped.

Differences from a live bot, on purpose:

- Sizing is the live bot's, so it compounds: a bot that lost half its
  capital buys half as much, one that doubled it twice as much, and one that
  has spent its budget buys nothing (under the paper exchange's minimum order,
  its buys are rejected). A spot long-only bot's equity does not go below
  zero, and the return not below -100 %. What differs: a buy is sized on the
  decision close and paid at the next open, so a gap up of g % between the two
  spends up to g % more than the budget had left (a live paper bot fills at
  the decision price itself); equity could dip under zero by that much only
  if the price then fell to about nothing. And the backtest has no account:
  a live bot's buy is also refused when the user's paper account, which all
  of their bots share, cannot pay it.
- The daily loss limit pauses a live bot until its owner resumes it. Here it
  blocks new buys for the rest of that UTC day (sells and risk exits go on),
  which is what a user who resumes the next morning gets. A close belongs to
  the day of its close time, when the tick evaluates it.

Speed: without risk rules, or with a stop loss, a take profit and/or a trailing
stop and no other risk rule, a strategy that ``decides_on_signal_and_holding``
(crossover, RSI, webhook) needs no decision loop (``_simulate_by_table``):
``decide`` is asked once per signal value, flat and holding, and numpy finds the
events that open or close a position. Sizing compounds (each buy is sized on the
budget the trades before it left), so the fills are then walked one after the
other, with the loop's own float64 expressions, by a compiled walk (``fill_walk``,
numba: a few nanoseconds a trade where Python took ~1.5 µs), which hands back to
Python what float64 cannot decide. With exit levels, a position's average entry
is its fill price times (1 + fee) whatever the size, so the walk compares the
closes after a fill with the levels (or the trail under the highest close since
entry) in float64, a hair looser than the Decimal rule (a close within that margin
is asked of ``decide_exit`` itself), and the exit is the first close past one or
the strategy's next sale, whichever comes first. The table hands
over to the loop for what it cannot express, such as partial sales or buys while
holding. Otherwise the Python loop visits only candles where something can
happen. For a strategy
whose ``decide`` does nothing without a signal (``SIGNAL_DRIVEN``: crossover,
RSI, grid, webhook), those are the candles with a non-zero signal, plus, while
a position is open, the first close at which ``decide_exit`` sells: one numpy
comparison of the closes between two signals against the stop and target
prices (a hair looser than the Decimal rule, and every candidate is confirmed
by ``decide_exit`` itself; with a trailing stop, the running high comes from
``np.maximum.accumulate``). Other strategies (DCA reacts to price alone) are
asked on every candle. The daily loss limit is evaluated lazily with numpy over
the closes since the last fill, only when a buy is about to happen. The equity
curve and its drawdown take one compiled pass (``equity_curve``), the other
statistics are vectorised. A year of 1-minute SMA 9/21 candles
(~28,000 signals; 10,000 USDT at 0.1 % fees, spent after ~4,700 round trips)
takes ~15-17 ms of CPU on a shared 2-core machine, without risk rules as with a
stop loss and a take profit or a trailing stop (~24-27 ms with the walk in Python,
~70-80 ms through the loop), about a third of it the strategy's ``compute``; ~125
ms with targets and breakeven, through the loop. The first backtest of a process
also loads the compiled walk (~0.5 s with importing numba). A bot that never runs
short over such a year (~14,000 round trips) also needs the Decimal budget for a
buy or two in a thousand (see Rounding).

Rounding, in one place each:

- Inside the loop money is float64 (prices, cost, the budget, PnL); amounts
  are integer counts of the paper exchange's step (1e-8), rounded down as the
  exchange does. With the budget the loop carries a bound on its float64 error
  (``FLOAT_ERROR`` for each unit of money traded so far), and a buy's float64
  quotient is floored directly only when it lies farther than that, and than
  1e-12 (relative), from a whole step. Closer, binary rounding could put it on
  the wrong side: there ``_ExactBudget`` books the fills so far in Decimal, as
  the bookkeeping does, and ``engine.sizing.buy_quote`` itself decides (an
  exact amount such as 10.00000000 BTC is not lost to ``9.99999999``). The
  bound grows with the money traded: over a year of minutes with every
  position sized on ~10,000 USDT, one or two buys in a thousand are decided
  so, and booking the fills in Decimal, once, costs ~1.5 µs a fill. The
  average entry handed to ``decide`` and ``decide_exit`` is ``cost / amount``
  in float64, as the tick hands them the float of its stored Decimal.
- ``BacktestResult.trades``, ``fills`` and ``open_position`` are recomputed
  from the fills in ``Decimal`` with exactly the paper exchange's and the
  bookkeeping's arithmetic (no rounding beyond the decimal context's 28
  digits), once, on first access.
- Summary figures come from the float64 equity curve and are rounded once, at
  the end: money to 8 decimals, percentages and the Sharpe ratio to 4. They
  agree with the Decimal trade list to about 1e-11 of the capital.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from functools import cached_property
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from engine.exchanges.paper import AMOUNT_STEP, FEE_RATE, MIN_ORDER_VALUE, SLIPPAGE
from engine.gc_pause import automatic_gc_paused
from engine.risk import (
    ExitState,
    RiskSettings,
    daily_loss_breached,
    decide_exit,
    remembers_prices,
    target_number,
)
from engine.sizing import Budget, buy_quote, cost_rate
from engine.strategies.base import (
    Candles,
    FloatArray,
    Intent,
    PositionState,
    SignalArray,
    Strategy,
)

DAY_MS = 86_400_000
YEAR_MS = 365 * DAY_MS  # crypto trades every day of the year
UNITS = 10**8  # amount steps per unit of the base currency (AMOUNT_STEP = 1e-8)
# An amount in steps computed in float64 is floored directly unless it lies this close
# (relative, plus an absolute floor) to a whole step, where binary rounding could move it
# across: then the tick's own Decimal arithmetic decides. Float error is ~5e-16 relative.
NEAR_STEP = 1e-12
# How far float64 may be from the bookkeeping's Decimal, in units of 2**-53 (one rounding)
# per quote-currency unit of the figures involved. A price's shortest repr, which the tick's
# Decimal holds, is within one such unit of the float, and each operation adds one: a buy's
# value is 6 away, its fee 8, its cost at most 8 of itself; a sale moves at most 9 of its
# value plus the cost it held into the budget, plus 1 of the budget for the sum; a buy's
# quote is at most 5 of the budget, the cost, the position and max_position away, beyond the
# budget's own error. The budget's error bound is the sum of these over the fills so far.
FLOAT_ERROR = 12 * 2.0**-53
# Float pre-filters are this much looser than the Decimal rules they stand for, so they
# never miss a candle; each candidate is then confirmed by the rule itself.
LOOSE = 1e-9
# decide_exit's reasons of a sale of all of it, in its order (fill_walk's codes, from
# STOP_LOSS on)
EXIT_REASONS = ["stop_loss", "trailing_stop", "take_profit"]
SHORT_WINDOW = 16  # closes checked one by one below this, with numpy above
GAP_SEGMENT = 65_536  # candle gaps taken at a time for the candle length (_step_ms)

FILL_RULE = (
    "A decision on candle i's close fills at candle i+1's open. Stop loss, take profit and "
    "the daily loss limit are checked on candle closes, as the live tick checks them; a "
    "decision on the last candle does not fill."
)
SHARPE_FORMULA = (
    "sharpe = mean(r) / std(r, ddof=1) * sqrt(candles per year), r[t] = equity[t] / "
    "equity[t-1] - 1 per candle, candles per year = 365 days / candle length, risk-free rate 0"
)

#: Strategies whose ``decide`` returns None whenever the signal is 0, whatever the price and
#: position: the backtest visits only their signal candles (and risk exits). A strategy class
#: may also say so itself with a boolean ``signal_driven`` attribute.
SIGNAL_DRIVEN = frozenset({"sma_crossover", "rsi", "grid", "signal"})

Q_MONEY = Decimal("0.00000001")
Q_RATIO = Decimal("0.0001")
HUNDRED = Decimal(100)


def is_signal_driven(strategy: Strategy) -> bool:
    """Whether ``strategy.decide`` can only act on a non-zero signal."""
    declared = getattr(strategy, "signal_driven", None)
    if isinstance(declared, bool):
        return declared
    return strategy.info.name in SIGNAL_DRIVEN


def _dec(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def _money(value: float) -> Decimal:
    return _dec(value).quantize(Q_MONEY, ROUND_HALF_EVEN)


def _ratio(value: float) -> Decimal:
    return _dec(value).quantize(Q_RATIO, ROUND_HALF_EVEN)


@dataclass(frozen=True)
class BacktestTrade:
    """One sell, booked like a live Trade row: a round trip, or part of one for partial sells.

    Times are candle open times in ms (UTC) of the fill candles; ``entry_price`` is the
    average buy fill price (slippage included, fees not), ``exit_price`` the sell fill
    price; ``fees`` adds this amount's share of the buy fees and the sell fee;
    ``pnl`` = proceeds - sell fee - cost share (cost includes buy fees), ``pnl_pct`` is of
    that cost share, as the bookkeeping computes them.
    """

    entry_index: int
    exit_index: int
    entry_time: int
    exit_time: int
    entry_price: Decimal
    exit_price: Decimal
    amount: Decimal
    fees: Decimal
    pnl: Decimal
    pnl_pct: Decimal
    exit_reason: str
    entries: int  # buys that built the position (DCA safety orders, grid steps)

    @property
    def entry_at(self) -> datetime:
        return datetime.fromtimestamp(self.entry_time / 1000, UTC)

    @property
    def exit_at(self) -> datetime:
        return datetime.fromtimestamp(self.exit_time / 1000, UTC)


@dataclass(frozen=True)
class BacktestFill:
    """One order as the paper exchange would have filled it."""

    index: int  # the candle whose open filled it; the decision was on the one before
    time: int  # that candle's open time, ms (UTC)
    side: Literal["buy", "sell"]
    amount: Decimal
    price: Decimal  # slippage included
    fee: Decimal  # in the quote currency
    reason: str  # the intent's reason (entry, exit, safety, stop_loss, take_profit...)


@dataclass(frozen=True)
class OpenPosition:
    """What the bot still holds after the last candle, marked at the last close."""

    entry_index: int
    entry_time: int
    amount: Decimal
    average_entry: Decimal  # cost / amount, fees included, like the bot's Position row
    cost: Decimal
    unrealized_pnl: Decimal
    entries: int


@dataclass(frozen=True)
class _Fills:
    """Every fill of a run, in order; the Decimal ledger is replayed from these."""

    index: npt.NDArray[np.int64]  # candle whose open filled it
    side: npt.NDArray[np.int8]  # +1 buy, -1 sell
    units: npt.NDArray[np.int64]  # amount in steps of AMOUNT_STEP
    reason: tuple[str, ...]


@dataclass(frozen=True)
class BacktestResult:
    """Figures of one backtest. Money and percentages are Decimal (see the module docstring
    for where they are rounded); ``equity`` is the float64 curve, one value per candle close.
    """

    strategy: str
    params: Mapping[str, Any]
    capital: Decimal
    fee_rate: Decimal
    slippage: Decimal
    risk: RiskSettings
    candles: int
    start_time: int  # open time (ms, UTC) of the first candle
    end_time: int  # open time of the last candle
    fill_rule: str
    final_equity: Decimal
    total_pnl: Decimal
    total_pnl_pct: Decimal
    max_drawdown_pct: Decimal
    win_rate_pct: Decimal | None  # of closed trades; None without any
    sharpe: Decimal | None  # SHARPE_FORMULA; None for a flat curve or one at or below zero
    exposure_pct: Decimal  # candles closed while holding a position
    buy_and_hold_pct: Decimal  # first candle's open to last candle's close, no fees
    trade_count: int
    rejected_orders: int  # below the paper exchange's minimum (amount or value)
    blocked_entries: int  # buys refused for the rest of a day by the daily loss limit
    equity: FloatArray = field(repr=False, compare=False)
    _fills: _Fills = field(repr=False, compare=False)
    _times: npt.NDArray[np.int64] = field(repr=False, compare=False)
    _opens: FloatArray = field(repr=False, compare=False)
    _last_close: float = field(repr=False, compare=False)

    @property
    def sharpe_formula(self) -> str:
        return SHARPE_FORMULA

    @cached_property
    def _ledger(self) -> _Ledger:
        return _replay(self._fills, self._times, self._opens, self._last_close, self)

    @property
    def trades(self) -> tuple[BacktestTrade, ...]:
        """Closed trades in Decimal, computed from the fills on first access."""
        return self._ledger.trades

    @property
    def fills(self) -> tuple[BacktestFill, ...]:
        """Every buy and sell in Decimal, computed on first access."""
        return self._ledger.fills

    @property
    def open_position(self) -> OpenPosition | None:
        return self._ledger.open_position


@dataclass(frozen=True)
class _Ledger:
    trades: tuple[BacktestTrade, ...]
    fills: tuple[BacktestFill, ...]
    open_position: OpenPosition | None


def _replay(
    fills: _Fills,
    times: npt.NDArray[np.int64],
    opens: FloatArray,
    last_close: float,
    result: BacktestResult,
) -> _Ledger:
    """The fills booked exactly as PaperGateway and engine.bookkeeping book them."""
    buy_factor = 1 + result.slippage
    sell_factor = 1 - result.slippage
    fee_rate = result.fee_rate
    zero = Decimal(0)
    trades: list[BacktestTrade] = []
    booked: list[BacktestFill] = []
    amount = cost = gross = zero  # gross: buy value without fees, for the average fill price
    entries = 0
    opened = -1
    for index, side, units, reason in zip(
        fills.index.tolist(), fills.side.tolist(), fills.units.tolist(), fills.reason, strict=True
    ):
        quantity = Decimal(units) * AMOUNT_STEP
        market = _dec(opens[index])
        if side > 0:
            price = market * buy_factor
            value = quantity * price
            fee = value * fee_rate
            booked.append(
                BacktestFill(index, int(times[index]), "buy", quantity, price, fee, reason)
            )
            if amount == 0:
                opened, entries, cost, gross = index, 0, zero, zero
            amount += quantity
            cost += value + fee
            gross += value
            entries += 1
            continue
        price = market * sell_factor
        value = quantity * price
        fee = value * fee_rate
        booked.append(BacktestFill(index, int(times[index]), "sell", quantity, price, fee, reason))
        cost_share = cost * quantity / amount
        gross_share = gross * quantity / amount
        pnl = value - fee - cost_share
        trades.append(
            BacktestTrade(
                entry_index=opened,
                exit_index=index,
                entry_time=int(times[opened]),
                exit_time=int(times[index]),
                entry_price=gross / amount,
                exit_price=price,
                amount=quantity,
                fees=fee + cost_share - gross_share,
                pnl=pnl,
                pnl_pct=pnl / cost_share * 100 if cost_share else zero,
                exit_reason=reason,
                entries=entries,
            )
        )
        amount -= quantity
        cost -= cost_share
        gross -= gross_share
        if amount <= AMOUNT_STEP:  # the bookkeeping deletes a position down to dust
            amount = cost = gross = zero
    position = None
    if amount > 0:
        position = OpenPosition(
            entry_index=opened,
            entry_time=int(times[opened]),
            amount=amount,
            average_entry=cost / amount,
            cost=cost,
            unrealized_pnl=amount * _dec(last_close) - cost,
            entries=entries,
        )
    return _Ledger(tuple(trades), tuple(booked), position)


FLAT = PositionState()
_POSITION_FIELDS = ("amount", "average_entry", "entries")


def _position_factory() -> Callable[[float, float, int], PositionState]:
    """``PositionState(amount, average_entry, entries)``, twice as fast where that is safe.

    A frozen dataclass' ``__init__`` sets each field through ``object.__setattr__``; the
    loop builds one PositionState per fill, and this was a tenth of a year-long run. Filling
    the instance dict directly is equivalent while the class is exactly these three fields
    with no ``__post_init__``; if it ever changes, the real constructor is used.
    """
    plain = (
        tuple(f.name for f in fields(PositionState)) == _POSITION_FIELDS
        and not hasattr(PositionState, "__post_init__")
        and not hasattr(PositionState, "__slots__")
    )
    if not plain:
        return PositionState
    new = object.__new__

    def position(amount: float, average_entry: float, entries: int) -> PositionState:
        state: PositionState = new(PositionState)
        values = state.__dict__
        values["amount"] = amount
        values["average_entry"] = average_entry
        values["entries"] = entries
        return state

    return position


_position = _position_factory()


def _steps(x: float) -> int | None:
    """``floor(x)`` for an amount in steps, or None when too close to a step to trust float64."""
    whole = int(x)
    part = x - whole
    margin = x * NEAR_STEP + 1e-9
    if part < margin or part > 1.0 - margin:
        return None
    return whole


def _exact_buy_steps(quote: Decimal, price: float) -> int:
    """The tick's amount (quote / decision price) rounded down like the paper exchange."""
    amount = (quote / _dec(price)).quantize(AMOUNT_STEP, ROUND_DOWN)
    return int(amount * UNITS)


def _exact_sell_steps(held: int, fraction: float | Decimal) -> int:
    """The tick's amount (position * fraction) rounded down like the paper exchange."""
    exact = fraction if isinstance(fraction, Decimal) else _dec(fraction)
    amount = (Decimal(held) * AMOUNT_STEP * exact).quantize(AMOUNT_STEP, ROUND_DOWN)
    return int(amount * UNITS)


_Ints = Sequence[int] | npt.NDArray[np.int64]  # fills' candles or steps: a list, array, numpy


def _decimal_prices(prices: FloatArray) -> list[Decimal]:
    """``_dec`` of each price (its shortest repr), faster for prices on the 1e-8 grid.

    Below 2**25 a float's unit in the last place is under 1e-8, so when ``round(x * 1e8)
    / 1e8`` gives ``x`` back, that multiple of 1e-8 is the only one within half a unit of
    ``x``: it is the shortest repr's value, whatever digits the repr would have shown.
    Exchange prices are such multiples; any other is converted through its repr.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.rint(prices * UNITS)
        on_grid = (np.abs(prices) < 2.0**25) & (scaled / UNITS == prices)
    whole: list[int] = np.where(on_grid, scaled, 0.0).astype(np.int64).tolist()
    return [
        Decimal(count) * AMOUNT_STEP if fits else Decimal(repr(price))
        for count, fits, price in zip(whole, on_grid.tolist(), prices.tolist(), strict=True)
    ]


class _ExactBudget:
    """The bot's budget in Decimal, booked from its fills as the bookkeeping books them.

    Asked only where float64 cannot say for sure what ``engine.sizing.buy_quote`` gives
    (rare): it books the fills it has not seen yet, exactly as ``_replay`` does (realised
    PnL = proceeds - fee - cost share per sell; committed = the open position's cost,
    fees included), and asks ``buy_quote`` itself.
    """

    def __init__(self, setup: _Setup, opens: FloatArray) -> None:
        self.setup = setup
        self.opens = opens
        self.buy_factor = 1 + setup.slippage
        self.sell_factor = 1 - setup.slippage
        self.cost_rate = cost_rate(setup.fee_rate, setup.slippage)
        self.booked = 0  # fills booked so far
        self.units = 0  # held, in steps of AMOUNT_STEP
        self.cost = Decimal(0)
        self.realized = Decimal(0)

    def _book(self, fill_index: _Ints, fill_steps: _Ints) -> None:
        fee_rate, buy_factor, sell_factor = self.setup.fee_rate, self.buy_factor, self.sell_factor
        units, cost, realized = self.units, self.cost, self.realized
        start = self.booked
        candles = np.asarray(fill_index[start:], dtype=np.int64)
        steps_of: list[int] = np.asarray(fill_steps[start:], dtype=np.int64).tolist()
        for steps, market in zip(steps_of, _decimal_prices(self.opens[candles]), strict=True):
            quantity = Decimal(abs(steps)) * AMOUNT_STEP
            if steps > 0:
                value = quantity * (market * buy_factor)
                if not units:
                    cost = Decimal(0)
                units += steps
                cost += value + value * fee_rate
                continue
            value = quantity * (market * sell_factor)
            share = cost * quantity / (Decimal(units) * AMOUNT_STEP)
            realized += value - value * fee_rate - share
            units += steps
            cost -= share
            if units <= 1:  # down to dust: the bookkeeping deletes the position
                units, cost = 0, Decimal(0)
        self.units, self.cost, self.realized = units, cost, realized
        self.booked = len(fill_steps)

    def buy_steps(
        self, fill_index: _Ints, fill_steps: _Ints, fraction: float, price: float
    ) -> int | None:
        """The tick's buy after these fills (candles and signed steps), in steps; None where
        it places no order.
        """
        self._book(fill_index, fill_steps)
        decision_price = _dec(price)
        quote = buy_quote(
            Budget(self.setup.capital, self.realized, self.cost),
            symbols=1,
            fraction=_dec(fraction),
            position_value=Decimal(self.units) * AMOUNT_STEP * decision_price,
            risk=self.setup.risk,
            cost_rate=self.cost_rate,
        )
        if quote <= 0:
            return None
        return _exact_buy_steps(quote, price)


def _exit_filters(average: float, risk: RiskSettings, targets_hit: int) -> tuple[float, float]:
    """Float thresholds a little looser than decide_exit's Decimal ones, for a pre-filter:
    a close at or under the first can sell (stop loss, breakeven), and one at or over the
    second (take profit, the next target). The trailing stop has its own (_TrailFilter).
    """
    entry = _dec(average)
    stop_below, take_above = -math.inf, math.inf
    if risk.stop_loss_pct is not None:
        stop_below = float(entry * (1 - risk.stop_loss_pct / HUNDRED)) * (1 + LOOSE)
    if risk.breakeven and targets_hit >= 1:
        stop_below = max(stop_below, float(entry) * (1 + LOOSE))
    if risk.take_profit_pct is not None:
        take_above = float(entry * (1 + risk.take_profit_pct / HUNDRED)) * (1 - LOOSE)
    if targets_hit < len(risk.targets):
        target = float(entry * (1 + risk.targets[targets_hit].profit_pct / HUNDRED)) * (1 - LOOSE)
        take_above = min(take_above, target)
    return stop_below, take_above


def _trail_filter(average: float, risk: RiskSettings) -> tuple[float, float]:
    """The trailing stop's pre-filter: ``(arm, factor)``: a close can sell once the high since
    entry is at or over ``arm``, when it is at or under that high times ``factor``.
    """
    if risk.trailing_stop_pct is None:
        return math.inf, -math.inf
    arm = -math.inf
    if risk.trailing_arm_pct is not None:
        arm = float(_dec(average) * (1 + risk.trailing_arm_pct / HUNDRED)) * (1 - LOOSE)
    return arm, float(1 - risk.trailing_stop_pct / HUNDRED) * (1 + LOOSE)


class _DailyLossWatch:
    """Which UTC day has reached the daily loss limit, evaluated lazily over candle closes.

    A candle's close belongs to the day of its close time (open time + candle length),
    when the tick evaluates it; a sell's realised PnL to the day of its fill.
    """

    def __init__(
        self, candles: Candles, step_ms: int, capital: Decimal, risk: RiskSettings
    ) -> None:
        self.capital = capital
        self.risk = risk
        self.closes = np.asarray(candles.close, dtype=np.float64)
        times = np.asarray(candles.time, dtype=np.int64)
        self.fill_day = times // DAY_MS
        self.day = (times + step_ms) // DAY_MS
        self.limit = float(capital * (risk.daily_loss_limit_pct or 0) / HUNDRED)
        self.watched = 0  # closes before this candle have been evaluated
        self.blocked_day = -1
        self.realized_day = -1
        self.realized = 0.0

    def advance(self, upto: int, units: int, cost: float) -> None:
        """Evaluate closes ``[watched, upto]``, over which the bot held ``units`` for ``cost``."""
        start = self.watched
        if upto < start:
            return
        self.watched = upto + 1
        if self.blocked_day == int(self.day[upto]):
            return  # that day is blocked already, and so was every earlier one that counts
        days = self.day[start : upto + 1]
        realized = np.where(days == self.realized_day, self.realized, 0.0)
        if units:
            unrealized = units / UNITS * self.closes[start : upto + 1] - cost
        else:
            if self.realized > -self.limit * (1 - LOOSE):
                return  # flat, and today's realised result is above the limit
            unrealized = np.zeros(days.shape[0])
        loss = -(realized + unrealized)
        for offset in np.flatnonzero(loss >= self.limit * (1 - LOOSE)).tolist():
            day = int(days[offset])
            if day != self.blocked_day and daily_loss_breached(
                _dec(realized[offset]), _dec(unrealized[offset]), self.capital, self.risk
            ):
                self.blocked_day = day

    def blocks(self, j: int) -> bool:
        return self.blocked_day == int(self.day[j])

    def realize(self, fill_at: int, pnl: float) -> None:
        day = int(self.fill_day[fill_at])
        if day != self.realized_day:
            self.realized_day, self.realized = day, 0.0
        self.realized += pnl


def _step_ms(times: npt.NDArray[np.int64]) -> int:
    """The candle length: the shortest gap between two candles (a minute for one candle)."""
    count = times.shape[0]
    if count < 2:
        return 60_000
    # A segment at a time, so that each segment's gaps are read back from the cache.
    shortest = 0
    for first in range(0, count - 1, GAP_SEGMENT):
        end = min(first + GAP_SEGMENT, count - 1)
        gap = int((times[first + 1 : end + 1] - times[first:end]).min())
        shortest = gap if first == 0 else min(shortest, gap)
    if shortest <= 0:
        raise ValueError("candle times must increase")
    return shortest


class AmountOutOfRange(ValueError):
    """A buy of more than the backtest can count: amounts are int64 counts of the paper
    exchange's step (1e-8), up to about 92 billion units of the base currency; a large
    capital on a coin priced in millionths of a quote unit goes beyond.
    """


@dataclass(frozen=True)
class _Setup:
    """What one backtest runs on, validated."""

    candles: Candles
    step_ms: int
    strategy: Strategy
    params: Mapping[str, Any]
    capital: Decimal
    risk: RiskSettings
    fee_rate: Decimal
    slippage: Decimal

    @property
    def cost_rate(self) -> Decimal:
        """What a fill costs on top of its quote amount, as ``buy_quote`` counts it."""
        return cost_rate(self.fee_rate, self.slippage)


@dataclass
class _Run:
    fill_index: npt.NDArray[np.int64]  # candle whose open fills it
    fill_steps: npt.NDArray[np.int64]  # amount in steps, + bought / - sold
    dust: list[tuple[int, int]]  # (fill number, steps) left behind when a position closed
    reasons: list[str]
    trade_pnl: FloatArray  # float64 PnL of each sell, for the win rate
    rejected: int
    blocked: int


def _simulate(
    setup: _Setup,
    signals: npt.NDArray[np.int8],
    events: npt.NDArray[np.int64],
    progress: Callable[[float], None] | None,
) -> _Run:
    """The decision loop over ``events`` (candle indices) and the risk exits between them.

    It runs once per signal, tens of thousands of times for a year of minutes, so the
    position lives in plain locals (attribute lookups were a third of the cost), and buys and
    sells are booked inline, in one place each for strategy and risk decisions alike.
    A fill costs two ``array.append`` calls (numpy reads the buffers without a copy).
    """
    candles, params, capital, risk = setup.candles, setup.params, setup.capital, setup.risk
    fee_rate, slippage = float(setup.fee_rate), float(setup.slippage)
    n = len(candles)
    closes = np.asarray(candles.close, dtype=np.float64)
    opens = np.asarray(candles.open, dtype=np.float64)
    buy_factor, sell_factor = 1.0 + slippage, 1.0 - slippage
    capital_f = float(capital)
    inv_cost = 1.0 / float(1 + setup.cost_rate)
    min_value = float(MIN_ORDER_VALUE)
    capped = risk.max_position is not None
    max_position_f = float(risk.max_position) if risk.max_position is not None else 0.0
    exact_budget = _ExactBudget(setup, opens)
    # With a trailing stop or targets, the exits depend on the highest close since entry
    # and the targets sold: every close while holding is looked at (with numpy, a float
    # pre-filter and decide_exit on each candidate), carrying that state like the tick.
    remembers = remembers_prices(risk)
    exits_on = remembers or risk.stop_loss_pct is not None or risk.take_profit_pct is not None
    trailing = risk.trailing_stop_pct is not None
    watch = (
        _DailyLossWatch(candles, setup.step_ms, capital, risk)
        if risk.daily_loss_limit_pct
        else None
    )
    decide = setup.strategy.decide
    event_index: list[int] = events.tolist()
    # Per visited candle: its signal, its close, and the open its decision would fill at.
    event_data: list[tuple[int, float, float]] = list(
        zip(
            signals[events].tolist(),
            closes[events].tolist(),
            opens[np.minimum(events + 1, n - 1)].tolist(),
            strict=True,
        )
    )

    units = 0  # amount held, in steps of AMOUNT_STEP
    cost = 0.0  # quote spent on it, fees included
    budget = capital_f  # capital plus the PnL of every sell so far (Budget.total, unclamped)
    budget_error = FLOAT_ERROR * capital_f  # bound on the float64 error of budget plus cost's
    average = 0.0
    entries = 0
    state = FLAT
    stop_below, take_above = -math.inf, math.inf
    arm_above, trail_factor = _trail_filter(0.0, risk)
    high = -math.inf  # highest close since entry (ExitState.highest_price), -inf before one
    targets_hit = 0
    exit_fraction = Decimal(1)  # of the exit being filled (targets sell a part)
    fill_index, fill_steps = array("q"), array("q")
    add_index, add_steps = fill_index.append, fill_steps.append
    dust: list[tuple[int, int]] = []
    reasons: list[str] = []
    add_reason = reasons.append
    trade_pnl: list[float] = []
    add_pnl = trade_pnl.append
    rejected = blocked = 0

    def first_exit(first: int, last: int) -> tuple[int, str, Decimal] | None:
        """The first close in ``[first, last]`` where ``decide_exit`` sells, with its reason and
        fraction; the highest close since entry is carried up to it (or to ``last``).
        """
        nonlocal high
        while first <= last:
            if last - first < SHORT_WINDOW:  # asked every candle (DCA): numpy costs more here
                for candle in range(first, last + 1):
                    close = float(closes[candle])
                    if close > high:
                        high = close
                    if (
                        close <= stop_below
                        or close >= take_above
                        or (high >= arm_above and close <= high * trail_factor)
                    ) and (hit := confirmed(close)) is not None:
                        return candle, *hit
                return None
            window = closes[first : last + 1]
            hits = (window <= stop_below) | (window >= take_above)
            if trailing:
                highs = np.maximum.accumulate(window)
                np.maximum(highs, high, out=highs)
                hits |= (highs >= arm_above) & (window <= highs * trail_factor)
            offset = int(hits.argmax())
            if not hits[offset]:
                if remembers:
                    high = max(high, float(window.max()))
                return None
            candle = first + offset
            if remembers:
                high = max(high, float(window[: offset + 1].max()))
            if (hit := confirmed(float(closes[candle]))) is not None:
                return candle, *hit
            first = candle + 1  # a near miss of the float pre-filter
        return None

    def confirmed(close: float) -> tuple[str, Decimal] | None:
        """decide_exit's reason and fraction at ``close``, with the state up to it."""
        remembered = ExitState(_dec(high) if high > -math.inf else None, targets_hit)
        verdict = decide_exit(state, close, risk, remembered)
        return None if verdict.reason is None else (verdict.reason, verdict.fraction)

    report_every = max(n // 20, 1)
    next_report = report_every if progress is not None else n + 1
    i, m = 0, len(event_index)
    start = 0  # first close not yet checked for a risk exit
    intent: Intent | None
    while True:
        if i < m:
            j = event_index[i]
        elif exits_on and units and start < n:
            j = n - 1  # no signal left: only risk exits can happen
        else:
            break
        if exits_on and units and (hit := first_exit(start, j)) is not None:
            # Risk first: on this close the strategy is not asked.
            j, reason, exit_fraction = hit
            intent = Intent("sell", float(exit_fraction), reason)
            price = float(closes[j])
            next_open = float(opens[j + 1]) if j + 1 < n else price
            start = j + 1
            if i < m and event_index[i] == j:
                i += 1
        elif i < m:
            signal, price, next_open = event_data[i]
            i += 1
            start = j + 1
            exit_fraction = Decimal(1)
            if j >= next_report:
                assert progress is not None
                progress(j / n)
                next_report = (j // report_every + 1) * report_every
            intent = decide(signal, price, state, params)
            if intent is None:
                continue
        else:
            break
        fill_at = j + 1
        if fill_at >= n:
            continue  # decided on the last close: nothing fills
        if watch is not None:
            watch.advance(j, units, cost)
        if intent.side == "buy":
            if watch is not None and watch.blocks(j):
                blocked += 1
                continue
            fraction = intent.fraction
            if fraction <= 0.0:
                continue  # buy_quote gives nothing: the tick places nothing
            # engine.sizing.buy_quote in float64 (one symbol), where float64 error cannot
            # change the step count; elsewhere buy_quote itself decides, in Decimal.
            total = budget
            if total < 0.0:
                total = 0.0
            free = total - cost
            if free < 0.0:
                free = 0.0
            quote = total * fraction
            held_value = 0.0
            if capped:
                held_value = units / UNITS * price
                if max_position_f - held_value < quote:
                    quote = max_position_f - held_value
                if quote < 0.0:
                    quote = 0.0
            room = free * inv_cost
            if room < quote:
                quote = room
            error = budget_error + FLOAT_ERROR * (total + cost + held_value + max_position_f)
            error *= max(1.0, fraction)
            bought = -1
            if quote > error:
                per_unit = UNITS / price
                steps = quote * per_unit
                whole = int(steps)
                margin = steps * NEAR_STEP + 1e-9 + error * per_unit
                if margin < steps - whole < 1.0 - margin:
                    bought = whole
                elif int(steps + margin) / UNITS * (next_open * buy_factor) < min_value:
                    bought = 0  # rejected whichever step float64 missed
            if bought < 0:  # too close to call in float64
                exact = exact_budget.buy_steps(fill_index, fill_steps, fraction, price)
                if exact is None:
                    continue  # nothing left to spend: the tick places nothing
                bought = exact
            value = bought / UNITS * (next_open * buy_factor)
            if bought <= 0 or value < min_value:
                rejected += 1
                continue
            if not units:
                cost, entries = 0.0, 0
                high, targets_hit = -math.inf, 0  # a new position: its exit state afresh
            units += bought
            cost += value + value * fee_rate
            budget_error += FLOAT_ERROR * cost
            entries += 1
            average = cost * UNITS / units
            state = _position(units / UNITS, average, entries)
            if exits_on:
                stop_below, take_above = _exit_filters(average, risk, targets_hit)
                arm_above, trail_factor = _trail_filter(average, risk)
            add_index(fill_at)
            add_steps(bought)
            add_reason(intent.reason)
            continue
        held = units
        fraction = intent.fraction
        if not held or fraction <= 0:
            continue  # the tick places nothing
        if fraction >= 1.0:
            sold = held
        elif exit_fraction < 1:  # a target's share, in Decimal as the tick takes it
            sold = _exact_sell_steps(held, exit_fraction)
        else:
            sold = _steps(held * fraction) or _exact_sell_steps(held, fraction)
        value = sold / UNITS * (next_open * sell_factor)
        if sold <= 0 or value < min_value:
            rejected += 1
            continue
        cost_share = cost * sold / held
        pnl = value - value * fee_rate - cost_share
        budget += pnl
        budget_error += FLOAT_ERROR * (value + cost + (budget if budget > 0.0 else -budget))
        units = held - sold
        cost -= cost_share
        if units <= 1:  # down to dust: the bookkeeping deletes the position
            if units:
                dust.append((len(fill_index), units))
            units, cost, entries, state = 0, 0.0, 0, FLAT
            stop_below, take_above = -math.inf, math.inf
            arm_above, trail_factor = _trail_filter(0.0, risk)
        else:  # a partial sell keeps the average entry
            state = _position(units / UNITS, average, entries)
            target = target_number(intent.reason) if remembers else None
            if target is not None and target > targets_hit:  # counted once it fills
                targets_hit = target
                stop_below, take_above = _exit_filters(average, risk, targets_hit)
        add_index(fill_at)
        add_steps(-sold)
        add_reason(intent.reason)
        add_pnl(pnl)
        if watch is not None:
            watch.realize(fill_at, pnl)
    return _Run(
        _int64s(fill_index),
        _int64s(fill_steps),
        dust,
        reasons,
        np.asarray(trade_pnl, dtype=np.float64),
        rejected,
        blocked,
    )


def _no_risk_rules(risk: RiskSettings) -> bool:
    return (
        risk.stop_loss_pct is None
        and risk.take_profit_pct is None
        and risk.max_position is None
        and not risk.daily_loss_limit_pct
        and not remembers_prices(risk)  # trailing stop, targets (and breakeven with them)
    )


def _only_exit_levels(risk: RiskSettings) -> bool:
    """A stop loss, a take profit or a trailing stop (any of them), and no other risk rule
    (no targets: they sell part of a position; breakeven acts only after a target).
    """
    return (
        (
            risk.stop_loss_pct is not None
            or risk.take_profit_pct is not None
            or risk.trailing_stop_pct is not None
        )
        and risk.max_position is None
        and not risk.daily_loss_limit_pct
        and not risk.targets
    )


def _simulate_by_table(
    setup: _Setup,
    signals: npt.NDArray[np.int8],
    events: npt.NDArray[np.int64],
    progress: Callable[[float], None] | None = None,
) -> _Run | None:
    """``_simulate``'s run without risk rules, or with a stop loss, a take profit and/or a
    trailing stop and no other (``_only_exit_levels``), looping over its fills only
    (``_walk_table``); None where only the loop can say.
    """
    if not setup.strategy.decides_on_signal_and_holding:
        return None
    if not (_no_risk_rules(setup.risk) or _only_exit_levels(setup.risk)):
        return None
    return _walk_table(setup, signals, events, progress)


def _walk_table(
    setup: _Setup,
    signals: npt.NDArray[np.int8],
    events: npt.NDArray[np.int64],
    progress: Callable[[float], None] | None,
) -> _Run | None:
    """``_simulate``'s run, looping over its fills only; None where only the loop can say.

    It applies when the strategy ``decides_on_signal_and_holding`` and no risk rule acts
    but a stop loss, a take profit or a trailing stop (``_simulate_by_table``): ``decide``
    is then asked once per
    signal value, flat and holding, and that table says of each event whether it opens a
    position (a buy when flat), closes one (a sale of all of it when holding) or does
    nothing in either state. The events that open or close ("setters") are found with
    numpy, and so is, after each setter that opens, the next that closes, and the other
    way round. Sizing compounds (a buy is sized on the budget the trades before it left),
    so the fills are found in order by the compiled walk (``fill_walk.walk``), from one to
    the next: a buy at the next setter that opens, its sale at the next that closes (or at
    a level, below); never visiting the candles or the events that do nothing. Its
    amounts, values, cost, budget and PnL are the loop's own float64 expressions in the
    same order, so every figure is the loop's, bit for bit (a test holds it). An order the
    paper exchange rejects leaves the position, and so the budget, as it was. What float64
    cannot decide, the walk hands back and this function answers in Python: a buy too
    close to a whole step (``_ExactBudget``), a close within ``LOOSE`` of an exit level
    (``decide_exit`` itself).

    With a stop loss, a take profit or a trailing stop (``_only_exit_levels``), a
    position's sale is the first of: a close at or past a level, or at or under the trail
    from the highest close since entry (risk first, as in the loop: on that close the
    strategy is not asked), or the next setter that closes. Whatever the size bought, a
    position's average entry is its fill price times (1 + fee) to a few units in the last
    place, so the walk compares each close from the fill on with the levels in float64, a
    hair looser than ``decide_exit`` (``LOOSE``), up to the first close past one
    (``fill_walk._sale``); a close clearly past a level is that rule's verdict, and one
    within the margin is asked of ``decide_exit`` itself. A sale under the minimum is
    rejected, and every later close past a level and setter that closes is another
    order, until one is accepted.

    The loop runs instead (None) for what the table cannot express: a value that opens
    when flat and also closes when holding, buys while holding or partial sales, and
    prices whose float64 steps (or, with a level, fill prices) are not finite.
    """
    # numba and the compiled walk: loaded by the first backtest, not by every process.
    from engine.backtest import fill_walk

    strategy, risk = setup.strategy, setup.risk
    if signals.dtype != np.int8:
        return None  # the table is indexed by the signal's byte
    candles, params = setup.candles, setup.params
    n = len(candles)
    closes = np.asarray(candles.close, dtype=np.float64)
    opens = np.asarray(candles.open, dtype=np.float64)
    fee_rate, slippage = float(setup.fee_rate), float(setup.slippage)
    min_value = float(MIN_ORDER_VALUE)

    # The table, indexed by the signal's byte (int8 viewed as uint8): +1 opens, -1 closes.
    codes = signals[events].view(np.uint8)
    kind_of = np.zeros(256, dtype=np.int8)
    fraction_of = np.zeros(256, dtype=np.float64)
    reason_of = np.zeros(256, dtype=np.intp)
    reasons: list[str] = []
    sample = float(closes[0])
    holding = _position(1.0, sample, 1)
    for code in np.flatnonzero(np.bincount(codes, minlength=256)).tolist():
        signal = code - 256 if code > 127 else code
        when_flat = strategy.decide(signal, sample, FLAT, params)
        when_holding = strategy.decide(signal, sample, holding, params)
        if any(not math.isfinite(i.fraction) for i in (when_flat, when_holding) if i):
            return None  # the loop says what a broken intent does
        # A buy of a fraction <= 0 gets nothing from buy_quote: the tick places nothing.
        opens_position = (
            when_flat is not None and when_flat.side == "buy" and when_flat.fraction > 0
        )
        closes_position = False
        if when_holding is not None and when_holding.side == "sell":
            if when_holding.fraction >= 1.0:
                closes_position = True
            elif when_holding.fraction > 0:
                return None  # a partial sale
        elif when_holding is not None and when_holding.fraction > 0:
            return None  # a buy while holding
        if opens_position and closes_position:
            return None
        intent = when_flat if opens_position else when_holding
        if intent is None or not (opens_position or closes_position):
            continue
        kind_of[code] = 1 if opens_position else -1
        fraction_of[code] = intent.fraction
        reason_of[code] = len(reasons)
        reasons.append(intent.reason)

    kinds = kind_of[codes]
    setters = np.flatnonzero(kinds)
    setters = setters[events[setters] < n - 1]  # decided on the last close: nothing fills
    setting = kinds[setters]
    buys = setters[setting > 0]  # positions in events of the setters that open...
    sells = setters[setting < 0]  # ...and of those that close
    buy_at, sell_at = events[buys], events[sells]  # the candles deciding them
    exits = not _no_risk_rules(risk)  # _only_exit_levels: the loop's own rules otherwise
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        per_unit_of = UNITS / closes[buy_at]
        if not bool(np.isfinite(per_unit_of).all()):
            return None  # a zero or broken price: the loop says what the tick does
    fractions = fraction_of[codes[buys]]
    scales = np.maximum(fractions, 1.0)
    buy_prices = opens[buy_at + 1] * (1.0 + slippage)
    buy_count = int(buys.shape[0])
    sell_reason_at = reason_of[codes[sells]]  # of each closing setter, in reasons
    reasons += EXIT_REASONS  # decide_exit's, after the strategy's
    reasons_before = len(reasons) - len(EXIT_REASONS)
    last = n - 2  # the last close whose decision fills
    stop_ratio = take_ratio = 0.0
    trailing = risk.trailing_stop_pct is not None
    arm_ratio, trail_ratio = -math.inf, 0.0  # armed at this high / entry; sells under high *
    entry = np.empty(0, dtype=np.float64)
    if exits:
        # A position's average entry, as the loop computes it (cost * UNITS / units), is
        # this to a few units in the last place, whatever amount was bought.
        entry = opens[buy_at + 1] * (1.0 + slippage) * (1.0 + fee_rate)
        if not bool(np.isfinite(entry).all()):
            return None
        stop_pct, take_pct = risk.stop_loss_pct, risk.take_profit_pct
        stop_ratio = 1.0 - float(stop_pct) / 100.0 if stop_pct is not None else -math.inf
        take_ratio = 1.0 + float(take_pct) / 100.0 if take_pct is not None else math.inf
        if risk.trailing_stop_pct is not None:
            # The loop's running high and the walk's agree on finite closes only.
            if not bool(np.isfinite(closes).all()):
                return None
            trail_ratio = 1.0 - float(risk.trailing_stop_pct) / 100.0
            if risk.trailing_arm_pct is not None:
                arm_ratio = 1.0 + float(risk.trailing_arm_pct) / 100.0

    def exit_reason(candle: int, cost: float, bought: int, high: float) -> str | None:
        """decide_exit's verdict at this close on the position held (``bought`` steps for
        ``cost``), whose highest close since entry, this one included, is ``high`` (-inf
        without a trailing stop).
        """
        position = _position(bought / UNITS, cost * UNITS / bought, 1)  # the loop's state
        seen = ExitState(_dec(high) if high > -math.inf else None)
        return decide_exit(position, float(closes[candle]), risk, seen).reason

    at = np.zeros(fill_walk.AT_SIZE, dtype=np.int64)
    at[fill_walk.GIVEN] = -1
    money = np.zeros(fill_walk.MONEY_SIZE, dtype=np.float64)
    money[fill_walk.BUDGET] = float(setup.capital)
    money[fill_walk.BUDGET_ERROR] = FLOAT_ERROR * float(setup.capital)
    rules = np.empty(fill_walk.RULES_SIZE, dtype=np.float64)
    rules[fill_walk.FEE_RATE], rules[fill_walk.MIN_VALUE] = fee_rate, min_value
    rules[fill_walk.INV_COST] = 1.0 / float(1 + setup.cost_rate)
    rules[fill_walk.FLOAT_ERROR], rules[fill_walk.NEAR_STEP] = FLOAT_ERROR, NEAR_STEP
    rules[fill_walk.UNITS], rules[fill_walk.SELL_FACTOR] = UNITS, 1.0 - slippage
    rules[fill_walk.STOP], rules[fill_walk.TAKE] = stop_ratio, take_ratio
    rules[fill_walk.ARM], rules[fill_walk.TRAIL] = arm_ratio, trail_ratio
    rules[fill_walk.LOOSE] = LOOSE
    exit_rules = np.empty(fill_walk.EXITS_SIZE, dtype=np.int64)
    exit_rules[fill_walk.LEVELS], exit_rules[fill_walk.TRAILING] = exits, trailing
    exit_rules[fill_walk.EXIT_REASON] = reasons_before + fill_walk.STOP_LOSS
    exit_rules[fill_walk.LAST] = last
    bought_at = np.empty(buy_count, dtype=np.int64)  # opening setter of each position
    bought_steps = np.empty(buy_count, dtype=np.int64)  # amount of each position
    sold_at = np.empty(buy_count, dtype=np.int64)  # candle deciding each sale
    sold_for = np.empty(buy_count, dtype=np.int64)  # its reason, in reasons
    trade_pnl = np.empty(buy_count, dtype=np.float64)
    reason_number = {reason: number for number, reason in reversed(list(enumerate(reasons)))}
    exact_budget = _ExactBudget(setup, opens)

    def fills_so_far() -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Candles and signed steps of the fills so far, for the exact budget."""
        positions, sales = int(at[fill_walk.POSITIONS]), int(at[fill_walk.SALES])
        held = bought_steps[:positions]
        candles = np.empty(positions + sales, dtype=np.int64)
        steps = np.empty(candles.shape[0], dtype=np.int64)
        candles[0::2] = buy_at[bought_at[:positions]] + 1
        candles[1::2] = sold_at[:sales] + 1
        steps[0::2], steps[1::2] = held, -held[:sales]
        return candles, steps

    report_every = max(n // 20, 1)
    report_at = report_every if progress is not None else n + 1
    buy_candle = buy_at.astype(np.int64, copy=False)
    sell_candle = sell_at.astype(np.int64, copy=False)
    sell_reason = sell_reason_at.astype(np.int64)
    fraction_of_buy = fractions.astype(np.float64, copy=False)
    while True:
        event = fill_walk.walk(
            buy_candle, fraction_of_buy, scales, per_unit_of, buy_prices, sell_candle,
            sell_reason, entry, closes, opens, rules, exit_rules, report_at, money, at,
            bought_at, bought_steps, sold_at, sold_for, trade_pnl,
        )  # fmt: skip
        b = int(at[fill_walk.NEXT])
        if event == fill_walk.REPORT:
            assert progress is not None
            progress(int(buy_at[b]) / n)
            report_at = (int(buy_at[b]) // report_every + 1) * report_every
        elif event == fill_walk.NEED_EXACT:
            exact = exact_budget.buy_steps(
                *fills_so_far(), float(fractions[b]), float(closes[buy_at[b]])
            )
            if exact is None:
                at[fill_walk.NEXT] = b + 1  # nothing left to spend: the tick places nothing
            else:
                at[fill_walk.GIVEN] = exact
        elif event == fill_walk.NEED_AMOUNT:
            money[fill_walk.AMOUNT] = int(at[fill_walk.GIVEN]) / UNITS
            at[fill_walk.AMOUNT_GIVEN] = 1
        elif event == fill_walk.NEED_DECISION:
            bought = int(bought_steps[at[fill_walk.POSITIONS] - 1])
            cost, high = float(money[fill_walk.COST]), float(money[fill_walk.HIGH])
            reason = exit_reason(int(at[fill_walk.SCAN_FROM]), cost, bought, high)
            at[fill_walk.DECISION] = fill_walk.NO_SALE if reason is None else reason_number[reason]
            at[fill_walk.DECIDED] = 1
        else:
            break  # DONE, HELD_AT_END

    positions, sales = int(at[fill_walk.POSITIONS]), int(at[fill_walk.SALES])
    # Fills alternate, a buy first: the buys at even places, the sales at odd ones.
    fill_index, fill_steps = fills_so_far()
    fill_reasons = np.empty(fill_index.shape[0], dtype=object)
    reason_names = np.asarray(reasons, dtype=object)
    fill_reasons[0::2] = reason_names[reason_of[codes[buys]]][bought_at[:positions]]
    fill_reasons[1::2] = reason_names[sold_for[:sales]]
    return _Run(
        fill_index,
        fill_steps,
        [],
        fill_reasons.tolist(),
        trade_pnl[:sales].copy(),
        int(at[fill_walk.REJECTED]),
        0,
    )


def _int64s(values: array[int]) -> npt.NDArray[np.int64]:
    return np.frombuffer(values, dtype=np.int64) if values else np.empty(0, dtype=np.int64)


def run_backtest(
    candles: Candles,
    strategy: Strategy,
    params: Mapping[str, Any],
    *,
    capital: Decimal,
    risk: RiskSettings,
    fee_rate: Decimal = FEE_RATE,
    slippage: Decimal = SLIPPAGE,
    progress: Callable[[float], None] | None = None,
    signals: SignalArray | None = None,
) -> BacktestResult:
    """Backtest ``strategy`` with ``params`` on ``candles`` for a bot with ``capital`` and ``risk``.

    ``params`` are validated (defaults filled in) as on bot creation. ``progress``, if
    given, is called with the fraction of candles done (0..1), about 20 times in all.
    ``signals``, if given, are ``strategy.compute``'s over these candles, computed by the
    caller: the optimiser computes them once over a longer history (the indicators are
    warm at the first candle) and runs the in-sample and out-of-sample parts on slices.
    """
    if capital <= 0:
        raise ValueError("capital must be positive")
    if fee_rate < 0 or not 0 <= slippage < 1:
        raise ValueError("fee_rate must be >= 0 and slippage in [0, 1)")
    values = strategy.validate(params)
    n = len(candles)
    if n == 0:
        raise ValueError("no candles")
    step_ms = _step_ms(np.asarray(candles.time, dtype=np.int64))
    if progress is not None:
        progress(0.0)
    if signals is None:
        signals = strategy.compute(candles, values)
    elif signals.shape[0] != n:
        raise ValueError("one signal per candle")
    # On booleans: np.flatnonzero of the int8 signals takes twice as long.
    events = np.flatnonzero(signals != 0) if is_signal_driven(strategy) else np.arange(n)
    events = events.astype(np.int64, copy=False)
    setup = _Setup(candles, step_ms, strategy, values, capital, risk, fee_rate, slippage)
    with automatic_gc_paused():  # Decimal bookkeeping allocates; nothing here makes cycles
        try:
            run = _simulate_by_table(setup, signals, events, progress)
            if run is None:
                run = _simulate(setup, signals, events, progress)
        except OverflowError:  # an amount in steps beyond int64
            raise AmountOutOfRange(
                "an amount bought is beyond what the backtest counts (2**63 steps of 1e-8)"
            ) from None
        result = _result(setup, run)
    if progress is not None:
        progress(1.0)
    return result


def _result(setup: _Setup, run: _Run) -> BacktestResult:
    """The equity curve and the statistics, vectorised over the fills."""
    from engine.backtest import equity_curve  # numba: loaded by the first backtest

    candles, capital, fee_rate, slippage = (
        setup.candles,
        setup.capital,
        setup.fee_rate,
        setup.slippage,
    )
    n = len(candles)
    close = np.asarray(candles.close, dtype=np.float64)
    opens = np.asarray(candles.open, dtype=np.float64)
    times = np.asarray(candles.time, dtype=np.int64)
    capital_f = float(capital)
    fill_index = run.fill_index
    side = np.sign(run.fill_steps).astype(np.int8)
    fill_units = np.abs(run.fill_steps)
    # Position after each fill; a close that left dust drops it, like the bookkeeping.
    held_steps = np.cumsum(run.fill_steps)
    for number, steps in run.dust:
        held_steps[number:] -= steps
    held_after = held_steps / UNITS
    # Cash after each fill: buys pay value + fee, sells receive value - fee (paper exchange).
    value = fill_units / UNITS * opens[fill_index] * (1.0 + side * float(slippage))
    fee = float(fee_rate)
    flow = np.where(side > 0, -value * (1.0 + fee), value * (1.0 - fee))
    cash_after = capital_f + np.cumsum(flow)
    # The state after a fill holds from its candle up to the next fill; none before the first.
    lengths = np.diff(np.concatenate(([0], fill_index, [n])))
    exposure = float(lengths[1:][held_after > 0].sum()) / n * 100.0
    equity = np.empty(n, dtype=np.float64)
    lowest_to_peak, lowest = equity_curve.fill_equity(
        fill_index.astype(np.int64, copy=False), held_after, cash_after, close, capital_f, equity
    )

    max_drawdown = (1.0 - lowest_to_peak) * 100.0
    sharpe: Decimal | None = None
    if n > 2 and lowest > 0:  # returns mean nothing once the bot owes money
        returns = np.divide(equity[1:], equity[:-1])
        returns -= 1.0
        mean = float(returns.mean())
        returns -= mean
        squares = float(np.einsum("i,i->", returns, returns))  # no BLAS threads for this
        deviation = math.sqrt(squares / (returns.shape[0] - 1))
        if deviation > 0:
            sharpe = _ratio(mean / deviation * math.sqrt(YEAR_MS / setup.step_ms))
    pnl = run.trade_pnl
    win_rate = _ratio(float(np.count_nonzero(pnl > 0)) / pnl.size * 100.0) if pnl.size else None
    final = float(equity[-1])
    return BacktestResult(
        strategy=setup.strategy.info.name,
        params=dict(setup.params),
        capital=capital,
        fee_rate=fee_rate,
        slippage=slippage,
        risk=setup.risk,
        candles=n,
        start_time=int(times[0]),
        end_time=int(times[-1]),
        fill_rule=FILL_RULE,
        final_equity=_money(final),
        total_pnl=_money(final - capital_f),
        total_pnl_pct=_ratio((final - capital_f) / capital_f * 100.0),
        max_drawdown_pct=_ratio(max_drawdown),
        win_rate_pct=win_rate,
        sharpe=sharpe,
        exposure_pct=_ratio(exposure),
        buy_and_hold_pct=_ratio((float(close[-1]) / float(opens[0]) - 1.0) * 100.0),
        trade_count=int(pnl.size),
        rejected_orders=run.rejected,
        blocked_entries=run.blocked,
        equity=equity,
        _fills=_Fills(index=fill_index, side=side, units=fill_units, reason=tuple(run.reasons)),
        _times=times,
        _opens=opens,
        _last_close=float(close[-1]),
    )
