"""A running Discord front end (the real discord.py client) against the local Discord emulator."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route
from pydantic import SecretStr
from sqlalchemy import select

from bots.core.core import ChatCore
from bots.core.rate_limit import RateLimiter
from bots.discord.service import DiscordService
from db.models import ChatIdentity, Plan, Platform, User
from db.session import Database
from robotrader.app import App
from robotrader.settings import Settings
from tests.emulators.discord_api import (
    CALLBACK_MODAL,
    DEFAULT_BOT_PERMISSIONS,
    FLAG_EPHEMERAL,
    DiscordEmulator,
    EmuGuild,
    EmuInteraction,
    InteractionRecord,
    Perm,
)
from tests.emulators.exchange import ExchangeEmulator
from tests.secret_audit import AUDIT

TOKEN = "discord-emulator-token"
_ids = itertools.count(2_000_001)


@pytest.fixture(scope="module")
def discord_emulator() -> Iterator[DiscordEmulator]:
    with DiscordEmulator(token=TOKEN, bot_name="RoboTrader") as emulator:
        yield emulator


@pytest.fixture(scope="module")
def exchange_emulator() -> Iterator[ExchangeEmulator]:
    with ExchangeEmulator() as emulator:
        yield emulator


def message_text(message: dict[str, Any]) -> str:
    """What a user reads in a message (content, embeds), as Discord renders the escapes."""
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts.append((embed.get("footer") or {}).get("text") or "")
    return re.sub(r"\\([*_~|`>\\])", r"\1", "\n".join(p for p in parts if p))


def custom_id(message: dict[str, Any], label_fragment: str) -> tuple[str, list[str] | None]:
    """The component to press for a label: (custom_id, None) or, in a menu, (menu id, [value])."""
    for row in message.get("components") or []:
        for component in row.get("components") or []:
            if component.get("type") == 2 and label_fragment in (component.get("label") or ""):
                return str(component.get("custom_id")), None
            for option in component.get("options") or []:
                if label_fragment in option["label"]:
                    return str(component["custom_id"]), [option["value"]]
    raise AssertionError(f"nothing labelled {label_fragment!r} in {message.get('components')}")


@dataclass
class RunningBot:
    app: App
    emulator: DiscordEmulator
    exchange: ExchangeEmulator
    service: DiscordService
    guild: EmuGuild
    members: list[int] = field(default_factory=list)

    @property
    def general(self) -> int:
        assert self.guild.system_channel_id is not None
        return self.guild.system_channel_id

    def member(
        self,
        name: str = "ana",
        *,
        locale: str = "pt-BR",
        permissions: int | Perm | None = None,
        dms_open: bool = True,
    ) -> int:
        user_id = next(_ids)
        self.emulator.add_user(user_id, name, dms_open=dms_open, locale=locale)
        self.emulator.add_member(
            self.guild.id, user_id, name, permissions=permissions, locale=locale
        )
        self.members.append(user_id)
        return user_id

    def audit(self) -> None:
        """Everything the bot posted (channels, DMs, interaction answers), for the secret audit."""
        emulator, bot_id = self.emulator, str(self.emulator.bot_user.id)
        posted = [
            m for c in emulator.guild(self.guild.id).channel_ids for m in emulator.messages(c)
        ]
        posted += [m for user in self.members for m in emulator.dm_messages(user)]
        for interaction in emulator.interactions():
            if interaction.guild_id in (None, self.guild.id):
                record = emulator.responses(interaction)
                posted += record.followups + [e["payload"] for e in record.edits]
        for message in posted:
            if message.get("author", {}).get("id", bot_id) == bot_id:
                AUDIT.scan("chat:discord", message_text(message))

    async def answered(
        self,
        interaction: EmuInteraction,
        timeout: float = 15,  # noqa: ASYNC109 - polls the emulator
    ) -> InteractionRecord:
        """The record once the bot answered: a modal, or a reply after the deferral."""

        def done() -> InteractionRecord | None:
            record = self.emulator.responses(interaction)
            if record.callback_type == CALLBACK_MODAL:
                return record
            if record.callback_type is not None and (record.followups or record.edits):
                return record
            return None

        found = await self.emulator.wait_for_async(done, timeout)
        assert found is not None
        return found

    async def run(
        self,
        user: int,
        path: str,
        options: dict[str, Any] | None = None,
        *,
        in_server: bool = True,
        channel_id: int | None = None,
        locale: str | None = None,
    ) -> InteractionRecord:
        """A user runs a slash command (in the server unless ``in_server=False``)."""
        interaction = self.emulator.invoke(
            user,
            path,
            options,
            guild_id=self.guild.id if in_server and channel_id is None else None,
            channel_id=channel_id,
            locale=locale,
        )
        return await self.answered(interaction)

    async def press(
        self,
        user: int,
        message: dict[str, Any],
        label: str,
        *,
        until: str,
        timeout: float = 15,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """Press a button (or pick a menu option) and wait for a message saying ``until``."""
        component, values = custom_id(message, label)
        interaction = self.emulator.press(user, message, component, values)
        return await self.says(interaction, until, timeout)

    async def says(
        self,
        interaction: EmuInteraction,
        fragment: str,
        timeout: float = 15,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """The message (edited or new) answering ``interaction`` that contains ``fragment``."""

        def find() -> dict[str, Any] | None:
            record = self.emulator.responses(interaction)
            candidates = list(record.followups)
            if record.original is not None:
                candidates.append(record.original)
            for message in candidates:
                current = self.emulator.get_message(int(message["id"]))
                if fragment in message_text(current):
                    return current
            return None

        found = await self.emulator.wait_for_async(find, timeout)
        assert found is not None
        return found

    def replies(self, record: InteractionRecord) -> list[dict[str, Any]]:
        return [self.emulator.get_message(int(m["id"])) for m in record.followups]

    def text(self, record: InteractionRecord) -> str:
        return "\n".join(message_text(m) for m in self.replies(record))

    async def make_pro(self, user: int) -> None:
        """As if the user had paid for Pro (billing has its own tests)."""
        async with self.app.database.transaction() as session:
            identity = await session.scalar(
                select(ChatIdentity).where(
                    ChatIdentity.platform == Platform.DISCORD,
                    ChatIdentity.platform_user_id == str(user),
                )
            )
            assert identity is not None
            found = await session.get(User, identity.user_id)
            assert found is not None
            found.plan = Plan.PRO


def is_ephemeral(message: dict[str, Any]) -> bool:
    return bool(int(message.get("flags") or 0) & FLAG_EPHEMERAL)


@pytest.fixture
async def discord_bot(
    settings: Settings,
    database: Database,
    discord_emulator: DiscordEmulator,
    exchange_emulator: ExchangeEmulator,
) -> AsyncIterator[RunningBot]:
    discord_emulator.reset_rate_limits()
    settings = settings.model_copy(
        update={
            "discord_token": SecretStr(TOKEN),
            "discord_api_url": discord_emulator.api_base,
            "exchange_api_urls": {
                "binance": exchange_emulator.base_url,
                "bybit": exchange_emulator.base_url,
            },
            "market_data": "replay",
        }
    )
    app = App.from_settings(settings, database)
    core = ChatCore(app, rate_limiter=RateLimiter(rate=1000, burst=1000))
    guild = discord_emulator.add_guild(
        f"Traders {next(_ids)}",
        next(_ids),
        preferred_locale="pt-BR",
        bot_permissions=DEFAULT_BOT_PERMISSIONS | Perm.MANAGE_MESSAGES,
    )
    old_base, old_gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    service = DiscordService(app, core=core, guild_ready_timeout=0.05)
    service.delivery.idle_seconds = 0.1
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        ready = asyncio.create_task(service.ready.wait())
        await asyncio.wait({ready, task}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if task.done():
            task.result()
        assert service.ready.is_set(), "the Discord front end did not start"
        running = RunningBot(app, discord_emulator, exchange_emulator, service, guild)
        yield running
        running.audit()
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=30)
        await app.backtests.close()
        await app.pool.close()
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway
