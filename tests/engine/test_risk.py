"""The risk rules the tick and the backtester share."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.risk import RiskSettings, cap_buy_quote, daily_loss_breached, decide_exit
from engine.strategies.base import PositionState

D = Decimal
NO_LIMITS = RiskSettings()
FLAT = PositionState()


def long_at(average_entry: float) -> PositionState:
    return PositionState(amount=0.01, average_entry=average_entry, entries=1)


def test_no_limits_changes_nothing() -> None:
    assert decide_exit(long_at(100.0), 1.0, NO_LIMITS).reason is None
    assert decide_exit(long_at(100.0), 1_000.0, NO_LIMITS).reason is None
    assert cap_buy_quote(D("1000"), D("5000"), NO_LIMITS) == D("1000")
    assert not daily_loss_breached(D("-900"), D("-90"), D("1000"), NO_LIMITS)


def test_stop_loss_and_take_profit_by_percent_of_average_entry() -> None:
    risk = RiskSettings(stop_loss_pct=D("5"), take_profit_pct=D("10"))
    position = long_at(90_000.0)
    assert decide_exit(position, 85_500.01, risk).reason is None
    assert decide_exit(position, 85_500.0, risk).reason == "stop_loss"  # exactly -5 %
    assert decide_exit(position, 60_000.0, risk).reason == "stop_loss"
    assert decide_exit(position, 98_999.99, risk).reason is None
    assert decide_exit(position, 99_000.0, risk).reason == "take_profit"  # exactly +10 %
    assert decide_exit(position, 90_000.0, risk).reason is None


def test_decimal_conversion_keeps_the_written_price() -> None:
    # 0.1 * 3 is not 0.3 in binary; the rule compares the decimal prices a user reads.
    risk = RiskSettings(take_profit_pct=D("200"))
    assert decide_exit(long_at(0.1), 0.3, risk).reason == "take_profit"


def test_a_flat_or_unpriced_position_never_exits() -> None:
    risk = RiskSettings(stop_loss_pct=D("1"), take_profit_pct=D("1"))
    assert decide_exit(FLAT, 1.0, risk).reason is None
    assert decide_exit(PositionState(amount=1.0, average_entry=0.0), 1.0, risk).reason is None


def test_a_non_finite_price_is_a_bug() -> None:
    with pytest.raises(ValueError):
        decide_exit(long_at(100.0), float("nan"), RiskSettings(stop_loss_pct=D("5")))


def test_buys_are_capped_by_max_position() -> None:
    risk = RiskSettings(max_position=D("1000"))
    assert cap_buy_quote(D("300"), D("0"), risk) == D("300")
    assert cap_buy_quote(D("300"), D("800"), risk) == D("200")
    assert cap_buy_quote(D("300"), D("1000"), risk) == D("0")
    assert cap_buy_quote(D("300"), D("1200"), risk) == D("0")  # already over: never negative
    assert cap_buy_quote(D("-5"), D("0"), risk) == D("0")


def test_daily_loss_counts_realized_and_open_results() -> None:
    risk = RiskSettings(daily_loss_limit_pct=D("5"))
    capital = D("1000")
    assert not daily_loss_breached(D("-30"), D("-19.99"), capital, risk)
    assert daily_loss_breached(D("-30"), D("-20"), capital, risk)  # exactly -5 %
    assert daily_loss_breached(D("0"), D("-60"), capital, risk)
    assert not daily_loss_breached(D("-80"), D("40"), capital, risk)  # open gains offset
    assert not daily_loss_breached(D("100"), D("0"), capital, risk)
    assert not daily_loss_breached(D("-100"), D("0"), D("0"), risk)  # no capital, no percent


@pytest.mark.parametrize(
    "settings",
    [
        {"stop_loss_pct": D("0")},
        {"stop_loss_pct": D("-1")},
        {"max_position": D("-1")},
        {"take_profit_pct": D("NaN")},
        {"max_position": D("Infinity")},
        {"daily_loss_limit_pct": 5.0},
    ],
)
def test_bad_settings_are_refused(settings: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RiskSettings(**settings)  # type: ignore[arg-type]


def test_edge_settings_that_make_sense_are_accepted() -> None:
    never_stops = RiskSettings(stop_loss_pct=D("100"))
    assert decide_exit(long_at(100.0), 0.01, never_stops).reason is None
    buys_nothing = RiskSettings(max_position=D("0"))
    assert cap_buy_quote(D("50"), D("0"), buys_nothing) == D("0")


def test_settings_are_immutable() -> None:
    risk = RiskSettings(stop_loss_pct=D("5"))
    with pytest.raises(AttributeError):
        risk.stop_loss_pct = D("6")  # type: ignore[misc]
