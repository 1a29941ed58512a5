"""Suite-wide fixtures: every database test runs on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from db import migrate
from db.models import Base
from db.session import Database
from db.vault import generate_master_key
from robotrader.settings import Settings
from tests import services
from tests.secret_audit import AUDIT, AuditHandler

BACKENDS = ["sqlite", "postgresql"]
NOWHERE = "http://127.0.0.1:9"  # the discard port: connections are refused at once
# Billing on, as on a server that sells plans, so plan limits apply in every test; the key
# reaches no Stripe (its base is NOWHERE until a test points it at the emulator). Tests of
# a self-hosted server (no plans) set stripe_api_key to None.
SUITE_STRIPE_KEY = "sk_test_FAKE_suite_billing_on"


def pytest_sessionstart(session: pytest.Session) -> None:
    missing = services.missing_services()
    if missing:
        pytest.exit(
            "The test suite needs real services that are not running:\n  - "
            + "\n  - ".join(missing),
            returncode=3,
        )
    root = logging.getLogger()
    root.addHandler(AuditHandler())
    root.setLevel(min(root.level or logging.INFO, logging.INFO))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The final secrets check (tests/secret_audit.py): any hit fails the whole run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    summary = ", ".join(
        f"{k.split(':')[0]}={v}" for k, v in sorted(_grouped(AUDIT.scanned).items())
    )
    if reporter is not None:
        reporter.write_sep("-", f"secret audit: scanned {summary}; {len(AUDIT.hits)} hit(s)")

    if AUDIT.hits:
        if reporter is not None:
            for source, snippet in AUDIT.hits[:50]:
                reporter.write_line(f"  SECRET LEAKED in {source}: {snippet}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _grouped(scanned: dict[str, int]) -> dict[str, int]:
    groups: dict[str, int] = {}
    for source, count in scanned.items():
        key = source.split(":")[0]
        groups[key] = groups.get(key, 0) + count
    return groups


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def migrated_postgres() -> Iterator[str]:
    """A PostgreSQL database of this run's own, migrated to head once."""
    name = services.create_database()
    url = services.sqlalchemy_url(name)
    migrate.upgrade(url)
    yield url
    services.drop_database(name)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, migrated_sqlite: Path) -> str:
    if request.param == "sqlite":
        copy = tmp_path / "robotrader.db"
        shutil.copyfile(migrated_sqlite, copy)
        return f"sqlite+aiosqlite:///{copy}"
    url: str = request.getfixturevalue("migrated_postgres")
    return url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    yield db
    await AUDIT.scan_database(db)
    if db.is_sqlite:
        AUDIT.scan_file(Path(database_url.split("///", 1)[1]))
    if not db.is_sqlite:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        async with db.transaction() as session:
            await session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await db.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings for one test: its own data dir and database, no .env, a fresh master key.

    Every outside service points at a closed local port until a test points it at
    an emulator: nothing ever leaves 127.0.0.0/8. Billing is on (SUITE_STRIPE_KEY).
    """
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        database_url=database_url,
        master_key=SecretStr(generate_master_key()),
        exchange_api_urls={"binance": NOWHERE, "bybit": NOWHERE},
        telegram_api_url=f"{NOWHERE}/bot",
        discord_api_url=f"{NOWHERE}/api/v10",
        stripe_api_key=SecretStr(SUITE_STRIPE_KEY),
        stripe_api_base=NOWHERE,
    )
