"""The languages RoboTrader speaks, and how every platform's language codes map onto them.

This is the one list. Adding a language is one ``Language`` below plus its catalog,
``locale/<folder>/LC_MESSAGES/messages.po``: the chat menus (Telegram, Discord), the
``/language`` choices, the web pages, number formats and the command line all read it.

Our own code for a language is its BCP 47 tag (``pt-BR``), the value stored on a user.
Clients say it their own way: Telegram's ``language_code`` (``pt-br``), Discord's
locale (``pt-BR``), a browser's Accept-Language (``pt-BR,pt;q=0.9``), the shell's
``LANG`` (``pt_BR.UTF-8``), or a user typing ``/language pt``. ``from_client`` and
``parse`` are the only places that read those.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    tag: str  # ours, stored on users: "pt-BR"
    name: str  # as its speakers write it, shown in language pickers: "Português (Brasil)"
    folder: str  # the gettext catalog's folder under robotrader/locale: "pt_BR"
    formats: str  # the Babel locale of numbers, money and dates: "pt_BR"
    telegram_code: str | None  # the command menu's language_code; None: the default menu
    discord_locale: str | None  # Discord's locale, for slash-command localizations

    @property
    def primary(self) -> str:
        """The language without its region (``pt``): what a client saying only that gets."""
        return _primary(self.tag)


LANGUAGES: list[Language] = [
    Language("en", "English", "en", "en_US", telegram_code=None, discord_locale=None),
    Language(
        "pt-BR", "Português (Brasil)", "pt_BR", "pt_BR", telegram_code="pt", discord_locale="pt-BR"
    ),
]
DEFAULT_LANGUAGE = "en"


def _normalized(code: str) -> str:
    # "pt_BR.UTF-8" (LANG) -> "pt-br"; "pt-BR;q=0.9" (Accept-Language) -> "pt-br"
    return code.strip().split(".", 1)[0].split(";", 1)[0].replace("_", "-").lower()


def _primary(code: str) -> str:
    return _normalized(code).split("-", 1)[0]


def tags() -> list[str]:
    """Our codes of every language, the default first."""
    return [language.tag for language in LANGUAGES]


def get(tag: str) -> Language:
    """The language of one of our tags; the default language for anything else."""
    for language in LANGUAGES:
        if language.tag == tag:
            return language
    return get(DEFAULT_LANGUAGE)


def parse(text: str) -> str | None:
    """What a user typed to choose a language (``pt``, ``pt-br``, ``PT_BR``...) -> our tag.

    Strict: only a tag of ours or its language alone, in any case; None otherwise.
    """
    typed = text.strip().replace("_", "-").lower()
    for language in LANGUAGES:
        if typed in (language.tag.lower(), language.primary):
            return language.tag
    return None


def from_client(code: str | None) -> str:
    """A client's language code (Telegram, Discord, Accept-Language, LANG) -> our tag.

    An exact match first, then the same language in another region (``pt-PT`` reads
    Brazilian Portuguese), else the default: a client never gets no language.
    """
    if not code:
        return DEFAULT_LANGUAGE
    first = code.split(",", 1)[0]  # Accept-Language lists them by preference
    exact = _normalized(first)
    for language in LANGUAGES:
        if exact == language.tag.lower():
            return language.tag
    primary = _primary(first)
    for language in LANGUAGES:
        if primary == language.primary:
            return language.tag
    return DEFAULT_LANGUAGE


def resolve(code: str | None) -> str:
    """One of our tags as is, anything else read as a client's code."""
    return code if code in tags() else from_client(code)
