"""Capital is a budget: the one sizing rule the tick and the backtester share."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from engine.risk import RiskSettings
from engine.sizing import Budget, buy_quote, cost_rate, within_account

D = Decimal
COST = cost_rate(D("0.001"), D("0.0005"))
NO_RISK = RiskSettings()


def quote(budget: Budget, fraction: str = "1", **kw: object) -> Decimal:
    args: dict[str, object] = {
        "symbols": 1, "fraction": D(fraction), "position_value": D(0), "risk": NO_RISK,
        "cost_rate": COST,
    }  # fmt: skip
    args.update(kw)
    return buy_quote(budget, **args)  # type: ignore[arg-type]


def test_cost_rate_is_slippage_then_the_fee_on_the_value() -> None:
    assert D("0.0015005") == COST


def test_a_bot_that_lost_half_buys_half_and_one_that_doubled_buys_double() -> None:
    base = quote(Budget(D(1000)), "0.2")
    assert base == D(200)
    assert quote(Budget(D(1000), D(-500)), "0.2") == D(100)
    assert quote(Budget(D(1000), D(1000)), "0.2") == D(400)


def test_a_buy_takes_no_more_than_what_is_left_of_the_budget_fees_included() -> None:
    spent = quote(Budget(D(100), D(0), committed=D(99)))
    assert spent == D(1) / (1 + COST)
    assert spent * (1 + COST) <= D(1)


def test_nothing_is_bought_once_the_budget_is_gone() -> None:
    assert quote(Budget(D(1000), D(-1000))) == 0
    assert quote(Budget(D(1000), D(-2000))) == 0  # never negative
    assert quote(Budget(D(1000), D(0), committed=D(1000))) == 0


def test_never_more_than_the_account_holds() -> None:
    assert quote(Budget(D(1000)), account_free=D(50)) == D(50) / (1 + COST)
    assert within_account(D(10), D(-5), COST) == 0


def test_a_multi_symbol_bot_gives_each_symbol_its_share() -> None:
    assert quote(Budget(D(1000)), "0.5", symbols=4) == D(125)


def test_max_position_still_caps_the_buy() -> None:
    risk = RiskSettings(max_position=D(300))
    assert quote(Budget(D(1000)), position_value=D(250), risk=risk) == D(50)


money = st.decimals(min_value=0, max_value=10**7, places=8, allow_nan=False)


@given(capital=money, pnl=st.decimals(-(10**7), 10**7, places=8), held=money, free=money)
def test_spending_stays_within_the_budget_and_the_account(
    capital: Decimal, pnl: Decimal, held: Decimal, free: Decimal
) -> None:
    budget = Budget(capital, pnl, committed=held)
    spent = quote(budget, "1", account_free=free) * (1 + COST)
    assert spent >= 0
    assert spent <= budget.free * (1 + D("1e-20")) and spent <= free * (1 + D("1e-20"))
