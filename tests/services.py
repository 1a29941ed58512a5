"""The real PostgreSQL and Redis the suite runs against, and per-run isolation on them."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

import asyncpg

POSTGRES_ADMIN_DSN = os.environ.get(
    "ROBOTRADER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("ROBOTRADER_TEST_REDIS", "redis://127.0.0.1:6379")

HOW_TO_START = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "Redis": (
        "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' "
        "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log"
    ),
}


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def missing_services() -> list[str]:
    """Names of the required services that do not answer, with how to start each."""
    missing = []
    if not reachable("127.0.0.1", 5432):
        missing.append(
            f"PostgreSQL at 127.0.0.1:5432 (start it with: {HOW_TO_START['PostgreSQL']})"
        )
    if not reachable("127.0.0.1", 6379):
        missing.append(f"Redis at 127.0.0.1:6379 (start it with: {HOW_TO_START['Redis']})")
    return missing


def _asyncpg_dsn(database: str) -> str:
    base, _, _ = POSTGRES_ADMIN_DSN.rpartition("/")
    return f"{base}/{database}"


def sqlalchemy_url(database: str) -> str:
    return _asyncpg_dsn(database).replace("postgresql://", "postgresql+asyncpg://", 1)


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database(prefix: str = "rt_test") -> str:
    """A new empty database named for this run; returns its name."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    return name


def drop_database(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
