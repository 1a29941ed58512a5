"""The backtester: hand-computed trades, the live tick's rules, cached history, charts."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from db.models import BotMode, Plan
from engine.backtest import FILL_RULE, AmountOutOfRange, BacktestResult, run_backtest
from engine.backtest.candles import HistoricalCandles
from engine.backtest.equity_curve import fill_equity
from engine.backtest.runner import (
    SIGNAL_DRIVEN,
    UNITS,
    _result,
    _Setup,
    _simulate,
    _simulate_by_table,
    _step_ms,
    is_signal_driven,
)
from engine.exchanges.clients import ClientPool
from engine.exchanges.paper import AMOUNT_STEP, FEE_RATE, MIN_ORDER_VALUE, SLIPPAGE
from engine.market_data.feed import STANDARD_WINDOW, MarketSnapshot
from engine.market_data.replay import ReplayFeed
from engine.risk import RiskSettings
from engine.sizing import Budget, buy_quote, cost_rate
from engine.strategies.base import (
    Candles,
    Intent,
    Params,
    PositionState,
    SignalArray,
    Strategy,
    StrategyInfo,
)
from engine.strategies.registry import STRATEGIES, get_strategy
from engine.strategies.sma_crossover import SmaCrossover
from engine.tick import BotState, PositionRow, decide_for_bot
from tests.emulators.exchange import ExchangeEmulator

D = Decimal
MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
T0 = 1_735_689_600_000  # 2025-01-01T00:00Z
NO_RISK = RiskSettings()
SMA_2_3 = {"fast": 2, "slow": 3}
CAPITAL_1000 = D(1000)


def candles_of(
    opens: Sequence[float], closes: Sequence[float], *, step: int = MINUTE, lows: Any = None
) -> Candles:
    open_ = np.asarray(opens, dtype=np.float64)
    close = np.asarray(closes, dtype=np.float64)
    low = np.minimum(open_, close) if lows is None else np.asarray(lows, dtype=np.float64)
    return Candles(
        time=T0 + step * np.arange(close.shape[0], dtype=np.int64),
        open=open_,
        high=np.maximum(open_, close),
        low=low,
        close=close,
        volume=np.ones_like(close),
    )


# SMA(2) and SMA(3) of these closes cross upward on candle 5 (115 > 106.67 after 100 <= 100)
# and downward on candle 7 (115 < 116.67 after 125 >= 120). Opens differ from the previous
# closes so that a fill at the wrong price shows.
CLOSES = [100, 100, 100, 90, 110, 120, 130, 100, 80, 80]
OPENS = [100, 100, 100, 100, 90, 110, 121, 130, 99, 80]


def test_a_round_trip_computed_by_hand() -> None:
    candles = candles_of(OPENS, CLOSES)
    result = run_backtest(candles, SmaCrossover(), SMA_2_3, capital=D(1000), risk=NO_RISK)

    # Buy decided on candle 5's close (120). The budget is the capital: a fill costs
    # 1.0005 * 1.001 - 1 = 0.0015005 on top of its quote amount, so the quote is
    # 1000 / 1.0015005 = 998.50174812693553... and the amount 998.50... / 120 = 8.32084790
    # (rounded down to 1e-8). Filled at candle 6's open 121 + 0.05 % slippage = 121.0605;
    # value 1007.326007197950, fee 0.1 % = 1.007326007197950, cost 1008.333333205147950.
    # Sell decided on candle 7's close, filled at candle 8's open 99 - 0.05 % = 98.9505;
    # value 823.352060128950, fee 0.823352060128950, proceeds 822.528708068821050.
    # PnL = 822.528708068821050 - 1008.333333205147950 = -185.804625136326900.
    (trade,) = result.trades
    assert (trade.entry_index, trade.exit_index) == (6, 8)
    assert (trade.entry_time, trade.exit_time) == (T0 + 6 * MINUTE, T0 + 8 * MINUTE)
    assert trade.amount == D("8.32084790")
    assert trade.entry_price == D("121.0605")
    assert trade.exit_price == D("98.9505")
    assert trade.fees == D("1.007326007197950") + D("0.823352060128950")
    assert trade.pnl == D("-185.804625136326900")
    assert trade.pnl_pct == D("-185.804625136326900") / D("1008.333333205147950") * 100
    assert trade.exit_reason == "exit"
    assert result.open_position is None
    buy, sell = result.fills
    assert (buy.index, buy.side, buy.price, buy.reason) == (6, "buy", D("121.0605"), "entry")
    assert (sell.index, sell.side, sell.fee) == (8, "sell", D("0.823352060128950"))

    final = D(1000) + D("-185.804625136326900")
    assert result.final_equity == final.quantize(D("0.00000001"))
    assert result.total_pnl == D("-185.80462514")
    assert result.total_pnl_pct == D("-18.5805")
    assert result.trade_count == 1
    assert result.win_rate_pct == D(0)
    assert result.exposure_pct == D(20)  # held at the closes of candles 6 and 7
    assert result.buy_and_hold_pct == D(-20)  # open 100 -> close 80
    # Equity at each close: cash + amount * close; the peak is candle 6's. The open above
    # the decision close made the buy cost more than the quote: the cash dips under zero.
    cash_held = 1000 - 1008.333333205147950
    peak = cash_held + 8.32084790 * 130
    expected = [1000.0] * 6 + [peak, cash_held + 8.32084790 * 100] + [float(final)] * 2
    np.testing.assert_allclose(result.equity, expected, rtol=1e-12)
    assert result.max_drawdown_pct == D(repr((1 - float(final) / peak) * 100)).quantize(D("0.0001"))
    assert result.candles == 10
    assert result.fill_rule == FILL_RULE
    assert "i+1's open" in result.fill_rule


def test_fills_happen_at_the_next_open_not_the_signal_close() -> None:
    moved = list(OPENS)
    moved[6] = 140  # only the open after the signal changes
    result = run_backtest(
        candles_of(moved, CLOSES), SmaCrossover(), SMA_2_3, capital=D(1000), risk=NO_RISK
    )
    (trade,) = result.trades
    assert trade.entry_price == D(140) * (1 + SLIPPAGE)
    assert trade.amount == D("8.32084790")  # still sized on the decision close, like the tick


def test_a_signal_on_the_last_candle_never_fills() -> None:
    candles = candles_of(OPENS[:6], CLOSES[:6])  # the buy signal is on the last candle
    result = run_backtest(candles, SmaCrossover(), SMA_2_3, capital=D(1000), risk=NO_RISK)
    assert result.trades == () and result.fills == () and result.open_position is None
    assert result.final_equity == D(1000)


def test_an_open_position_is_marked_at_the_last_close() -> None:
    candles = candles_of(OPENS[:7], CLOSES[:7])
    result = run_backtest(candles, SmaCrossover(), SMA_2_3, capital=D(1000), risk=NO_RISK)
    position = result.open_position
    assert position is not None and result.trades == ()
    assert position.entry_index == 6 and position.amount == D("8.32084790")
    assert position.average_entry == D("121.1815605")  # 121.0605 plus the 0.1 % fee
    assert position.unrealized_pnl == D("8.32084790") * 130 - D("1008.333333205147950")


# Stop loss and take profit: the tick checks them on the candle's close, before the strategy.
def _risk_candles(close_6: float, low_6: float | None = None, close_7: float = 115) -> Candles:
    """SMA(2, 3) buys on candle 5's close (120) and fills at candle 6's open (121)."""
    closes = [100, 100, 100, 90, 110, 120, close_6, close_7, 118, 118]
    opens = [100, 100, 100, 100, 90, 110, 121, close_6 - 1, close_7, 118]
    lows = np.minimum(opens, closes).astype(np.float64)
    if low_6 is not None:
        lows[6] = low_6
    return candles_of(opens, closes, lows=lows)


def test_stop_loss_fires_on_a_close_at_or_under_the_stop() -> None:
    # Entry 121.0605 (+ fee = average 121.1815605); a 5 % stop sits at 115.122482475.
    # Candle 6 closes at 112 without a strategy signal (SMA2 116 > SMA3 114 on both sides).
    risk = RiskSettings(stop_loss_pct=D(5))
    result = run_backtest(
        _risk_candles(close_6=112), SmaCrossover(), SMA_2_3, capital=D(1000), risk=risk
    )
    (trade,) = result.trades
    assert trade.exit_reason == "stop_loss"
    assert trade.exit_index == 7  # decided on candle 6's close, filled at candle 7's open
    assert trade.exit_price == D(111) * (1 - SLIPPAGE)


def test_a_wick_through_the_stop_does_not_fire_it_as_the_tick_sees_closes() -> None:
    risk = RiskSettings(stop_loss_pct=D(5))
    candles = _risk_candles(close_6=118, low_6=50, close_7=125)
    result = run_backtest(candles, SmaCrossover(), SMA_2_3, capital=D(1000), risk=risk)
    assert result.trades == () and result.open_position is not None


def test_take_profit_fires_on_a_close_at_or_over_the_target() -> None:
    # A 5 % take profit on the average 121.1815605 is 127.240638525; candle 6 closes at 130.
    risk = RiskSettings(take_profit_pct=D(5), stop_loss_pct=D(50))
    result = run_backtest(
        _risk_candles(close_6=130), SmaCrossover(), SMA_2_3, capital=D(1000), risk=risk
    )
    (trade,) = result.trades
    assert (trade.exit_reason, trade.exit_index) == ("take_profit", 7)
    assert trade.exit_price == D(129) * (1 - SLIPPAGE)
    assert trade.pnl > 0 and result.win_rate_pct == D(100)


def test_the_risk_exit_wins_over_the_strategy_on_the_same_close() -> None:
    # Candle 7 is both the crossunder and a close under a 5 % stop: the tick asks risk first.
    risk = RiskSettings(stop_loss_pct=D(5))
    result = run_backtest(
        candles_of(OPENS, CLOSES), SmaCrossover(), SMA_2_3, capital=D(1000), risk=risk
    )
    (trade,) = result.trades
    assert (trade.exit_index, trade.exit_reason) == (8, "stop_loss")


def test_max_position_caps_the_buy_like_the_tick() -> None:
    risk = RiskSettings(max_position=D(500))
    result = run_backtest(
        candles_of(OPENS, CLOSES), SmaCrossover(), SMA_2_3, capital=D(1000), risk=risk
    )
    (trade,) = result.trades
    assert trade.amount == (D(500) / D(120)).quantize(AMOUNT_STEP, ROUND_DOWN)  # 4.16666666


class Scripted(Strategy):
    """A strategy whose signals are given: buy when flat on +1, sell all when holding on -1."""

    info: ClassVar[StrategyInfo] = StrategyInfo(name="scripted", basic=True)
    signal_driven = True
    decides_on_signal_and_holding = True

    def __init__(self, signals: Sequence[int]) -> None:
        self.signals = np.asarray(signals, dtype=np.int8)

    def warmup(self, params: Params) -> int:
        return 1

    def compute(self, candles: Candles, params: Params) -> SignalArray:
        return self.signals[: len(candles)].copy()

    def decide(
        self, signal: int, price: float, position: PositionState, params: Params
    ) -> Intent | None:
        if signal > 0 and not position.is_open:
            return Intent("buy", 1.0, "entry")
        if signal < 0 and position.is_open:
            return Intent("sell", 1.0, "exit")
        return None


def test_the_daily_loss_limit_blocks_entries_for_the_rest_of_the_utc_day() -> None:
    # Hourly candles from midnight. Buy on candle 1 at 100 (cost 1001.5005 for 10 units);
    # candle 3 closes at 94: open loss 61.50 >= 5 % of 1000, so day one is blocked from then.
    # The sell on candle 4 still happens. The buy signal on candle 22 (decided at 23:00) is
    # refused; candle 23 closes at midnight, so its decision belongs to day two and buys.
    closes = [100.0] * 30
    closes[3] = closes[4] = 94.0
    opens = [100.0] * 30
    opens[5] = 94.0
    signals = [0] * 30
    signals[1], signals[4], signals[6], signals[22], signals[23] = 1, -1, 1, 1, 1
    risk = RiskSettings(daily_loss_limit_pct=D(5))
    result = run_backtest(
        candles_of(opens, closes, step=HOUR),
        Scripted(signals),
        {},
        capital=D(1000),
        risk=risk,
    )
    assert [(f.index, f.side) for f in result.fills] == [(2, "buy"), (5, "sell"), (24, "buy")]
    assert result.blocked_entries == 2  # candles 6 and 22

    unlimited = run_backtest(
        candles_of(opens, closes, step=HOUR), Scripted(signals), {}, capital=D(1000), risk=NO_RISK
    )
    assert [f.index for f in unlimited.fills] == [2, 5, 7]
    assert unlimited.blocked_entries == 0


def test_a_realised_loss_alone_reaches_the_limit() -> None:
    # The first trade loses ~6.5 % and closes at once; the next entry the same day is refused.
    closes = [100.0] * 8
    opens = [100.0] * 8
    opens[3] = 93.0
    signals = [1, 0, -1, 0, 1, 0, 0, 0]
    result = run_backtest(
        candles_of(opens, closes, step=HOUR),
        Scripted(signals),
        {},
        capital=D(1000),
        risk=RiskSettings(daily_loss_limit_pct=D(5)),
    )
    assert [f.index for f in result.fills] == [1, 3]
    assert result.blocked_entries == 1


# ----------------------------------------------------------------------------------------
# Capital is a budget: buys are engine.sizing.buy_quote's, as the live tick sizes them.
# ----------------------------------------------------------------------------------------
def test_a_bot_that_lost_half_its_capital_buys_half_as_much() -> None:
    # Buy on candle 0's close (100), filled at 100; sold at 50 (half the money gone, plus
    # fees); the next buy, decided on candle 3's close (50), is sized on what is left.
    closes = [100.0, 100.0, 50.0, 50.0, 50.0, 50.0]
    opens = [100.0, 100.0, 100.0, 50.0, 50.0, 50.0]
    signals = [1, 0, -1, 1, 0, 0]
    candles = candles_of(opens, closes)
    assert assert_table_is_the_loop(candles, Scripted(signals), {})
    result = run_backtest(candles, Scripted(signals), {}, capital=D(1000), risk=NO_RISK)
    first, _, second = result.fills
    (trade,) = result.trades
    assert -trade.pnl / D(1000) == pytest.approx(D("0.5"), abs=D("0.01"))
    first_quote, second_quote = first.amount * 100, second.amount * 50
    assert second_quote / first_quote == pytest.approx(D("0.5"), abs=D("0.01"))
    # Exactly engine.sizing.buy_quote of capital plus the realised PnL, on the close.
    fill_cost = cost_rate(FEE_RATE, SLIPPAGE)
    quote = buy_quote(
        Budget(D(1000), trade.pnl, D(0)), symbols=1, fraction=D(1), position_value=D(0),
        risk=NO_RISK, cost_rate=fill_cost,
    )  # fmt: skip
    assert second.amount == (quote / 50).quantize(AMOUNT_STEP, ROUND_DOWN)
    assert first.amount == (D(1000) / (1 + fill_cost) / 100).quantize(AMOUNT_STEP, ROUND_DOWN)


def test_a_month_of_minutes_of_a_losing_crossover_never_takes_equity_below_zero() -> None:
    # Sized on a fixed capital, this bot lost 3.75 times its 1,000 USDT (final equity
    # -2,753): every trade spent 1,000 whatever was left. On its budget it buys less as it
    # loses, and what it cannot lose it does not have.
    candles = ReplayFeed().history("BTC/USDT", "1m", T0, T0 + 30 * DAY)
    assert len(candles) == 30 * 24 * 60
    result = run_backtest(candles, SmaCrossover(), {}, capital=D(1000), risk=NO_RISK)
    assert result.trade_count > 1000 and result.total_pnl < -500  # it really loses
    assert result.final_equity >= 0
    assert float(result.equity.min()) >= 0
    assert result.total_pnl_pct >= -100
    assert assert_table_is_the_loop(candles, SmaCrossover(), {})


def test_orders_under_the_paper_minimum_are_rejected() -> None:
    # Capital 0.5: the buy's value is under the paper exchange's 1 USDT minimum.
    result = run_backtest(
        candles_of(OPENS, CLOSES), SmaCrossover(), SMA_2_3, capital=D("0.5"), risk=NO_RISK
    )
    assert result.fills == () and result.rejected_orders == 1
    assert D(1) == MIN_ORDER_VALUE


@pytest.mark.parametrize(
    "risk",
    [NO_RISK, RiskSettings(stop_loss_pct=D(1)), RiskSettings(max_position=D(10**9))],
    ids=["walk", "walk with exit levels", "loop"],
)
def test_an_amount_beyond_int64_steps_is_refused_by_name(risk: RiskSettings) -> None:
    # 123,456 USDT at 1e-7 is 1.2e12 units, 1.2e20 steps of 1e-8: more than int64 holds.
    prices = [1e-7] * 10
    with pytest.raises(AmountOutOfRange, match="beyond what the backtest counts"):
        run_backtest(
            candles_of(prices, prices), Scripted([1, 0, 0, -1, 0, 0, 0, 0, 0, 0]), {},
            capital=D(123456), risk=risk,
        )  # fmt: skip
    # At 1e-5 it is 1.2e18 steps, within int64: backtested, bought whole.
    prices = [1e-5] * 10
    result = run_backtest(
        candles_of(prices, prices), Scripted([1, 0, 0, -1, 0, 0, 0, 0, 0, 0]), {},
        capital=D(123456), risk=risk,
    )  # fmt: skip
    assert result.trade_count == 1 and result.fills[0].amount > D(10**10)


@pytest.mark.parametrize(
    ("risk", "reports"),
    [(RiskSettings(max_position=D(500)), range(5, 26)), (NO_RISK, range(5, 26))],
    ids=["loop", "walk"],
)
def test_progress_is_reported_from_zero_to_one(risk: RiskSettings, reports: Sequence[int]) -> None:
    # About 20 times, whether the decision loop runs or the walk over the fills.
    seen: list[float] = []
    candles = ReplayFeed().history("BTC/USDT", "1m", T0, T0 + DAY)
    run_backtest(candles, SmaCrossover(), {}, capital=D(1000), risk=risk, progress=seen.append)
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert seen == sorted(seen) and len(seen) in reports


@pytest.mark.parametrize("name", sorted(SIGNAL_DRIVEN))
def test_signal_driven_strategies_do_nothing_without_a_signal(name: str) -> None:
    # The backtest skips candles without a signal for these; prove decide agrees.
    strategy = get_strategy(name)
    assert is_signal_driven(strategy)
    params = strategy.defaults()
    for position in (
        PositionState(),
        PositionState(0.5, 100.0, 1),
        PositionState(0.5, 100.0, 7),
        PositionState(3.0, 90_000.0, 3),
    ):
        for price in (0.01, 1.0, 99.0, 100.0, 101.0, 80_000.0, 90_000.0, 1e7):
            assert strategy.decide(0, price, position, params) is None


def test_strategies_that_act_on_price_alone_are_asked_on_every_candle() -> None:
    assert not is_signal_driven(get_strategy("dca"))
    assert set(STRATEGIES) >= SIGNAL_DRIVEN


# ----------------------------------------------------------------------------------------
# Without risk rules the fills of a strategy that decides on its signal and holding alone
# are found without the decision loop: that must be the loop's run, bit for bit.
# ----------------------------------------------------------------------------------------
class Tabled(Strategy):
    """Given signals; ``decide`` looks the answer up by signal, flat or holding."""

    info: ClassVar[StrategyInfo] = StrategyInfo(name="tabled", basic=True)
    signal_driven = True
    decides_on_signal_and_holding = True

    def __init__(
        self,
        signals: Sequence[int],
        flat: Mapping[int, Intent | None],
        holding: Mapping[int, Intent | None],
    ) -> None:
        self.signals = np.asarray(signals, dtype=np.int8)
        self.flat = dict(flat)
        self.holding = dict(holding)

    def warmup(self, params: Params) -> int:
        return 1

    def compute(self, candles: Candles, params: Params) -> SignalArray:
        return self.signals[: len(candles)].copy()

    def decide(
        self, signal: int, price: float, position: PositionState, params: Params
    ) -> Intent | None:
        return (self.holding if position.is_open else self.flat).get(signal)


def _setup_and_signals(
    candles: Candles,
    strategy: Strategy,
    params: Mapping[str, Any],
    capital: Decimal,
    risk: RiskSettings,
    fee_rate: Decimal,
    slippage: Decimal,
) -> tuple[_Setup, SignalArray, npt.NDArray[np.int64]]:
    values = strategy.validate(params)
    signals = strategy.compute(candles, values)
    n = len(candles)
    events = np.flatnonzero(signals != 0) if is_signal_driven(strategy) else np.arange(n)
    setup = _Setup(
        candles, _step_ms(candles.time), strategy, values, capital, risk, fee_rate, slippage
    )
    return setup, signals, events.astype(np.int64)


def assert_same_result(tested: BacktestResult, reference: BacktestResult) -> None:
    assert tested == reference  # every summary figure
    assert np.array_equal(tested.equity, reference.equity)
    assert tested.fills == reference.fills
    assert tested.trades == reference.trades
    assert tested.open_position == reference.open_position


def assert_table_is_the_loop(
    candles: Candles,
    strategy: Strategy,
    params: Mapping[str, Any],
    *,
    capital: Decimal = CAPITAL_1000,
    risk: RiskSettings = NO_RISK,
    fee_rate: Decimal = FEE_RATE,
    slippage: Decimal = SLIPPAGE,
) -> bool:
    """run_backtest against the decision loop alone; whether the table path ran."""
    setup, signals, events = _setup_and_signals(
        candles, strategy, params, capital, risk, fee_rate, slippage
    )
    try:
        loop = _simulate(setup, signals, events, None)
    except OverflowError:  # an amount beyond int64 steps: refused on every path
        with pytest.raises(AmountOutOfRange):
            run_backtest(
                candles, strategy, params, capital=capital, risk=risk, fee_rate=fee_rate,
                slippage=slippage,
            )  # fmt: skip
        return False
    table = _simulate_by_table(setup, signals, events)
    if table is not None:
        assert np.array_equal(table.fill_index, loop.fill_index)
        assert np.array_equal(table.fill_steps, loop.fill_steps)
        assert table.reasons == loop.reasons
        assert np.array_equal(table.trade_pnl, loop.trade_pnl)  # float64, bit for bit
        assert (table.dust, table.rejected, table.blocked) == (loop.dust, loop.rejected, 0)
    tested = run_backtest(
        candles, strategy, params, capital=capital, risk=risk, fee_rate=fee_rate,
        slippage=slippage,
    )  # fmt: skip
    assert_same_result(tested, _result(setup, loop))
    return table is not None


def test_without_risk_rules_a_crossover_year_day_needs_no_loop() -> None:
    candles = ReplayFeed().history("BTC/USDT", "1m", T0, T0 + DAY)
    assert assert_table_is_the_loop(candles, SmaCrossover(), {"fast": 5, "slow": 13})
    assert assert_table_is_the_loop(candles, get_strategy("rsi"), {"period": 7})


@pytest.mark.parametrize(
    "risk",
    [
        RiskSettings(max_position=D(700)),
        RiskSettings(daily_loss_limit_pct=D("0.5")),
    ],
)
def test_a_risk_rule_other_than_exit_levels_runs_the_loop(risk: RiskSettings) -> None:
    # Stop loss, take profit and trailing stop: tests/engine/test_backtest_exit_levels.py
    candles = ReplayFeed().history("BTC/USDT", "1m", T0, T0 + DAY)
    assert not assert_table_is_the_loop(candles, SmaCrossover(), {"fast": 5, "slow": 13}, risk=risk)


def test_what_the_table_cannot_follow_runs_the_loop() -> None:
    candles = candles_of(OPENS, CLOSES)
    signals = [0, 1, 0, -1, 1, 0, -1, 1, -1, 0]
    buy, sell = Intent("buy", 1.0, "entry"), Intent("sell", 1.0, "exit")
    for flat, holding in [
        ({1: buy}, {-1: Intent("sell", 0.5, "trim")}),  # a partial sale
        ({1: buy}, {1: Intent("buy", 0.5, "more"), -1: sell}),  # a buy while holding
        ({1: buy}, {1: sell}),  # one signal that opens and closes
    ]:
        strategy = Tabled(signals, flat, holding)
        assert not assert_table_is_the_loop(candles, strategy, {})
    assert assert_table_is_the_loop(candles, Tabled(signals, {1: buy}, {-1: sell}), {})


def test_an_amount_on_a_whole_step_is_not_floored_one_short_without_the_loop() -> None:
    # Without fee and slippage a buy spends the whole budget, and with each open at the
    # close before it every budget / decision close lands on a whole 1e-8 step:
    # 123456.789 / 0.1 = 1234567.89 exactly, which float64 puts at ...88.99999999999998.
    closes = [0.1, 0.2, 0.8, 1.6, 3.2, 6.4, 0.1, 0.1]
    candles = candles_of([0.1, *closes[:-1]], closes)
    signals = [1, -1, 1, -1, 1, -1, 1, -1]
    capital, free = D("123456.789"), {"fee_rate": D(0), "slippage": D(0)}
    assert assert_table_is_the_loop(candles, Scripted(signals), {}, capital=capital, **free)
    result = run_backtest(candles, Scripted(signals), {}, capital=capital, risk=NO_RISK, **free)
    # Each sale at the next close: the budget becomes amount * that close.
    assert [fill.amount for fill in result.fills if fill.side == "buy"] == [
        D("1234567.89"),  # 123456.789 / 0.1
        D("308641.9725"),  # 1234567.89 * 0.2 / 0.8
        D("154320.98625"),  # 308641.9725 * 1.6 / 3.2
        D("9876543.12"),  # 154320.98625 * 6.4 / 0.1
    ]


INTENTS = [
    None,
    Intent("buy", 1.0, "entry"),
    Intent("buy", 0.25, "quarter"),
    Intent("buy", 0.0, "nothing"),
    Intent("sell", 1.0, "exit"),
    Intent("sell", 2.0, "all"),
    Intent("sell", 0.5, "half"),
    Intent("sell", 0.0, "nothing"),
]
RISKS = st.one_of(
    st.just(NO_RISK),
    st.builds(
        RiskSettings,
        stop_loss_pct=st.sampled_from([None, D("0.5"), D(3)]),
        take_profit_pct=st.sampled_from([None, D("0.5"), D(3)]),
        max_position=st.sampled_from([None, D(0), D(400), D(10**6)]),
        daily_loss_limit_pct=st.sampled_from([None, D(1), D(10)]),
    ),
)


# Capital / price lands on a whole 1e-8 step for these, where float64 alone may floor it
# one step short (123456.789 / 0.1): the exact Decimal rule must decide, in both paths.
STEP_PRICES = [0.1, 0.2, 0.8, 1.6, 3.2, 6.4, 12.5, 0.7, 1.1]


@st.composite
def markets(draw: st.DrawFn) -> Candles:
    """A random walk, or prices from a few; rounded prices make exact ties."""
    count = draw(st.integers(2, 300))
    step = draw(st.sampled_from([MINUTE, HOUR]))
    if draw(st.booleans()):
        picked = st.lists(st.sampled_from(STEP_PRICES), min_size=count, max_size=count)
        return candles_of(draw(picked), draw(picked), step=step)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    base = draw(st.sampled_from([0.001, 1.0, 125.0, 60_000.0]))
    volatility = draw(st.sampled_from([0.001, 0.03]))
    closes = base * np.exp(np.cumsum(rng.normal(0.0, volatility, count)))
    opens = np.concatenate(([base], closes[:-1])) * np.exp(rng.normal(0.0, volatility / 4, count))
    if base >= 1.0 and draw(st.booleans()):
        closes, opens = np.maximum(np.round(closes), 1.0), np.maximum(np.round(opens), 1.0)
    return candles_of(opens.tolist(), closes.tolist(), step=step)


@st.composite
def strategies_to_test(draw: st.DrawFn, candles: Candles) -> tuple[Strategy, dict[str, Any]]:
    kind = draw(st.sampled_from(["sma_crossover", "rsi", "grid", "tabled"]))
    if kind == "sma_crossover":
        fast = draw(st.integers(2, 10))
        return SmaCrossover(), {"fast": fast, "slow": draw(st.integers(fast + 1, 25))}
    if kind == "rsi":
        return get_strategy("rsi"), {"period": draw(st.integers(2, 14))}
    if kind == "grid":
        low, high = float(candles.close.min()), float(candles.close.max())
        return get_strategy("grid"), {"lower": low, "upper": max(high, low * 1.01), "levels": 5}
    values = draw(st.lists(st.sampled_from([-2, -1, 1, 2]), min_size=1, max_size=4, unique=True))
    flat = {v: draw(st.sampled_from(INTENTS)) for v in values}
    holding = {v: draw(st.sampled_from(INTENTS)) for v in values}
    signals = draw(
        st.lists(st.sampled_from([0, 0, 0, *values]), min_size=len(candles), max_size=len(candles))
    )
    return Tabled(signals, flat, holding), {}


@settings(max_examples=250, deadline=None)
@given(st.data(), markets(), RISKS)
def test_the_run_without_the_loop_is_the_loop_s_run(
    data: st.DataObject, candles: Candles, risk: RiskSettings
) -> None:
    strategy, params = data.draw(strategies_to_test(candles))
    capital = data.draw(st.sampled_from([D("0.5"), D(3), D(1000), D("123456.789")]))
    fee_rate = data.draw(st.sampled_from([D(0), FEE_RATE, D("0.0025")]))
    slippage = data.draw(st.sampled_from([D(0), SLIPPAGE, D("0.01")]))
    tabled = assert_table_is_the_loop(
        candles, strategy, params, capital=capital, risk=risk, fee_rate=fee_rate,
        slippage=slippage,
    )  # fmt: skip
    event("without the loop" if tabled else "through the loop")
    other_rules = risk.max_position is not None or bool(risk.daily_loss_limit_pct)
    if other_rules or not strategy.decides_on_signal_and_holding:
        assert not tabled


@settings(max_examples=100, deadline=None)
@given(st.data(), markets(), RISKS)
def test_every_buy_is_buy_quote_of_the_trades_before_it(
    data: st.DataObject, candles: Candles, risk: RiskSettings
) -> None:
    # Each buy of a bot that buys only when flat (nothing committed), from the Decimal trade
    # list: buy_quote of capital plus the PnL of the trades before it, over the decision
    # close, rounded down like the paper exchange. Through the loop and without it.
    signals = data.draw(st.lists(st.sampled_from([0, 0, 1, -1]), min_size=len(candles),
                                 max_size=len(candles)))  # fmt: skip
    capital = data.draw(st.sampled_from([D(3), D(1000), D("123456.789")]))
    fee_rate = data.draw(st.sampled_from([D(0), FEE_RATE, D("0.0025")]))
    slippage = data.draw(st.sampled_from([D(0), SLIPPAGE, D("0.01")]))
    try:
        result = run_backtest(
            candles, Scripted(signals), {}, capital=capital, risk=risk, fee_rate=fee_rate,
            slippage=slippage,
        )  # fmt: skip
    except AmountOutOfRange:
        # Only where a buy of about the capital at the lowest close is near 2**63 steps.
        assert float(capital) / float(np.min(candles.close)) * UNITS > 2**60
        event("amount out of range")
        return
    fill_cost = cost_rate(fee_rate, slippage)
    realized = D(0)
    trades = iter(result.trades)
    for fill in result.fills:
        if fill.side == "sell":
            realized += next(trades).pnl
            continue
        close = _dec(candles.close[fill.index - 1])
        quote = buy_quote(
            Budget(capital, realized, D(0)), symbols=1, fraction=D(1), position_value=D(0),
            risk=risk, cost_rate=fill_cost,
        )  # fmt: skip
        assert fill.amount == (quote / close).quantize(AMOUNT_STEP, ROUND_DOWN)


@settings(max_examples=300, deadline=None)
@given(
    st.floats(1.0, 1e6),
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), max_size=200),
    st.lists(st.floats(-1e3, 1e3, allow_nan=False), max_size=20),
    st.lists(st.floats(allow_infinity=True), max_size=3),
)
def test_the_compiled_equity_curve_is_numpy_s(
    capital: float, moves: list[float], amounts: list[float], odd: list[float]
) -> None:
    # The curve, its lowest ratio to the running peak and its lowest value, as numpy
    # computes them, bit for bit, NaN and infinities included.
    close = np.abs(np.asarray([capital, *moves, *odd], dtype=np.float64)) + 1.0
    count = close.shape[0]
    fill_index = np.sort(np.arange(len(amounts), dtype=np.int64) * 7 % count)
    held_after = np.abs(np.asarray(amounts, dtype=np.float64))
    lengths = np.diff(np.concatenate(([0], fill_index, [count])))
    expected = np.repeat(np.concatenate(([0.0], held_after)), lengths)
    with np.errstate(over="ignore", invalid="ignore"):  # infinities are part of the test
        cash_after = capital - np.cumsum(held_after * close[fill_index])
        expected *= close
        expected += np.repeat(np.concatenate(([capital], cash_after)), lengths)
    equity = np.empty(count, dtype=np.float64)
    lowest_to_peak, lowest = fill_equity(fill_index, held_after, cash_after, close, capital, equity)
    assert equity.tobytes() == expected.tobytes()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float((expected / np.maximum.accumulate(expected)).min())
    assert np.array_equal([lowest_to_peak, lowest], [ratio, expected.min()], equal_nan=True)


# ----------------------------------------------------------------------------------------
# The backtest and the live tick make the same decisions over the same candles.
# ----------------------------------------------------------------------------------------
def _window(candles: Candles, start: int, stop: int) -> Candles:
    return Candles(
        candles.time[start:stop],
        candles.open[start:stop],
        candles.high[start:stop],
        candles.low[start:stop],
        candles.close[start:stop],
        candles.volume[start:stop],
    )


def _dec(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def live_tick_fills(
    candles: Candles, name: str, params: dict[str, Any], capital: Decimal, risk: RiskSettings
) -> list[tuple[int, str, str, Decimal]]:
    """Run ``decide_for_bot`` candle by candle on the window the tick would fetch, filling each
    order at the next open like the paper exchange and booking it like the bookkeeping.
    """
    strategy = get_strategy(name)
    bot = BotState(
        id=1, user_id=1, name="twin", exchange="binance", symbols=["BTC/USDT"], timeframe="1m",
        strategy=name, parameters=params, capital=capital, mode=BotMode.PAPER, risk=risk,
        plan=Plan.PREMIUM, market_data_source="replay",
    )  # fmt: skip
    window = max(strategy.warmup(params) + 2, STANDARD_WINDOW)
    fills: list[tuple[int, str, str, Decimal]] = []
    for i in range(len(candles) - 1):  # a decision on the last candle has no next open
        snapshot = MarketSnapshot(_window(candles, max(0, i + 1 - window), i + 1), "replay")
        signal = int(strategy.compute(snapshot.candles, params)[-1])
        decision = decide_for_bot(bot, "BTC/USDT", snapshot, signal)
        if decision is None:
            continue
        amount = decision.amount.quantize(AMOUNT_STEP, rounding=ROUND_DOWN)
        buying = decision.intent.side == "buy"
        price = _dec(candles.open[i + 1]) * (1 + SLIPPAGE if buying else 1 - SLIPPAGE)
        value = amount * price
        if amount <= 0 or value < MIN_ORDER_VALUE:
            continue
        fee = value * FEE_RATE
        position = bot.positions.get("BTC/USDT")
        if buying:
            cost = value + fee
            if position is None:
                position = PositionRow(amount, cost / amount, cost, 1)
            else:
                total, spent = position.amount + amount, position.cost + cost
                position = PositionRow(total, spent / total, spent, position.entries + 1)
            bot.positions["BTC/USDT"] = position
        else:
            assert position is not None
            share = position.cost * amount / position.amount
            bot.realized_pnl += value - fee - share  # as bot_results adds each trade's PnL
            left = position.amount - amount
            if left <= AMOUNT_STEP:
                del bot.positions["BTC/USDT"]
            else:
                bot.positions["BTC/USDT"] = PositionRow(
                    left, position.average_entry, position.cost - share, position.entries
                )
        fills.append((i, decision.intent.side, decision.intent.reason, amount))
    return fills


TWIN_CASES = [
    ("sma_crossover", {"fast": 5, "slow": 13}, RiskSettings()),
    (
        "sma_crossover",
        {"fast": 5, "slow": 13},
        RiskSettings(stop_loss_pct=D("0.15"), take_profit_pct=D("0.2"), max_position=D(700)),
    ),
    ("dca", {"safety_step_pct": 0.1, "take_profit_pct": 0.15, "safety_orders": 10}, RiskSettings()),
    ("grid", {"lower": 110_000.0, "upper": 112_500.0, "levels": 12}, RiskSettings()),
]


@pytest.mark.parametrize(("name", "params", "risk"), TWIN_CASES)
def test_the_backtest_decides_like_the_live_tick(
    name: str, params: dict[str, Any], risk: RiskSettings
) -> None:
    candles = ReplayFeed().history("BTC/USDT", "1m", T0, T0 + 12 * HOUR)
    strategy = get_strategy(name)
    values = strategy.validate(params)
    live = live_tick_fills(candles, name, values, D(1000), risk)
    result = run_backtest(candles, strategy, values, capital=D(1000), risk=risk)
    tested = [(f.index - 1, f.side, f.reason, f.amount) for f in result.fills]
    assert len(live) >= 10  # the case really trades
    assert tested == live
    entries = [i for i, side, _, _ in tested if side == "buy"]
    assert entries == [i for i, side, _, _ in live if side == "buy"]


# ----------------------------------------------------------------------------------------
# Historical candles: fetched page by page once, then read from the SQLite cache.
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def emulator() -> Iterator[ExchangeEmulator]:
    with ExchangeEmulator() as emu:
        yield emu


def _klines(emu: ExchangeEmulator) -> list[str]:
    return [c.path for c in emu.calls if c.path.endswith("/klines")]


async def test_history_is_fetched_in_pages_once_then_served_from_disk(
    emulator: ExchangeEmulator, tmp_path: Path
) -> None:
    start = 1_704_067_200_000  # 2024-01-01T00:00Z
    end = start + 4 * DAY
    emulator.reset_calls()
    pool = ClientPool({"binance": emulator.base_url})
    try:
        history = HistoricalCandles(pool, tmp_path, page_limit=40)
        first = await history.history("binance", "BTC/USDT", "1h", start, end)
    finally:
        await pool.close()
    assert first.source == "exchange"
    assert len(first.candles) == 96 and first.exchange_calls == 3  # 40 + 40 + 16
    assert len(_klines(emulator)) == 3
    assert int(first.candles.time[0]) == start and int(first.candles.time[-1]) == end - HOUR
    assert (np.diff(first.candles.time) == HOUR).all()

    emulator.reset_calls()
    pool = ClientPool({"binance": emulator.base_url})  # a new process: nothing in memory
    try:
        history = HistoricalCandles(pool, tmp_path, page_limit=40)
        again = await history.history("binance", "BTC/USDT", "1h", start, end)
        assert emulator.calls == []  # not even the markets
        assert again.exchange_calls == 0 and again.source == "exchange"
        np.testing.assert_array_equal(again.candles.close, first.candles.close)
        np.testing.assert_array_equal(again.candles.time, first.candles.time)

        # A longer period fetches only the day that is missing.
        longer = await history.history("binance", "BTC/USDT", "1h", start, end + DAY)
    finally:
        await pool.close()
    assert len(longer.candles) == 120 and longer.exchange_calls == 1
    assert len(_klines(emulator)) == 1
    np.testing.assert_array_equal(longer.candles.close[:96], first.candles.close)


async def test_history_falls_back_to_replay_when_the_exchange_is_unreachable(
    tmp_path: Path,
) -> None:
    pool = ClientPool({"binance": "http://127.0.0.1:9"}, timeout_ms=2_000)  # nothing listens
    start, end = T0, T0 + DAY
    try:
        history = HistoricalCandles(pool, tmp_path)
        unreachable = await history.history("binance", "BTC/USDT", "15m", start, end)
        offline = await history.history("binance", "BTC/USDT", "15m", start, end, offline=True)
    finally:
        await pool.close()
    expected = ReplayFeed().history("BTC/USDT", "15m", start, end)
    for answer in (unreachable, offline):
        assert answer.source == "replay"
        np.testing.assert_array_equal(answer.candles.close, expected.close)
        np.testing.assert_array_equal(answer.candles.time, expected.time)
    assert offline.exchange_calls == 0
