"""The `robotrader` command."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Annotated

import typer

from db import migrate as migrations
from db.credential_secrets import rotate_all
from db.session import Database
from db.vault import generate_master_key
from robotrader.app import App
from robotrader.logging_setup import configure_logging
from robotrader.master_key import MasterKeyMissing, load_vault, rotate_development_key
from robotrader.runtime import Service
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


def _serve(settings: Settings, build: Callable[[App], list[Service]]) -> None:
    """Migrate, then run the services ``build`` picks until Ctrl-C or SIGTERM."""
    from robotrader.runtime import run_services

    _require_vault(settings)
    migrations.upgrade(settings.resolved_database_url)

    async def _main() -> None:
        application = App.from_settings(settings)
        try:
            await run_services(build(application))
        finally:
            await application.close()

    asyncio.run(_main())


@app.command()
def run() -> None:
    """Migrate, then run the whole product in this process until Ctrl-C."""
    from robotrader.services import embedded_services

    _serve(_settings(), embedded_services)


@app.command()
def telegram() -> None:
    """Run only the Telegram front end (replies and notification delivery).

    In webhook mode (PUBLIC_URL set) the web app runs in this process too: Telegram posts
    updates to its /telegram/webhook, which hands them to this front end.
    """
    from robotrader.services import telegram_service, web_service

    settings = _settings()
    if settings.telegram_token is None:
        typer.echo("ROBOTRADER_TELEGRAM_TOKEN is not set", err=True)
        raise typer.Exit(2)

    def build(application: App) -> list[Service]:
        services = [telegram_service(application)]
        if settings.public_url:
            services.append(web_service(application))
        return services

    _serve(settings, build)


@app.command()
def discord() -> None:
    """Run only the Discord front end (slash commands and notification delivery)."""
    from robotrader.services import discord_service

    settings = _settings()
    if settings.discord_token is None:
        typer.echo("ROBOTRADER_DISCORD_TOKEN is not set", err=True)
        raise typer.Exit(2)
    _serve(settings, lambda application: [discord_service(application)])


@app.command()
def web() -> None:
    """Run only the web app (webhooks, REST API, dashboard, health, metrics)."""
    from robotrader.services import web_service

    _serve(_settings(), lambda application: [web_service(application)])


@app.command()
def chat() -> None:
    """Try the product in this terminal: the chat commands for one local user, and the engine."""
    from robotrader.services import console_service, engine_service

    settings = _settings()
    _serve(
        settings, lambda application: [console_service(application), engine_service(application)]
    )


@app.command()
def worker(
    beat: Annotated[
        bool, typer.Option("--beat", help="Also schedule ticks (one per cluster)")
    ] = False,
    concurrency: Annotated[int, typer.Option(help="Worker processes")] = 2,
) -> None:
    """A Celery engine worker (needs ROBOTRADER_REDIS_URL); --beat to also schedule the ticks."""
    from robotrader.worker import build_app

    settings = _settings()
    _require_vault(settings)
    celery = build_app()
    argv = ["worker", "-Q", "ticks,orders", f"--concurrency={concurrency}", "--loglevel=INFO"]
    if beat:
        argv.append("--beat")
    celery.worker_main(argv)
