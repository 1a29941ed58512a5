"""The message catalog: every key in English and Portuguese, with the same placeholders."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import bots.core.commands  # noqa: F401  (registers the commands)
from bots.core.registry import COMMANDS
from db.models import BotMode, BotStatus
from engine.strategies.base import Candles, PositionState
from engine.strategies.registry import STRATEGIES
from robotrader.i18n import catalog, placeholders
from robotrader.languages import DEFAULT_LANGUAGE, tags
from robotrader.use_cases.bot_status import READING_KINDS
from robotrader.use_cases.preferences import MUTABLE_KINDS

ROOT = Path(__file__).resolve().parents[2]


def _calls_to_t() -> tuple[set[str], set[str]]:
    """Keys given to the catalog in the code of its users: literal keys and f-string prefixes.

    ``t(key)`` / ``inv.t(key)`` (a Translator) in bots/, web/ and robotrader/, and
    ``translate(language, key)`` in web/.
    """
    literals, prefixes = set(), set()
    for folder in ("bots", "web", "robotrader"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                name = (
                    node.func.attr
                    if isinstance(node.func, ast.Attribute)
                    else getattr(node.func, "id", "")
                )
                if name == "t":
                    first = node.args[0]
                elif name == "translate" and len(node.args) > 1:
                    first = node.args[1]
                else:
                    continue
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    literals.add(first.value)
                elif isinstance(first, ast.JoinedStr) and isinstance(
                    first.values[0], ast.Constant
                ):
                    prefixes.add(str(first.values[0].value))
    return literals, prefixes


def _user_error_keys() -> set[str]:
    keys = set()
    for folder in ("robotrader", "bots", "billing"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "id", None) == "UserError"
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                ):
                    keys.add(str(node.args[0].value))
    return keys


@pytest.mark.parametrize("language", tags())
def test_every_literal_key_is_translated(language: str) -> None:
    literals, _ = _calls_to_t()
    missing = sorted(k for k in literals if k not in catalog(language))
    assert not missing, f"{language} lacks {missing}"


def _indicator_names() -> list[str]:
    """What every strategy's view names, flat and holding (DCA's levels need a position)."""
    n = 200
    close = 100 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, n)))
    candles = Candles(np.arange(n, dtype=np.int64) * 60_000, close, close, close, close, close)
    names = set()
    for strategy in STRATEGIES.values():
        for position in (PositionState(), PositionState(1.0, 100.0, 1)):
            view = strategy.view(candles, strategy.defaults(), position)
            names |= {item.name for item in (*view.lines, *view.levels)}
    return sorted(names)


def test_dynamic_key_families_are_complete() -> None:
    _, prefixes = _calls_to_t()
    families = {
        "status.": [str(s) for s in BotStatus],
        "mode.": [str(m) for m in BotMode],
        "kind.": list(MUTABLE_KINDS),
        "period.": ["today", "7d", "30d", "all"],
        "reason.": ["entry", "exit", "stop_loss", "take_profit", "base", "safety", "grid_buy",
                    "grid_sell", "signal_buy", "signal_sell", "signal_close", "panic",
                    "trailing_stop", "breakeven", *(f"target_{n}" for n in range(1, 5))],
        "error.": sorted(_user_error_keys()),
        "reading.": list(READING_KINDS),
        "indicator.": _indicator_names(),
    }  # fmt: skip
    assert set(families) <= prefixes | {"error."}
    for language in tags():
        for prefix, values in families.items():
            missing = [prefix + v for v in values if prefix + v not in catalog(language)]
            assert not missing, f"{language} lacks {missing}"


def test_every_command_has_help_in_both_languages() -> None:
    for language in tags():
        for command in COMMANDS.values():
            assert command.help_key in catalog(language), (language, command.name)


@pytest.mark.parametrize("language", [t for t in tags() if t != DEFAULT_LANGUAGE])
def test_each_language_matches_english_key_for_key_and_placeholder_for_placeholder(
    language: str,
) -> None:
    english, other = catalog(DEFAULT_LANGUAGE), catalog(language)
    assert set(english) == set(other), sorted(set(english) ^ set(other))
    for key, text in english.items():
        assert placeholders(text) == placeholders(other[key]), key
        assert other[key].strip(), key


def _strategy_keys() -> list[str]:
    return [
        key
        for strategy in STRATEGIES.values()
        for key in [strategy.info.title_key]
        + [strategy.info.help_key(p.name) for p in strategy.info.params]
    ]


@pytest.mark.parametrize("language", tags())
def test_strategies_have_a_title_and_parameter_help_in_every_language(language: str) -> None:
    missing = [key for key in _strategy_keys() if not catalog(language).get(key, "").strip()]
    assert not missing, f"{language} lacks {missing}"


def test_parameter_help_is_translated_not_copied() -> None:
    english = catalog(DEFAULT_LANGUAGE)
    for language in tags():
        if language == DEFAULT_LANGUAGE:
            continue
        theirs = catalog(language)
        copied = [k for k in _strategy_keys() if ".param." in k and theirs[k] == english[k]]
        assert not copied, f"{language} copies {copied}"
