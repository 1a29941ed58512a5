"""The message catalog: every language of ``robotrader.languages``, kept as gettext .po files.

One catalog for every front end (chat, web, the command line), so it lives here,
below them: a front end never imports another. Message ids are stable keys
(``bot.created``); each catalog maps them to text with ``{name}`` placeholders.
Translators edit ``locale/<lang>/LC_MESSAGES/messages.po`` with the usual tools;
the catalogs are read with Babel at start (no compile step). A test fails when a
key lacks a translation or a placeholder.
"""

from __future__ import annotations

import logging
import string
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

from engine.backtest.chart_text import ChartText
from robotrader import languages
from robotrader.errors import UserError
from robotrader.languages import DEFAULT_LANGUAGE

log = logging.getLogger(__name__)

LOCALE_DIR = Path(__file__).with_name("locale")


@cache
def catalog(language: str) -> dict[str, str]:
    """key -> text for one language (cached for the process)."""
    path = LOCALE_DIR / languages.get(language).folder / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        po = read_po(handle)
    return {str(m.id): str(m.string) for m in po if m.id and m.string}


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


class _SafeArgs(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def translate(language: str, key: str, /, **args: Any) -> str:
    """The text of ``key`` in ``language`` (English, then the key itself, as fallbacks)."""
    text = catalog(language).get(key) or catalog(DEFAULT_LANGUAGE).get(key)
    if text is None:
        log.error("i18n.missing_key key=%s language=%s", key, language)
        return key
    try:
        return text.format_map(_SafeArgs(args))
    except (ValueError, IndexError):
        log.error("i18n.bad_format key=%s language=%s", key, language)
        return text


class Translator:
    """``t("key", name=...)`` bound to one language."""

    def __init__(self, language: str | None) -> None:
        # Accepts client codes too: Telegram's "pt-br", Discord's "pt-BR", plain "pt".
        self.language = languages.resolve(language)

    def __call__(self, key: str, /, **args: Any) -> str:
        return translate(self.language, key, **args)


# What a chart may say: its own words, the indicators, the reasons of fills, strategy names.
CHART_KEY_PREFIXES = ("chart.", "indicator.", "reason.")


@cache
def chart_text(language: str) -> ChartText:
    """The catalog's chart texts in ``language`` with its number formats, for the engine."""
    tag = languages.resolve(language)
    english, own = catalog(DEFAULT_LANGUAGE), catalog(tag)
    templates = {
        key: own.get(key) or text
        for key, text in english.items()
        if key.startswith(CHART_KEY_PREFIXES)
        or (key.startswith("strategy.") and key.endswith(".title"))
    }
    return ChartText(templates, languages.get(tag).formats)


# Error arguments that are themselves catalog keys (translated before use).
TRANSLATED_ARGS = {
    "limit": "limit", "plan": "plan", "problem": "parameter", "what": "edit_what",
}  # fmt: skip


def error_text(t: Translator, exc: UserError) -> str:
    """A UserError (a catalog key and its arguments) as text in ``t``'s language."""
    args = dict(exc.args_)
    for name, prefix in TRANSLATED_ARGS.items():
        if name in args:
            args[name] = t(f"{prefix}.{args[name]}", **exc.args_)
    return t(f"error.{exc.key}", **args)


def keywords(key: str) -> frozenset[str]:
    """A word of a command's syntax (``off``, ``status``) as users may type it in any language.

    The word is ``key``'s text in every catalog, so a user writes ``/live bot off`` or
    ``/live robô desligar`` whatever language their client says.
    """
    return frozenset(
        catalog(tag)[key].strip().lower() for tag in languages.tags() if key in catalog(tag)
    )
