"""One list of languages: every platform's codes map onto it, and a new one needs nothing else."""

from __future__ import annotations

import ast
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.pofile import read_po, write_po

from bots.discord.localization import _discord_locales
from engine.strategies.registry import STRATEGIES
from robotrader import formatting, i18n, languages
from robotrader.i18n import Translator, catalog, keywords
from robotrader.languages import DEFAULT_LANGUAGE, Language, from_client, parse, tags
from web.pages import _html_language

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("bots", "web", "robotrader", "engine", "billing", "db")


@pytest.mark.parametrize(
    ("code", "language"),
    [
        ("pt-br", "pt-BR"),  # Telegram's language_code
        ("pt", "pt-BR"),
        ("pt-BR", "pt-BR"),  # Discord's locale
        ("pt-PT", "pt-BR"),  # the same language elsewhere: the closest we speak
        ("pt-BR,pt;q=0.9,en;q=0.8", "pt-BR"),  # Accept-Language
        ("pt_BR.UTF-8", "pt-BR"),  # the shell's LANG
        ("en-US", "en"),
        ("en-GB", "en"),
        ("es", "en"),  # not ours: the default
        ("*", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_every_client_code_maps_onto_one_of_ours(code: str | None, language: str) -> None:
    assert from_client(code) == language


@pytest.mark.parametrize(
    ("typed", "language"),
    [("pt", "pt-BR"), ("PT-BR", "pt-BR"), (" pt_br ", "pt-BR"), ("en", "en"), ("EN", "en"),
     ("pt-PT", None), ("english", None), ("en-US", None), ("", None)],
)  # fmt: skip
def test_a_typed_choice_is_read_strictly(typed: str, language: str | None) -> None:
    assert parse(typed) == language


def test_the_list_starts_with_the_default_and_has_one_entry_per_tag() -> None:
    assert tags()[0] == DEFAULT_LANGUAGE
    assert len(set(tags())) == len(tags())
    assert languages.get("xx").tag == DEFAULT_LANGUAGE


def _python_strings(folder: str) -> Iterator[tuple[Path, str]]:
    for path in (ROOT / folder).rglob("*.py"):
        if path == ROOT / "robotrader" / "languages.py" or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                yield path, node.value


def test_no_language_is_spelled_out_outside_the_languages_module() -> None:
    """Adding a language touches the catalogs and one list: nothing else spells one out."""
    spellings = set()
    for language in languages.LANGUAGES:
        if language.tag == DEFAULT_LANGUAGE:
            continue  # "en" is also English's word for itself in plenty of places
        spellings |= {language.tag, language.tag.lower(), language.folder, language.name}
        spellings |= {language.discord_locale or "", language.formats}
        # a command word in another language, typed into code instead of read from the catalog
        spellings |= {text for key, text in catalog(language.tag).items()
                      if key.startswith("command.word.")}  # fmt: skip
    spellings.discard("")
    found = [
        f"{path.relative_to(ROOT)}: {text!r}"
        for folder in PRODUCT
        for path, text in _python_strings(folder)
        if text.strip().lower() in {s.lower() for s in spellings}
    ]
    assert not found


def test_the_catalog_module_imports_no_use_case() -> None:
    for module in ("i18n.py", "languages.py"):
        tree = ast.parse((ROOT / "robotrader" / module).read_text())
        imported = [
            node.module or ""
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
        ] + [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names]  # fmt: skip
        assert not [name for name in imported if name.startswith("robotrader.use_cases")]


@pytest.fixture
def spanish(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Language]:
    """A third language, added the documented way: one entry in the list, one catalog."""
    shutil.copytree(i18n.LOCALE_DIR, tmp_path, dirs_exist_ok=True)
    with (i18n.LOCALE_DIR / "en" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        po = read_po(handle, locale="en")
    for message in po:
        if message.id:
            message.string = f"[es] {message.string}"
    (tmp_path / "es" / "LC_MESSAGES").mkdir(parents=True)
    with (tmp_path / "es" / "LC_MESSAGES" / "messages.po").open("wb") as handle:
        write_po(handle, po)
    language = Language("es", "Español", "es", "es_ES", telegram_code="es", discord_locale="es-ES")
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    monkeypatch.setattr(languages, "LANGUAGES", [*languages.LANGUAGES, language])
    catalog.cache_clear()
    yield language
    catalog.cache_clear()


def test_a_third_language_needs_only_the_list_and_its_catalog(spanish: Language) -> None:
    assert "es" in tags()
    assert from_client("es") == from_client("es-MX") == parse("es") == "es"
    assert from_client("pt-br") == "pt-BR"  # the others unchanged

    t = Translator("es")
    assert t("start.welcome", name="Ana") == "[es] Welcome to RoboTrader, Ana! 🤖"
    strategy = STRATEGIES["rsi"].info
    assert t(strategy.title_key) == "[es] RSI reversion"
    assert t(strategy.help_key("period")).startswith("[es] ")
    assert "[es] off" in keywords("command.word.off")
    assert {"off", "desligar"} <= keywords("command.word.off")

    assert formatting.money(Decimal("1.5"), "es") == "1,50 USDT"  # its own number format
    assert _html_language("es") == "es"
    assert "es" in _discord_locales().values()
