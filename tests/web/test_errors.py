"""Every UserError key the product raises has its HTTP status and its words in both languages.

The keys are read from the source (every ``UserError(...)`` call), so a key added
without a status in ``STATUS_OF_ERROR`` or without a translation fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from web.errors import STATUS_OF_ERROR

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("robotrader", "bots", "engine", "billing", "db", "web")
CATALOGS = sorted((ROOT / "robotrader" / "locale").glob("*/LC_MESSAGES/messages.po"))


def _is_user_error(call: ast.Call) -> bool:
    func = call.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    return name == "UserError"


def _keys_of(argument: ast.expr) -> list[str] | None:
    """The keys a first argument can be: a literal, or a choice between literals."""
    if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
        return [argument.value]
    if isinstance(argument, ast.IfExp):
        body, orelse = _keys_of(argument.body), _keys_of(argument.orelse)
        return None if body is None or orelse is None else body + orelse
    return None  # composed or passed in: unreadable here, so refused below


def _raised_keys() -> tuple[dict[str, str], list[str]]:
    """key -> where it is first raised; and the calls whose key is not written out."""
    keys: dict[str, str] = {}
    unreadable: list[str] = []
    for folder in PRODUCT:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not (isinstance(node, ast.Call) and _is_user_error(node)):
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                found = _keys_of(node.args[0]) if node.args else None
                if found is None:
                    unreadable.append(where)
                for key in found or ():
                    keys.setdefault(key, where)
    return keys, unreadable


def _translated(path: Path) -> set[str]:
    with path.open("rb") as handle:
        return {str(m.id) for m in read_po(handle) if m.id and m.string}


def test_every_key_is_written_out_where_it_is_raised() -> None:
    keys, unreadable = _raised_keys()
    assert not unreadable, f"UserError keys must be string literals: {unreadable}"
    assert {"bot_not_found", "backtest_period_limit_top", "notify_channel_unknown"} <= keys.keys()


def test_every_raised_key_has_an_http_status() -> None:
    keys, _ = _raised_keys()
    missing = {key: where for key, where in keys.items() if key not in STATUS_OF_ERROR}
    assert not missing, f"add these to web/errors.py STATUS_OF_ERROR: {missing}"
    assert all(400 <= status < 500 for status in STATUS_OF_ERROR.values())


def test_the_status_table_names_no_key_the_product_never_raises() -> None:
    keys, _ = _raised_keys()
    assert not STATUS_OF_ERROR.keys() - keys.keys()


@pytest.mark.parametrize("po", CATALOGS, ids=lambda path: path.parts[-3])
def test_every_raised_key_is_translated(po: Path) -> None:
    keys, _ = _raised_keys()
    translated = _translated(po)
    missing = {key: where for key, where in keys.items() if f"error.{key}" not in translated}
    assert not missing, f"add error.<key> to {po.relative_to(ROOT)}: {missing}"


def test_both_languages_have_a_catalog() -> None:
    assert {path.parts[-3] for path in CATALOGS} >= {"en", "pt_BR"}
