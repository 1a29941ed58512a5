"""The walk from fill to fill of ``runner._walk_table``, compiled with numba.

Sizing compounds: each buy is sized on the budget the trades before it left, so the
fills are found one after the other. In Python that walk cost about a microsecond and a
half a trade, the largest share of a year of minutes with a stop loss and a take profit;
compiled, a few nanoseconds. It is the same float64 arithmetic, in the same order, as the
decision loop (``runner._simulate``) and its Decimal fallbacks: numba compiles IEEE-754
operations as written (``engine.backtest.compiled``), so every figure stays the loop's,
bit for bit (tests in ``tests/engine/test_backtest*.py`` hold it).

A position's sale is the first the paper exchange accepts of: a close at or past an exit
level, or at or under the trail from the highest close since entry (risk first, as in the
loop: on that close the strategy is not asked), or the strategy's sale at the next
closing setter; each one before it is an order rejected under the minimum (``_sale``).

What float64 cannot decide stays in Python and is asked of the caller: the walk stops and
returns an event, the caller answers through ``at``/``money`` and calls it again:

- ``NEED_EXACT``: the buy's amount lies too close to a whole step for float64; the caller
  sizes it in Decimal (``_ExactBudget``) and hands the steps back in ``at[GIVEN]``, or
  skips the buy (nothing to spend) by moving ``at[NEXT]``;
- ``NEED_AMOUNT``: a buy of more than 2**53 steps, whose amount (steps / UNITS) only
  Python's int division gives bit for bit; the caller hands it back in ``money[AMOUNT]``;
- ``NEED_DECISION``: a close within ``LOOSE`` of an exit level (``at[SCAN_FROM]``, the
  highest close since entry in ``money[HIGH]``), where only ``decide_exit`` itself can
  say; the caller hands its reason number back in ``at[DECISION]`` (NO_SALE: none);
- ``REPORT``: the walk reached candle ``report_at``, for a progress report.

The walk ends with ``DONE`` (no buy left to ask) or ``HELD_AT_END`` (a position held at
the end).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from engine.backtest.compiled import compiled

# Events the walk returns.
DONE, HELD_AT_END, REPORT, NEED_EXACT, NEED_AMOUNT, NEED_DECISION = range(6)
# Places in ``at`` (int64): the walk's integer state. The scan for a position's sale:
# the next close to look at, the closing setter ending the stretch it is in, whether a
# risk exit was asked (and rejected) on that setter's close, and whether the caller's
# decision on the close at SCAN_FROM is in DECISION.
NEXT, REJECTED, POSITIONS, SALES, GIVEN, AMOUNT_GIVEN = range(6)
SELLING, SCAN_FROM, SCAN_SETTER, ASKED_AT_END, DECIDED, DECISION = range(6, 12)
AT_SIZE = 12
# Places in ``money`` (float64): the budget, its float error bound, the cost and the
# amount of the position held, the amount of a buy the caller divided, and the highest
# close since the position's entry.
BUDGET, BUDGET_ERROR, COST, HELD_AMOUNT, AMOUNT, HIGH = range(6)
MONEY_SIZE = 6
# Places in ``rules`` (float64): the constants of the arithmetic, and the exit levels as
# ratios of a close to the position's average entry: the stop loss (-inf: none), the take
# profit (inf: none), the trailing stop's arming high (-inf: armed at once) and factor
# (a close at or under the highest close since entry times it sells), and the margin of
# the float pre-filter.
FEE_RATE, MIN_VALUE, INV_COST, FLOAT_ERROR, NEAR_STEP, UNITS, SELL_FACTOR = range(7)
STOP, TAKE, ARM, TRAIL, LOOSE = range(7, 12)
RULES_SIZE = 12
# Places in ``exits`` (int64): whether the positions have exit levels at all, whether one
# is a trailing stop, the reason number of a stop loss (a trailing stop's is the next, a
# take profit's the one after: runner.EXIT_REASONS) and the last close whose decision fills.
LEVELS, TRAILING, EXIT_REASON, LAST = range(4)
EXITS_SIZE = 4
STOP_LOSS, TRAILING_STOP, TAKE_PROFIT = range(3)  # after EXIT_REASON, decide_exit's order
NO_SALE = -1  # a close where decide_exit does not sell
ASK = -2  # a close only decide_exit can judge
# Under this many steps (in absolute value) a float64 amount converts to int64 exactly
# enough for the fraction test; at or beyond it its fraction is 0, as in Python.
WHOLE_LIMIT = 2.0**62
# Up to this many steps an int64 converts to float64 exactly, so steps / UNITS is Python's
# int / int; beyond it Python's quotient is rounded once from the exact integers, a
# float64 division twice: the caller divides.
EXACT_INT = 2**53
# How much looser, relatively, the price bounds of _sale are than the ratio test.
PRICE_MARGIN = 1e-12
# What _sale found.
SOLD, HELD, ASKED = range(3)


@compiled("int64(float64, float64, float64[:], int64[:])")
def _exit_verdict(
    ratio: float, most: float, rules: npt.NDArray[np.float64], exits: npt.NDArray[np.int64]
) -> int:
    """decide_exit's reason number at a close ``ratio`` times the average entry, the highest
    close since entry being ``most`` times it, where float64 can say (NO_SALE: none; ASK:
    within ``LOOSE`` of a level). The float test is ``LOOSE`` looser than the rule, so it
    misses none, and a close clearly past a level is that rule's verdict: a position's
    average entry is its fill price times (1 + fee) to a few units in the last place,
    whatever the size.
    """
    stop, take, loose = rules[STOP], rules[TAKE], rules[LOOSE]
    arm, trail, trailing = rules[ARM], rules[TRAIL], exits[TRAILING]
    past = ratio <= stop + loose or ratio >= take - loose
    if trailing and not past:
        past = most >= arm - loose and ratio <= most * trail + loose
    if not past:
        return NO_SALE
    # decide_exit's order: stop loss, trailing stop, take profit
    if -np.inf < ratio and ratio <= stop - loose:
        return int(exits[EXIT_REASON]) + STOP_LOSS
    if trailing:
        if most >= arm + loose and ratio <= most * trail - loose and ratio > stop + loose:
            return int(exits[EXIT_REASON]) + TRAILING_STOP
        if not (most < arm - loose or ratio > most * trail + loose):
            return ASK  # the trailing stop may sell here
    if take + loose <= ratio and ratio < np.inf:
        return int(exits[EXIT_REASON]) + TAKE_PROFIT
    return ASK  # within the margin of a level


@compiled(
    "UniTuple(float64, 4)(int64, float64, int64[:], int64[:], float64[:], float64[:],"
    " float64[:], float64[:], int64[:], float64[:], int64[:])"
)
def _sale(
    b: int,
    amount: float,
    sell_candle: npt.NDArray[np.int64],
    sell_reason: npt.NDArray[np.int64],
    entry: npt.NDArray[np.float64],
    closes: npt.NDArray[np.float64],
    opens: npt.NDArray[np.float64],
    rules: npt.NDArray[np.float64],
    exits: npt.NDArray[np.int64],
    money: npt.NDArray[np.float64],
    at: npt.NDArray[np.int64],
) -> tuple[float, float, float, float]:
    """Go on with the scan for the sale of ``amount`` bought at opening setter ``b``, from
    the state in ``at`` and ``money``: (SOLD, candle, reason number, value), (HELD, ...)
    when none comes before the end, or (ASKED, ...) with the state saved for the caller.
    """
    min_value, sell_factor = rules[MIN_VALUE], rules[SELL_FACTOR]
    levels, trailing, last = exits[LEVELS], exits[TRAILING], exits[LAST]
    sellers = sell_candle.shape[0]
    unit = entry[b] if levels else 1.0
    # Closes strictly between these two are past neither the stop loss nor the take
    # profit, without dividing: a relative margin of 1e-12 covers the few roundings
    # between them and the ratio test (without a trailing stop, for a positive entry and
    # positive lines: a stop of 100 % or more is tested by the ratio alone).
    low, high_price = np.inf, -np.inf
    stop_line, take_line = rules[STOP] + rules[LOOSE], rules[TAKE] - rules[LOOSE]
    positive = take_line > 0.0 and (stop_line > 0.0 or stop_line == -np.inf)
    if levels and not trailing and unit > 0.0 and positive:
        low = stop_line * unit * (1.0 + PRICE_MARGIN)
        high_price = take_line * unit * (1.0 - PRICE_MARGIN)
    candle, c = at[SCAN_FROM], at[SCAN_SETTER]
    asked_at_end = at[ASKED_AT_END]
    high = money[HIGH]
    while candle <= last:
        end = sell_candle[c] if c < sellers else last
        while levels and candle <= end:
            if at[DECIDED]:  # the caller's verdict on this close
                at[DECIDED] = 0
                reason = at[DECISION]
            elif low < closes[candle] < high_price:
                reason = NO_SALE
            else:
                close = closes[candle]
                if trailing and close > high:
                    high = close
                reason = _exit_verdict(close / unit, high / unit, rules, exits)
                if reason == ASK:
                    at[SCAN_FROM], at[SCAN_SETTER], at[ASKED_AT_END] = candle, c, asked_at_end
                    money[HIGH] = high
                    return float(ASKED), 0.0, 0.0, 0.0
            if reason != NO_SALE:
                value = amount * (opens[candle + 1] * sell_factor)
                if not value < min_value:
                    return float(SOLD), float(candle), float(reason), value
                at[REJECTED] += 1
                asked_at_end = candle == end
            candle += 1
        if c < sellers and not asked_at_end:
            value = amount * (opens[end + 1] * sell_factor)
            if not value < min_value:
                return float(SOLD), float(end), float(sell_reason[c]), value
            at[REJECTED] += 1
        candle, c, asked_at_end = end + 1, c + 1, False
    return float(HELD), 0.0, 0.0, 0.0


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
    sell_candle: npt.NDArray[np.int64],
    sell_reason: npt.NDArray[np.int64],
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
    """Walk from the opening setter ``at[NEXT]`` on (or on with the scan for the sale of
    the position held), buying when flat and selling all of it, until an event the caller
    must answer (see the module's docstring).

    Of each opening setter: the candle deciding its buy, the fraction of the budget it
    spends and its scale (>= 1, for the error bound), the steps per quote unit at the
    decision close, the buy's fill price and, with exit levels, the position's average
    entry. Of each closing setter: its candle and reason number. A sale of ``amount`` at
    candle c is worth ``amount * (opens[c + 1] * sell factor)``, as in the loop.
    """
    fee_rate, min_value, inv_cost = rules[FEE_RATE], rules[MIN_VALUE], rules[INV_COST]
    float_error, near_step, units = rules[FLOAT_ERROR], rules[NEAR_STEP], rules[UNITS]
    count = buy_candle.shape[0]
    b = at[NEXT]
    while at[SELLING] or b < count:
        if at[SELLING]:  # the position bought at opening setter b
            found, candle, reason, value = _sale(
                b, money[HELD_AMOUNT], sell_candle, sell_reason, entry, closes, opens,
                rules, exits, money, at,
            )  # fmt: skip
            if found == ASKED:
                at[NEXT] = b
                return NEED_DECISION
            if found == HELD:
                at[NEXT] = b
                return HELD_AT_END
            at[SELLING] = 0
            bought = bought_steps[at[POSITIONS] - 1]
            sold = int(candle)
            _book_sale(
                money, at, rules, bought, value, sold, int(reason), sold_at, sold_for, trade_pnl
            )
            while b < count and buy_candle[b] <= sold:  # the next opening setter after it
                b += 1
            continue
        if buy_candle[b] >= report_at:
            at[NEXT] = b
            return REPORT
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
            at[NEXT] = b
            return NEED_EXACT
        if at[AMOUNT_GIVEN]:
            amount = money[AMOUNT]
        elif bought > EXACT_INT:
            at[NEXT], at[GIVEN] = b, bought
            return NEED_AMOUNT
        else:
            amount = bought / units
        value = amount * buy_price[b]
        at[GIVEN], at[AMOUNT_GIVEN] = -1, 0
        if bought <= 0 or value < min_value:
            at[REJECTED] += 1  # still flat on the same budget: the next buy is asked
            b += 1
            continue
        cost = value + value * fee_rate
        money[BUDGET_ERROR] += float_error * cost
        money[COST], money[HELD_AMOUNT] = cost, amount
        positions = at[POSITIONS]
        bought_at[positions] = b
        bought_steps[positions] = bought
        at[POSITIONS] = positions + 1
        start = buy_candle[b] + 1  # the position's first close is its fill candle's
        at[SELLING], at[SCAN_FROM], at[ASKED_AT_END] = 1, start, 0
        c = at[SCAN_SETTER]  # the first closing setter from the start: later than the last
        while c < sell_candle.shape[0] and sell_candle[c] < start:
            c += 1
        at[SCAN_SETTER] = c
        money[HIGH] = -np.inf
    at[NEXT] = b
    return DONE
