"""A bot's settings read as words on its card and before it is created, in both languages."""

from __future__ import annotations

from robotrader.settings_text import setting_rows
from robotrader.use_cases.bot_settings import BotSettings, parse_options, with_changes


def _settings(line: str) -> BotSettings:
    return with_changes(BotSettings(), parse_options(line.split(), None).settings)


def test_every_setting_in_words_in_english() -> None:
    settings = _settings("tf=1h sl=3 tp=2:50,4:50 trail=1.5@2 be=1 max=250 dll=5")
    assert setting_rows(settings, "en") == [
        ("Timeframe", "1h"),
        ("Stop loss", "3 % under the entry"),
        ("Take profit", "50 % at +2 %, 50 % at +4 %"),
        ("Trailing stop", "1.5 % under the highest price, once up 2 %"),
        ("Stop to breakeven after the first target", "on"),
        ("Max position", "250.00 USDT"),
        ("Daily loss limit", "5 % of the capital"),
    ]


def test_portuguese_numbers_and_words() -> None:
    rows = dict(setting_rows(_settings("tp=2.5 trail=1.5"), "pt-BR"))
    assert rows["Take profit"] == "+2,5 %: vende tudo"
    assert rows["Stop móvel"] == "1,5 % abaixo do preço máximo desde a entrada"


def test_a_card_shows_what_is_off_a_confirmation_does_not() -> None:
    settings = _settings("sl=2")
    assert [label for label, _ in setting_rows(settings, "en")] == ["Timeframe", "Stop loss"]
    card = dict(setting_rows(settings, "en", with_off=True))
    assert card["Trailing stop"] == "—" and card["Stop loss"] == "2 % under the entry"
