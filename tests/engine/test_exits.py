"""Exits a trader shapes: trailing stop, take-profit targets, breakeven.

The rules are one pure function (``engine.risk.decide_exit``) with a state kept on the
position; these tests hold its properties, and hold the live tick (real databases, paper
exchange) and the backtester to the same exits at the same candles, state included.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from db.models import Bot, BotMode, Order, OrderSide, OrderStatus, OrderType, Position
from db.session import Database
from engine.backtest.runner import run_backtest
from engine.bookkeeping import BotRef, record_rejection, record_report
from engine.exchanges.gateway import OrderReport
from engine.market_data.cache import MemoryCandleCache
from engine.market_data.feed import MarketDataFeed
from engine.market_data.replay import ReplayFeed
from engine.risk import ExitState, RiskSettings, Target, decide_exit, target_number
from engine.strategies.base import PositionState
from engine.strategies.registry import get_strategy
from engine.tick import run_tick
from robotrader.app import App
from robotrader.settings import Settings
from tests.engine.conftest import make_user, running_bot

D = Decimal
HUNDRED = D(100)
MINUTE = 60_000
NOW = 1_764_000_000_000
T0 = NOW - NOW % 3_600_000  # a whole hour: replay candles are deterministic for it
CANDLES = 180


# ----------------------------------------------------------------------------------------
# The pure rules
# ----------------------------------------------------------------------------------------
ENTRY = 100.0
prices = st.lists(
    st.floats(50.0, 200.0, allow_nan=False, allow_infinity=False).map(lambda p: round(p, 2)),
    min_size=1,
    max_size=60,
)
pcts = st.decimals(D("0.1"), D(30), places=1)


def _holding(entry: float = ENTRY) -> PositionState:
    return PositionState(amount=1.0, average_entry=entry, entries=1)


def _dec(value: float) -> Decimal:
    return Decimal(repr(value))


@given(path=prices, trail=pcts, arm=st.none() | st.decimals(D(0), D(50), places=1))
def test_the_trailing_stop_sells_exactly_when_price_crosses_the_trail_once_armed(
    path: list[float], trail: Decimal, arm: Decimal | None
) -> None:
    risk = RiskSettings(trailing_stop_pct=trail, trailing_arm_pct=arm)
    state = ExitState()
    high: Decimal | None = None
    for price in path:
        now = _dec(price)
        high = now if high is None else max(high, now)
        armed = arm is None or high >= _dec(ENTRY) * (1 + arm / HUNDRED)
        verdict = decide_exit(_holding(), price, risk, state)
        assert verdict.state.highest_price == high  # the running max since entry
        expected = armed and now <= high * (1 - trail / HUNDRED)
        assert (verdict.reason == "trailing_stop") is expected
        assert verdict.reason in (None, "trailing_stop")
        if verdict.reason:
            assert verdict.fraction == 1
            return  # everything sold: the position (and its state) is gone
        state = verdict.state


@st.composite
def target_lists(draw: st.DrawFn, sum_to_100: bool = False) -> tuple[Target, ...]:
    count = draw(st.integers(1, 4))
    profits = sorted(draw(st.sets(pcts, min_size=count, max_size=count)))
    shares = draw(st.lists(st.integers(1, 97), min_size=count, max_size=count))
    total = sum(shares)
    if sum_to_100 or total > 100:  # scaled to sum to 100 exactly, each at least 1
        shares = [max(1, share * 100 // total) for share in shares]
        shares[-1] = 100 - sum(shares[:-1])
        if shares[-1] < 1:
            return tuple(Target(p, D(100 // count)) for p in profits)  # ≤ 100, simpler
    return tuple(Target(p, D(s)) for p, s in zip(profits, shares, strict=True))


def _sell_through(
    path: list[float], risk: RiskSettings
) -> tuple[Decimal, list[tuple[str, Decimal]]]:
    """Walk ``path`` like the tick, one unit entered: each sale booked (targets counted)
    before the next close. What is left, and the sales.
    """
    amount, state, sales = D(1), ExitState(), []
    for price in path:
        verdict = decide_exit(PositionState(float(amount), ENTRY, 1), price, risk, state)
        state = verdict.state
        if verdict.reason is None:
            continue
        sold = amount * verdict.fraction
        sales.append((verdict.reason, sold))
        amount -= sold
        if amount == 0:
            break
        number = target_number(verdict.reason)
        assert number is not None  # only a target sells a part
        state = ExitState(state.highest_price, number)
    return amount, sales


@given(path=prices, targets=target_lists())
def test_targets_sell_in_order_their_shares_of_the_position_as_entered(
    path: list[float], targets: tuple[Target, ...]
) -> None:
    left, sales = _sell_through(path, RiskSettings(targets=targets))
    numbers = [target_number(reason) for reason, _ in sales]
    assert all(n is not None for n in numbers)
    assert numbers == sorted(set(numbers))  # in order, each once
    assert sum(sold for _, sold in sales) <= D(1) and left >= 0
    sold_shares = D(0)
    for (_, sold), number in zip(sales, numbers, strict=True):
        assert number is not None
        reached = sum(t.share_pct for t in targets[:number])
        # What is sold so far is the reached targets' share of the entered amount.
        assert abs(sold_shares + sold * HUNDRED - reached) < D("1e-20")
        sold_shares = reached
        # and each reached target is really reached at that close
    highest = max(_dec(p) for p in path)
    expected = [t for t in targets if highest >= _dec(ENTRY) * (1 + t.profit_pct / HUNDRED)]
    if expected:
        assert numbers and numbers[-1] == len(expected)


@given(path=prices, targets=target_lists(sum_to_100=True))
def test_targets_summing_to_100_leave_the_position_flat_after_the_last(
    path: list[float], targets: tuple[Target, ...]
) -> None:
    left, sales = _sell_through(path, RiskSettings(targets=targets))
    if sales and target_number(sales[-1][0]) == len(targets):
        assert left == 0
    else:
        assert left > 0


@given(path=prices, targets=target_lists(), stop=st.none() | pcts)
def test_breakeven_sells_only_after_a_target_and_never_above_the_entry(
    path: list[float], targets: tuple[Target, ...], stop: Decimal | None
) -> None:
    risk = RiskSettings(stop_loss_pct=stop, targets=targets, breakeven=True)
    amount, state = D(1), ExitState()
    for price in path:
        verdict = decide_exit(PositionState(float(amount), ENTRY, 1), price, risk, state)
        if verdict.reason == "breakeven":
            assert state.targets_hit >= 1 and _dec(price) <= _dec(ENTRY)
            if stop is not None:  # the stop loss came first where both apply
                assert _dec(price) > _dec(ENTRY) * (1 - stop / HUNDRED)
        if verdict.reason is not None and verdict.fraction == 1:
            return
        number = target_number(verdict.reason) if verdict.reason else None
        if number is not None:
            amount -= amount * verdict.fraction
        state = ExitState(verdict.state.highest_price, number or state.targets_hit)
    # A fall back to the entry once a target was sold always sells the rest.
    if state.targets_hit >= 1:
        after = decide_exit(PositionState(float(amount), ENTRY, 1), ENTRY, risk, state)
        assert after.reason in ("breakeven", "stop_loss")


@given(path=prices, trail=pcts)
def test_the_highest_price_never_decreases_while_open(path: list[float], trail: Decimal) -> None:
    risk = RiskSettings(trailing_stop_pct=trail, trailing_arm_pct=D(1000))  # never armed
    state = ExitState()
    for price in path:
        after = decide_exit(_holding(), price, risk, state).state
        assert state.highest_price is None or after.highest_price is not None
        if state.highest_price is not None and after.highest_price is not None:
            assert after.highest_price >= state.highest_price
        state = after
    assert state.highest_price == max(_dec(p) for p in path)


def test_a_gap_through_two_targets_sells_both_at_once_and_asking_again_sells_nothing() -> None:
    risk = RiskSettings(targets=(Target(D(1), D(25)), Target(D(2), D(25)), Target(D(5), D(50))))
    first = decide_exit(_holding(), 103.0, risk)
    assert (first.reason, first.fraction) == ("target_2", D("0.5"))
    booked = ExitState(first.state.highest_price, 2)
    assert decide_exit(_holding(), 103.0, risk, booked).reason is None
    last = decide_exit(_holding(), 105.0, risk, booked)
    assert (last.reason, last.fraction) == ("target_3", D(1))


def test_no_exit_rule_remembers_nothing() -> None:
    risk = RiskSettings(stop_loss_pct=D(5), take_profit_pct=D(5))
    assert decide_exit(_holding(), 101.0, risk).state == ExitState()


# ----------------------------------------------------------------------------------------
# The live tick and the backtester: the same exits at the same candles
# ----------------------------------------------------------------------------------------
# DCA buying everything when flat, and never selling by itself: every sale is an exit rule.
DCA = {"base_order_pct": 100.0, "safety_orders": 0, "take_profit_pct": 100.0}
TRAILING = RiskSettings(trailing_stop_pct=D("0.1"), trailing_arm_pct=D("0.05"))
TARGETS = RiskSettings(
    targets=(Target(D("0.05"), D(30)), Target(D("0.1"), D(30)), Target(D("0.15"), D(40)))
)
BREAKEVEN = RiskSettings(
    stop_loss_pct=D("0.3"),
    targets=(Target(D("0.05"), D(50)), Target(D("0.3"), D(50))),
    breakeven=True,
)
# Each rule, and the exit its case must show (over these candles, found by the backtest).
RULES: dict[str, tuple[RiskSettings, str]] = {
    "trailing": (TRAILING, "trailing_stop"),
    "targets": (TARGETS, "target_2"),
    "breakeven": (BREAKEVEN, "breakeven"),
}


async def _bot_with_exits(app: App, risk: RiskSettings) -> int:
    user = await make_user(app)
    bot_id = await running_bot(app, user, strategy="dca", capital="1000", parameters=DCA)
    async with app.database.transaction() as session:
        bot = await session.get(Bot, bot_id)
        assert bot is not None
        bot.stop_loss_pct = risk.stop_loss_pct
        bot.trailing_stop_pct = risk.trailing_stop_pct
        bot.trailing_arm_pct = risk.trailing_arm_pct
        bot.take_profit_targets = [[str(t.profit_pct), str(t.share_pct)] for t in risk.targets]
        bot.breakeven_after_target = risk.breakeven
    return bot_id


def _feed(app: App) -> MarketDataFeed:
    return MarketDataFeed(app.pool, MemoryCandleCache(), mode="replay")


async def _tick_candles(app: App, first: int, last: int) -> None:
    """One tick per candle ``first..last``, each when that candle has just closed."""
    feed = _feed(app)
    for i in range(first, last + 1):
        await run_tick(app.database, feed, now_ms=T0 + (i + 1) * MINUTE)


async def _orders(app: App, bot_id: int) -> list[tuple[int, str, str, Decimal]]:
    async with app.database.sessions() as session:
        rows = await session.execute(
            select(Order.candle_time, Order.side, Order.reason, Order.filled)
            .where(Order.bot_id == bot_id, Order.status == OrderStatus.FILLED)
            .order_by(Order.id)
        )
        return [(int(t), str(side), reason, D(filled)) for t, side, reason, filled in rows]


def _backtest_fills(risk: RiskSettings) -> list[tuple[int, str, str, Decimal]]:
    candles = ReplayFeed().history("BTC/USDT", "1m", T0, T0 + CANDLES * MINUTE)
    assert len(candles) >= CANDLES
    strategy = get_strategy("dca")
    result = run_backtest(candles, strategy, strategy.validate(DCA), capital=D(1000), risk=risk)
    times = candles.time.tolist()
    return [(int(times[f.index - 1]), f.side, f.reason, f.amount) for f in result.fills]


@pytest.mark.parametrize("rule", list(RULES))
async def test_the_tick_exits_like_the_backtest(app: App, rule: str) -> None:
    risk, reason = RULES[rule]
    expected = _backtest_fills(risk)
    assert reason in {r for _, _, r, _ in expected}  # the case really uses the rule
    assert len({r for _, side, r, _ in expected if side == "sell"}) >= 2 or rule == "trailing"
    bot_id = await _bot_with_exits(app, risk)
    await _tick_candles(app, 0, CANDLES - 2)  # a decision on the last candle does not fill
    assert await _orders(app, bot_id) == expected


async def test_the_exit_state_survives_a_restart(
    app: App, settings: Settings, database_url: str
) -> None:
    risk, _ = RULES["trailing"]
    expected = _backtest_fills(risk)
    exit_at = next(i for i, (_, _, r, _) in enumerate(expected) if r == "trailing_stop")
    trail_candle = (expected[exit_at][0] - T0) // MINUTE
    bot_id = await _bot_with_exits(app, risk)
    await _tick_candles(app, 0, trail_candle - 1)
    async with app.database.sessions() as session:
        position = await session.scalar(select(Position).where(Position.bot_id == bot_id))
    assert position is not None and position.highest_price is not None
    await app.pool.close()

    # A new process: its own database engine and App, nothing in memory. Its first tick
    # is the trailing exit: only a high remembered from before can make it (a high
    # first seen now is this close, and the trail lies under it).
    database = Database(database_url)
    restarted = App.from_settings(settings.model_copy(update={"market_data": "replay"}), database)
    try:
        await _tick_candles(restarted, trail_candle, trail_candle)
        orders = await _orders(restarted, bot_id)
    finally:
        await restarted.pool.close()
        await database.dispose()
    assert orders == expected[: exit_at + 1]
    assert orders[-1][2] == "trailing_stop"


async def test_a_new_position_starts_with_a_fresh_exit_state(app: App) -> None:
    risk, _ = RULES["targets"]
    expected = _backtest_fills(risk)
    bot_id = await _bot_with_exits(app, risk)
    # Up to the first target's sale: one target counted, and a high stored.
    first_target = next(i for i, (_, _, r, _) in enumerate(expected) if r.startswith("target"))
    candle = (expected[first_target][0] - T0) // MINUTE
    await _tick_candles(app, 0, candle)
    async with app.database.sessions() as session:
        position = await session.scalar(select(Position).where(Position.bot_id == bot_id))
    assert position is not None
    assert position.targets_hit == target_number(expected[first_target][2])
    assert position.highest_price is not None
    # After the position closed and the next opened: nothing remembered of the last one.
    closing = next(
        i for i, (_, side, _, _) in enumerate(expected) if i > first_target and side == "buy"
    )
    await _tick_candles(app, candle + 1, (expected[closing][0] - T0) // MINUTE)
    async with app.database.sessions() as session:
        fresh = await session.scalar(select(Position).where(Position.bot_id == bot_id))
    assert fresh is not None and fresh.opened_at != position.opened_at
    assert fresh.targets_hit == 0 and fresh.highest_price is None


async def _live_target_order(app: App, bot_id: int, reason: str, amount: Decimal) -> int:
    async with app.database.transaction() as session:
        bot = await session.get(Bot, bot_id)
        assert bot is not None
        order = Order(
            bot_id=bot_id, user_id=bot.user_id, client_order_id=f"rt-test-{reason}",
            mode=BotMode.LIVE, symbol="BTC/USDT", side=OrderSide.SELL, type=OrderType.MARKET,
            amount=amount, price=D(90_000), reason=reason,
        )  # fmt: skip
        session.add(order)
        await session.flush()
        return order.id


async def _targets_hit(app: App, bot_id: int) -> int:
    async with app.database.sessions() as session:
        position = await session.scalar(select(Position).where(Position.bot_id == bot_id))
    assert position is not None
    return position.targets_hit


async def test_a_live_target_counts_when_its_order_is_booked_not_when_refused(app: App) -> None:
    bot_id = await _bot_with_exits(app, TARGETS)
    await _tick_candles(app, 0, 0)  # the base buy: a position to sell from
    ref = BotRef(bot_id, 0, "exits")
    refused = await _live_target_order(app, bot_id, "target_1", D("0.001"))
    async with app.database.transaction() as session:
        order = await session.get(Order, refused)
        assert order is not None
        await record_rejection(session, order, ref, "insufficient_funds")
    assert await _targets_hit(app, bot_id) == 0

    # Settled later by reconciliation, in two reports (partly filled, then filled).
    settled = await _live_target_order(app, bot_id, "target_2", D("0.002"))
    for status, filled in ((OrderStatus.OPEN, D("0.001")), (OrderStatus.FILLED, D("0.002"))):
        async with app.database.transaction() as session:
            order = await session.get(Order, settled)
            assert order is not None
            report = OrderReport(
                order.client_order_id, "x1", status, order.amount, filled, D(90_000),
                fee_currency="USDT",
            )  # fmt: skip
            await record_report(session, order, report, ref)
        assert await _targets_hit(app, bot_id) == 2  # counted on its first fill, once
