"""The `robotrader` command."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer

from db import migrate as migrations
from db.credential_secrets import rotate_all
from db.session import Database
from db.vault import generate_master_key
from robotrader.logging_setup import configure_logging
from robotrader.master_key import MasterKeyMissing, load_vault, rotate_development_key
from robotrader.settings import Settings, get_settings

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="RoboTrader: chat-first trading bots."
)
log = logging.getLogger("robotrader")


def _settings() -> Settings:
    settings = get_settings()
    configure_logging(settings.log_level)
    return settings


def _require_vault(settings: Settings) -> None:
    try:
        load_vault(settings)
    except MasterKeyMissing as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@app.command()
def migrate(
    revision: Annotated[str, typer.Option(help="Target revision")] = "head",
    down: Annotated[bool, typer.Option("--down", help="Downgrade to REVISION")] = False,
) -> None:
    """Upgrade (or with --down, downgrade) the database schema."""
    settings = _settings()
    url = settings.resolved_database_url
    if down:
        migrations.downgrade(url, revision)
    else:
        migrations.upgrade(url, revision)
    typer.echo(f"database at revision {asyncio.run(migrations.current_revision(url))}")


@app.command("generate-key")
def generate_key() -> None:
    """Print a new random master key (base64, 32 bytes) for ROBOTRADER_MASTER_KEY."""
    typer.echo(generate_master_key())


@app.command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt every stored secret under the current master key.

    With keys from the environment: set ROBOTRADER_MASTER_KEY to the new key and
    ROBOTRADER_OLD_MASTER_KEYS to the old one(s), restart the processes (they read
    both), then run this. On a development machine without a key in the
    environment, a new key is generated into the key file first.
    """
    settings = _settings()
    _require_vault(settings)
    vault = (
        load_vault(settings)
        if settings.master_key is not None
        else rotate_development_key(settings)
    )

    async def _rotate() -> int:
        database = Database(settings.resolved_database_url)
        try:
            return await rotate_all(database, vault)
        finally:
            await database.dispose()

    count = asyncio.run(_rotate())
    typer.echo(f"re-encrypted {count} credential(s) under key {vault.current_key_id}")


@app.command()
def run() -> None:
    """Migrate, then run the whole product in this process until Ctrl-C."""
    from robotrader.runtime import run_services
    from robotrader.services import embedded_services

    settings = _settings()
    _require_vault(settings)
    migrations.upgrade(settings.resolved_database_url)
    asyncio.run(run_services(embedded_services(settings)))
