"""Migrations upgrade and downgrade on both databases and match the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from db import migrate
from db.models import Base
from db.models.bots import tick_bucket_of
from db.session import create_engine
from tests import services


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    name = services.create_database("rt_migr")
    yield services.sqlalchemy_url(name)
    services.drop_database(name)


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    await engine.dispose()
    return names - {"alembic_version"}


async def _diff(url: str) -> list[object]:
    engine = create_engine(url)
    async with engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    await engine.dispose()
    return diff


async def test_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    url = empty_database_url
    await _run_sync(migrate.upgrade, url)
    assert await migrate.current_revision(url) == migrate.head_revision()
    assert await _tables(url) == set(Base.metadata.tables)
    assert await _diff(url) == [], "models and migrations disagree"

    await _run_sync(migrate.downgrade, url, "base")
    assert await migrate.current_revision(url) is None
    assert await _tables(url) == set()

    await _run_sync(migrate.upgrade, url)
    assert await _tables(url) == set(Base.metadata.tables)


async def test_existing_bots_get_their_owners_tick_bucket(empty_database_url: str) -> None:
    """0009 fills bots.tick_bucket in SQL as the model computes it for new bots."""
    url = empty_database_url
    await _run_sync(migrate.upgrade, url, "0008")
    owners = [1, 2, 3, 7, 1023, 1024, 1025, 5000, 123_456]
    engine = create_engine(url)
    async with engine.begin() as conn:
        for user_id in owners:
            await conn.execute(
                text(
                    "INSERT INTO users (id, plan, created_at, muted_kinds, daily_summary_hour) "
                    "VALUES (:id, 'free', CURRENT_TIMESTAMP, '[]', 20)"
                ),
                {"id": user_id},
            )
            await conn.execute(
                text(
                    "INSERT INTO bots (user_id, name, exchange, symbols, timeframe, strategy, "
                    "parameters, capital, quote, mode, status, created_at) VALUES (:user_id, "
                    "'b', 'binance', '[]', '1m', 'dca', '{}', '100', 'USDT', 'paper', "
                    "'running', CURRENT_TIMESTAMP)"
                ),
                {"user_id": user_id},
            )
    await engine.dispose()
    await _run_sync(migrate.upgrade, url)
    engine = create_engine(url)
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT user_id, tick_bucket FROM bots"))).all()
    await engine.dispose()
    assert {user: bucket for user, bucket in rows} == {u: tick_bucket_of(u) for u in owners}


async def _run_sync(fn, *args):
    # Alembic's env.py runs its own event loop; keep it off the test's loop.
    import asyncio

    return await asyncio.to_thread(fn, *args)
