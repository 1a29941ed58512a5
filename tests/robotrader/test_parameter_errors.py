"""A refused strategy parameter is explained in the user's language (the engine knows none)."""

from __future__ import annotations

import pytest

from engine.strategies.registry import get_strategy
from robotrader.errors import UserError
from robotrader.i18n import Translator, error_text
from robotrader.use_cases.bots import validated_parameters

CASES = [
    ("sma_crossover", {"fast": 30, "slow": 10}, "fast precisa ser menor que slow"),
    ("sma_crossover", {"fast": "abc"}, "fast precisa ser um número"),
    ("rsi", {"period": 10_000}, "period precisa ficar entre"),
    ("rsi", {"oversold": 50, "overbought": 50}, "oversold precisa ser menor"),
    ("grid", {"lower": 10, "upper": 5}, "lower precisa ser menor"),
    ("rsi", {"periodo": 7}, "esta estratégia não tem periodo"),
]


@pytest.mark.parametrize(("strategy", "params", "portuguese"), CASES)
def test_each_refusal_reads_in_portuguese_and_english(
    strategy: str, params: dict[str, object], portuguese: str
) -> None:
    with pytest.raises(UserError) as refused:
        validated_parameters(get_strategy(strategy), params)
    assert refused.value.key == "bad_parameter"
    text = error_text(Translator("pt-BR"), refused.value)
    assert portuguese in text and "{" not in text
    english = error_text(Translator("en"), refused.value)
    assert english.startswith("Invalid parameter:") and "{" not in english
    assert "parameter." not in english and "parameter." not in text  # no key left untranslated
