"""The walk from fill to fill of ``runner._walk_table``, compiled with numba.

Sizing compounds: each buy is sized on the budget the trades before it left, so the
fills are found one after the other. In Python that walk cost about a microsecond and a
half a trade, the largest share of a year of minutes with a stop loss and a take profit;
compiled, a few nanoseconds. It is the same float64 arithmetic, in the same order, as the
decision loop (``runner._simulate``) and its Decimal fallbacks: numba compiles IEEE-754
operations as written (``engine.backtest.compiled``), so every figure stays the loop's,
bit for bit (tests in ``tests/engine/test_backtest*.py`` hold it).

What float64 cannot decide stays in Python and is asked of the caller: the walk stops and
returns an event, the caller answers through ``at``/``money`` and calls it again:

- ``NEED_EXACT``: the buy's amount lies too close to a whole step for float64; the caller
  sizes it in Decimal (``_ExactBudget``) and hands the steps back in ``at[GIVEN]``, or
  skips the buy (nothing to spend) by moving ``at[NEXT]``;
- ``NEED_SALE``: the position just bought has no sale float64 can vouch for (a close
  within ``LOOSE`` of a level, or a sale under the minimum order, counted as rejected);
  the caller finds it from close ``at[SALE_FROM]`` on and hands it back as a pending
  sale (``at[PENDING]`` and the sale's candle, reason, value and next buy);
- ``NEED_AMOUNT``: a buy of more than 2**53 steps, whose amount (steps / UNITS) only
  Python's int division gives bit for bit; the caller hands it back in ``money[AMOUNT]``;
- ``REPORT``: the walk reached candle ``report_at``, for a progress report.

The walk ends with ``DONE`` (no buy left to ask) or ``HELD_AT_END`` (a position held at
the end).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from engine.backtest.compiled import compiled

# Events the walk returns.
DONE, HELD_AT_END, REPORT, NEED_EXACT, NEED_SALE, NEED_AMOUNT = range(6)
# Places in ``at`` (int64): the walk's integer state.
NEXT, REJECTED, POSITIONS, SALES, GIVEN, SALE_FROM = range(6)
PENDING, SALE_CANDLE, SALE_REASON, SALE_NEXT, AMOUNT_GIVEN = range(6, 11)
AT_SIZE = 11
# Places in ``money`` (float64): the budget, its float error bound, the cost of the last
# position bought, the value of a pending sale and the amount of a buy the caller divided.
BUDGET, BUDGET_ERROR, COST, SALE_VALUE, AMOUNT = range(5)
MONEY_SIZE = 5
# Places in ``rules`` (float64): the constants of the arithmetic, and the exit levels as
# ratios of a close to the position's average entry: the stop loss (-inf: none), the take
# profit (inf: none), the trailing stop's arming high (-inf: armed at once) and factor
# (a close at or under the highest close since entry times it sells), and the margin of
# the float pre-filter.
FEE_RATE, MIN_VALUE, INV_COST, FLOAT_ERROR, NEAR_STEP, UNITS, SELL_FACTOR = range(7)
STOP, TAKE, ARM, TRAIL, LOOSE = range(7, 12)
RULES_SIZE = 12
# Places in ``exits`` (int64): whether the positions have exit levels at all, whether one
# is a trailing stop, and the reason number of a stop loss (a trailing stop's is the next,
# a take profit's the one after: runner.EXIT_REASONS).
LEVELS, TRAILING, EXIT_REASON = range(3)
EXITS_SIZE = 3
STOP_LOSS, TRAILING_STOP, TAKE_PROFIT = range(3)  # after EXIT_REASON, decide_exit's order
NO_SALE = -1  # the strategy never sells the position (sale_reason)
HELD = 2**62  # a sale that never comes: still holding at the end (_exit)
# Under this many steps (in absolute value) a float64 amount converts to int64 exactly
# enough for the fraction test; at or beyond it its fraction is 0, as in Python.
WHOLE_LIMIT = 2.0**62
# Up to this many steps an int64 converts to float64 exactly, so steps / UNITS is Python's
# int / int; beyond it Python's quotient is rounded once from the exact integers, a
# float64 division twice: the caller divides.
EXACT_INT = 2**53


@compiled(
    "void(float64[:], int64[:], float64[:], int64, float64, int64, int64,"
    " int64[:], int64[:], float64[:])"
)
def _book_sale(
    money: npt.NDArray[np.float64],
    at: npt.NDArray[np.int64],
    rules: npt.NDArray[np.float64],
    bought: int,
    value: float,
    candle: int,
    reason: int,
    sold_at: npt.NDArray[np.int64],
    sold_for: npt.NDArray[np.int64],
    trade_pnl: npt.NDArray[np.float64],
) -> None:
    """Book the sale of all of the last position bought, for ``value`` (the loop's own
    expressions): its PnL into the budget and the budget's error bound.
    """
    fee_rate, float_error = rules[FEE_RATE], rules[FLOAT_ERROR]
    cost = money[COST]
    pnl = value - value * fee_rate - cost * bought / bought
    budget = money[BUDGET] + pnl
    money[BUDGET] = budget
    money[BUDGET_ERROR] += float_error * (value + cost + (budget if budget > 0.0 else -budget))
    sales = at[SALES]
    trade_pnl[sales] = pnl
    sold_at[sales] = candle
    sold_for[sales] = reason
    at[SALES] = sales + 1


@compiled(
    "UniTuple(int64, 2)(int64, int64, int64[:], int64[:], float64[:], float64[:],"
    " float64[:], int64[:])"
)
def _exit(
    b: int,
    start: int,
    sale_end: npt.NDArray[np.int64],
    sale_reason: npt.NDArray[np.int64],
    entry: npt.NDArray[np.float64],
    closes: npt.NDArray[np.float64],
    rules: npt.NDArray[np.float64],
    exits: npt.NDArray[np.int64],
) -> tuple[int, int]:
    """The sale of the position bought at opening setter ``b``, whose first close is
    ``start``, when nothing is rejected: (deciding candle, reason number); the candle is
    HELD for none before the end, or -1 where ``decide_exit`` itself must say (a close
    within ``LOOSE`` of a level).

    The first of: a close at or past a level, or at or under the trail from the highest
    close since entry (risk first, as in the loop: on that close the strategy is not
    asked), or the strategy's sale. A position's average entry is its fill price times
    (1 + fee) to a few units in the last place whatever the size, so a close clearly past
    a level is that rule's verdict; the float test is ``LOOSE`` looser than the rule, so it
    misses none.
    """
    end = sale_end[b]  # the strategy's sale, or the last close whose decision fills
    if exits[LEVELS]:
        stop, take, loose = rules[STOP], rules[TAKE], rules[LOOSE]
        arm, trail, trailing = rules[ARM], rules[TRAIL], exits[TRAILING]
        unit = entry[b]
        high = -np.inf  # the highest close since entry, over the entry
        for candle in range(start, end + 1):
            ratio = closes[candle] / unit
            if trailing and ratio > high:
                high = ratio
            past = ratio <= stop + loose or ratio >= take - loose
            if trailing and not past:
                past = high >= arm - loose and ratio <= high * trail + loose
            if not past:
                continue
            # decide_exit's order: stop loss, trailing stop, take profit
            if -np.inf < ratio and ratio <= stop - loose:
                return candle, exits[EXIT_REASON] + STOP_LOSS
            if trailing:
                if high >= arm + loose and ratio <= high * trail - loose and ratio > stop + loose:
                    return candle, exits[EXIT_REASON] + TRAILING_STOP
                if not (high < arm - loose or ratio > high * trail + loose):
                    return -1, 0  # the trailing stop may sell here
            if take + loose <= ratio and ratio < np.inf:
                return candle, exits[EXIT_REASON] + TAKE_PROFIT
            return -1, 0  # within the margin of a level
    if sale_reason[b] == NO_SALE:
        return HELD, 0
    return end, sale_reason[b]


@compiled(
    "int64(int64[:], float64[:], float64[:], float64[:], float64[:], int64[:], int64[:],"
    " float64[:], float64[:], float64[:], float64[:], int64[:], int64, float64[:], int64[:],"
    " int64[:], int64[:], int64[:], int64[:], float64[:])"
)
def walk(
    buy_candle: npt.NDArray[np.int64],
    buy_fraction: npt.NDArray[np.float64],
    buy_scale: npt.NDArray[np.float64],
    per_unit: npt.NDArray[np.float64],
    buy_price: npt.NDArray[np.float64],
    sale_end: npt.NDArray[np.int64],
    sale_reason: npt.NDArray[np.int64],
    entry: npt.NDArray[np.float64],
    closes: npt.NDArray[np.float64],
    opens: npt.NDArray[np.float64],
    rules: npt.NDArray[np.float64],
    exits: npt.NDArray[np.int64],
    report_at: int,
    money: npt.NDArray[np.float64],
    at: npt.NDArray[np.int64],
    bought_at: npt.NDArray[np.int64],
    bought_steps: npt.NDArray[np.int64],
    sold_at: npt.NDArray[np.int64],
    sold_for: npt.NDArray[np.int64],
    trade_pnl: npt.NDArray[np.float64],
) -> int:
    """Walk from the opening setter ``at[NEXT]`` on, buying when flat and selling all of it,
    until an event the caller must answer (see the module's docstring).

    Of each opening setter: the candle deciding its buy, the fraction of the budget it
    spends and its scale (>= 1, for the error bound), the steps per quote unit at the
    decision close, the buy's fill price, the candle of the strategy's sale of its
    position (the next closing setter's, or the last close whose decision fills) and that
    sale's reason number (NO_SALE: none), and, with exit levels, the position's average
    entry. A sale of ``amount`` at candle c is worth ``amount * (opens[c + 1] * sell
    factor)``, as in the loop.
    """
    if at[PENDING]:  # a sale the caller found
        at[PENDING] = 0
        bought = bought_steps[at[POSITIONS] - 1]
        _book_sale(
            money, at, rules, bought, money[SALE_VALUE], at[SALE_CANDLE], at[SALE_REASON],
            sold_at, sold_for, trade_pnl,
        )  # fmt: skip
        at[NEXT] = at[SALE_NEXT]
    fee_rate, min_value, inv_cost = rules[FEE_RATE], rules[MIN_VALUE], rules[INV_COST]
    float_error, near_step, units = rules[FLOAT_ERROR], rules[NEAR_STEP], rules[UNITS]
    sell_factor = rules[SELL_FACTOR]
    count = buy_candle.shape[0]
    b = at[NEXT]
    event = DONE
    while b < count:
        if buy_candle[b] >= report_at:
            event = REPORT
            break
        total = money[BUDGET]
        if total < 0.0:
            total = 0.0
        quote = total * buy_fraction[b]
        room = total * inv_cost  # free = total: nothing held
        if room < quote:
            quote = room
        error = (money[BUDGET_ERROR] + float_error * total) * buy_scale[b]
        bought = at[GIVEN]  # the caller's Decimal amount for this buy, if it had to ask
        if bought < 0 and quote > error:
            unit = per_unit[b]
            steps = quote * unit
            margin = steps * near_step + 1e-9 + error * unit
            part = 0.0
            if abs(steps) < WHOLE_LIMIT:
                part = steps - np.int64(steps)
            if margin < part and part < 1.0 - margin:
                bought = np.int64(steps)
            elif np.trunc(steps + margin) / units * buy_price[b] < min_value:
                bought = 0  # rejected whichever step float64 missed
        if bought < 0:  # nothing placed, or too close to call in float64
            event = NEED_EXACT
            break
        if at[AMOUNT_GIVEN]:
            amount = money[AMOUNT]
        elif bought > EXACT_INT:
            at[GIVEN] = bought
            event = NEED_AMOUNT
            break
        else:
            amount = bought / units
        value = amount * buy_price[b]
        if bought <= 0 or value < min_value:
            at[REJECTED] += 1  # still flat on the same budget: the next buy is asked
            at[GIVEN], at[AMOUNT_GIVEN] = -1, 0
            b += 1
            continue
        at[GIVEN], at[AMOUNT_GIVEN] = -1, 0
        cost = value + value * fee_rate
        money[BUDGET_ERROR] += float_error * cost
        money[COST] = cost
        positions = at[POSITIONS]
        bought_at[positions] = b
        bought_steps[positions] = bought
        at[POSITIONS] = positions + 1
        start = buy_candle[b] + 1  # the position's first close is its fill candle's
        sold, reason = _exit(b, start, sale_end, sale_reason, entry, closes, rules, exits)
        if sold == HELD:
            event = HELD_AT_END
            break
        if sold < 0:
            at[SALE_FROM] = start  # decide_exit says, from the first close
            event = NEED_SALE
            break
        value = amount * (opens[sold + 1] * sell_factor)
        if value < min_value:
            at[REJECTED] += 1
            at[SALE_FROM] = sold + 1
            event = NEED_SALE
            break
        _book_sale(money, at, rules, bought, value, sold, reason, sold_at, sold_for, trade_pnl)
        b = np.searchsorted(buy_candle, sold, side="right")
    at[NEXT] = b
    return event
