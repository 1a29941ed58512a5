"""The layers of DESIGN.md ("Who may import whom") hold, and breaking one fails the suite.

`make test` runs `lint-imports` in its lint step; these tests run it too, on
the code as it is (every contract kept) and on a copy given one forbidden
import per rule (that contract broken, the command failing).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("robotrader", "bots", "engine", "billing", "db", "web")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH first: the copy's packages, not the editable install's, are analysed.
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=project,
        env={"PYTHONPATH": str(project), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_code_keeps_every_import_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " broken" not in result.stdout.replace("0 broken", "")


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("layers")
    shutil.copy(ROOT / "pyproject.toml", copy)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            copy / package,
            ignore=shutil.ignore_patterns("__pycache__", "static", "templates", "locale"),
        )
    return copy


@pytest.mark.parametrize(
    ("module", "forbidden_import", "contract"),
    [
        # A front end reaches the engine, billing and db only through robotrader.
        ("bots/console/console.py", "from db import outbox", "only through robotrader"),
        ("bots/core/core.py", "from engine.strategies import registry", "only through robotrader"),
        ("web/schemas.py", "from billing import plans", "only through robotrader"),
        # A front end never imports another.
        ("bots/telegram/rendering.py", "from bots.discord import rendering", "front ends apart"),
        ("bots/core/replies.py", "from bots.console import console", "front ends apart"),
        ("web/app.py", "from bots.core import replies", "Layers"),
        # The engine and billing import db only; db nothing of ours.
        ("engine/tick.py", "from robotrader import settings", "Layers"),
        ("engine/risk.py", "from billing import plans", "Layers"),
        ("billing/plans.py", "from bots.core import replies", "Layers"),
        ("db/outbox.py", "from engine import risk", "Layers"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(
    project_copy: Path, module: str, forbidden_import: str, contract: str
) -> None:
    path = project_copy / module
    original = path.read_text(encoding="utf-8")
    path.write_text(f"{original}\n{forbidden_import}  # noqa\n", encoding="utf-8")
    try:
        result = lint_imports(project_copy)
    finally:
        path.write_text(original, encoding="utf-8")
    assert result.returncode != 0, result.stdout
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, result.stdout


def test_every_package_is_seen_by_the_contracts() -> None:
    """import-linter skips namespace packages: a folder of modules without ``__init__.py``
    would be invisible to every contract (engine/strategies was)."""
    # Alembic loads these by path; they are no package of the product.
    outside = {ROOT / "db" / "migrations", ROOT / "db" / "migrations" / "versions"}
    unseen = sorted(
        str(folder.relative_to(ROOT))
        for package in PACKAGES
        for folder in [ROOT / package, *(ROOT / package).rglob("*")]
        if folder.is_dir()
        and folder not in outside
        and any(folder.glob("*.py"))
        and not (folder / "__init__.py").exists()
    )
    assert unseen == []
