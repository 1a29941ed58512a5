"""Slash command names and descriptions from the message catalog, in every language we speak.

discord.py sends each ``locale_str`` as the default (English) text plus a
localization per Discord locale that our Translator returns. The English text
is read from the English catalog, so a translator sees the names of commands
next to everything else the bot says, and the catalog test keeps the two
languages in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import discord
from discord import app_commands

from robotrader import languages
from robotrader.i18n import catalog
from robotrader.languages import DEFAULT_LANGUAGE


def _discord_locales() -> dict[discord.Locale, str]:
    locales = {}
    for language in languages.LANGUAGES:
        if language.tag == DEFAULT_LANGUAGE or language.discord_locale is None:
            continue  # the default texts are English already
        try:
            locales[discord.Locale(language.discord_locale)] = language.tag
        except ValueError:  # a language Discord has no locale for
            continue
    return locales


DISCORD_LOCALES = _discord_locales()


def text(key: str) -> app_commands.locale_str:
    """A catalog key as a name or description: English by default, translated per locale."""
    return app_commands.locale_str(catalog(DEFAULT_LANGUAGE)[key], key=key)


def texts(by_language: Mapping[str, str]) -> app_commands.locale_str:
    """A text that is not a catalog key but carries its own translations (formatted ones)."""
    default = by_language.get(DEFAULT_LANGUAGE) or next(iter(by_language.values()))
    return app_commands.locale_str(default, texts=dict(by_language))


class CatalogTranslator(app_commands.Translator):
    """Localizations of the command tree, read from our gettext catalogs."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        language = DISCORD_LOCALES.get(locale)
        if language is None:
            return None
        extras: dict[str, Any] = string.extras
        if "texts" in extras:
            translated = extras["texts"].get(language)
            return str(translated) if translated else None
        key = extras.get("key")
        return catalog(language).get(key) if isinstance(key, str) else None
