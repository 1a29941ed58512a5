"""Bot settings as typed: every key parsed, every mistake named, nothing dropped."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.risk import Target
from engine.strategies.registry import get_strategy
from robotrader.errors import UserError
from robotrader.i18n import Translator, error_text
from robotrader.use_cases.bot_settings import (
    TIMEFRAMES,
    BotSettings,
    changes,
    one_line,
    parse_options,
    risk_settings,
    with_changes,
)

RSI = get_strategy("rsi")


def test_the_issue_example_sets_everything_it_names() -> None:
    options = parse_options(["tf=1h", "sl=3", "tp=2:50,4:50", "trail=1.5@2", "be=1"], RSI)
    settings = with_changes(BotSettings(), options.settings)
    assert settings == BotSettings(
        timeframe="1h", stop_loss_pct=Decimal(3),
        targets=(Target(Decimal(2), Decimal(50)), Target(Decimal(4), Decimal(50))),
        trailing_stop_pct=Decimal("1.5"), trailing_arm_pct=Decimal(2), breakeven=True,
    )  # fmt: skip
    assert one_line(settings) == "tf=1h sl=3 tp=2:50,4:50 trail=1.5@2 be=1"
    risk = risk_settings(settings)
    assert risk.targets == settings.targets and risk.breakeven


def test_strategy_parameters_are_kept_not_dropped() -> None:
    options = parse_options(["period=7", "oversold=25", "max=200", "dll=5"], RSI)
    assert dict(options.parameters) == {"period": "7", "oversold": "25"}
    assert options.settings == {"max_position": Decimal(200), "daily_loss_limit_pct": Decimal(5)}


@pytest.mark.parametrize("language", ["en", "pt-BR"])
def test_an_unknown_key_names_every_valid_key_and_range(language: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_options(["stoploss=3"], RSI)
    text = error_text(Translator(language), caught.value)
    assert "stoploss" in text
    for key in ("tf=1m|5m|15m|1h|4h|1d", "sl=0.1-99 %", "trail=", "be=0|1", "period=2-50"):
        assert key in text


@pytest.mark.parametrize(
    "word",
    [
        "sl=0.05", "sl=abc", "tf=2h", "tp=2:50,1:50", "tp=2:60,4:50", "tp=1:10,2:10,3:10,4:10,5:10",
        "trail=60", "trail=1@x", "be=maybe", "max=-5", "dll=101", "tp=nan",
    ],
)  # fmt: skip
def test_a_bad_value_is_refused_with_its_range(word: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_options([word], RSI)
    assert caught.value.args_["problem"] == "option.bad_value"
    assert caught.value.args_["setting"] == word.split("=")[0]


def test_not_key_value_is_refused() -> None:
    with pytest.raises(UserError) as caught:
        parse_options(["sl"], RSI)
    assert caught.value.args_["problem"] == "option.not_key_value"


def test_breakeven_needs_targets() -> None:
    with pytest.raises(UserError):
        with_changes(BotSettings(), parse_options(["be=1", "tp=3"], RSI).settings)


def test_off_switches_a_setting_off_and_changes_say_what_moved() -> None:
    before = with_changes(
        BotSettings(), parse_options(["sl=3", "trail=1@2", "tp=2:50,4:50"], None).settings
    )
    after = with_changes(
        before, parse_options(["sl=off", "trail=off", "tp=5", "tf=4h"], None).settings
    )
    assert after.stop_loss_pct is None and after.trailing_stop_pct is None
    assert after.take_profit_pct == Decimal(5) and after.targets == ()
    assert changes(before, after) == [
        ("tf", "1m", "4h"), ("sl", "3", None), ("tp", "2:50,4:50", "5"), ("trail", "1@2", None),
    ]  # fmt: skip


percent = st.decimals(min_value=Decimal("0.1"), max_value=Decimal(50), places=1)


@given(
    tf=st.sampled_from(TIMEFRAMES), sl=st.none() | percent, trail=st.none() | percent,
    arm=st.none() | percent, shares=st.lists(st.integers(1, 25), max_size=4),
)  # fmt: skip
def test_one_line_round_trips(
    tf: str, sl: Decimal | None, trail: Decimal | None, arm: Decimal | None, shares: list[int]
) -> None:
    settings = BotSettings(
        timeframe=tf, stop_loss_pct=sl, trailing_stop_pct=trail,
        trailing_arm_pct=arm if trail is not None else None,
        targets=tuple(Target(Decimal(i + 1), Decimal(s)) for i, s in enumerate(shares)),
        breakeven=bool(shares),
    )  # fmt: skip
    parsed = with_changes(BotSettings(), parse_options(one_line(settings).split(), None).settings)
    assert parsed == settings
