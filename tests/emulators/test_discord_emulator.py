"""The Discord emulator, exercised by the real discord.py client (and by raw HTTP)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
import yarl
from discord import app_commands
from discord.app_commands import locale_str
from discord.ext import commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from tests.emulators.discord_api import (
    CALLBACK_DEFERRED_MESSAGE,
    CALLBACK_MESSAGE,
    CALLBACK_MODAL,
    CALLBACK_UPDATE_MESSAGE,
    FLAG_EPHEMERAL,
    DiscordEmulator,
    EmuChannel,
    EmuGuild,
    InvocationRefused,
    Perm,
)

TOKEN = "emulator-test-token"
OWNER_ID = 1_000_001
ALICE_ID = 1_000_002  # a trader with no special permission
BOB_ID = 1_000_003  # a moderator (MANAGE_GUILD)
CAROL_ID = 1_000_004  # DMs closed
ROOT = Path(__file__).resolve().parents[2]

PT_BR = {
    "bot": "robo",
    "Manage trading bots": "Gerencie robôs de trading",
    "create": "criar",
    "Create a trading bot": "Criar um robô de trading",
    "name": "nome",
    "The bot's name": "O nome do robô",
    "status": "situacao",
    "Show the bots' status": "Mostrar a situação dos robôs",
}


class PtBrTranslator(app_commands.Translator):
    """Brazilian Portuguese names and descriptions for the synced commands."""

    async def translate(
        self,
        string: locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        if locale is discord.Locale.brazil_portuguese:
            return PT_BR.get(string.message)
        return None


@dataclass
class Seen:
    """What the bot's callbacks observed."""

    events: dict[str, asyncio.Event] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def mark(self, name: str, value: Any = None) -> None:
        self.values[name] = value
        self.events.setdefault(name, asyncio.Event()).set()

    async def wait(self, name: str) -> Any:
        event = self.events.setdefault(name, asyncio.Event())
        await asyncio.wait_for(event.wait(), 5)
        return self.values[name]


class ConfigModal(discord.ui.Modal, title="Configurar robô"):
    """A modal with a classic text input and a newer label-wrapped one."""

    def __init__(self, seen: Seen) -> None:
        super().__init__(timeout=None)
        self.seen = seen
        self.pair: discord.ui.TextInput[ConfigModal] = discord.ui.TextInput(
            label="Par", custom_id="pair", max_length=20
        )
        self.notes: discord.ui.TextInput[ConfigModal] = discord.ui.TextInput(
            custom_id="notes", style=discord.TextStyle.paragraph, required=False
        )
        self.add_item(self.pair)
        self.add_item(discord.ui.Label(text="Notas", component=self.notes))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        self.seen.mark("modal", {"pair": self.pair.value, "notes": self.notes.value})
        await interaction.response.send_message(f"par {self.pair.value}", ephemeral=True)


class ConfirmView(discord.ui.View):
    def __init__(self, seen: Seen) -> None:
        super().__init__(timeout=None)
        self.seen = seen

    @discord.ui.select(
        custom_id="pair",
        options=[discord.SelectOption(label="BTC/BRL"), discord.SelectOption(label="ETH/BRL")],
    )
    async def pair(self, interaction: discord.Interaction, select: discord.ui.Select[Any]) -> None:
        self.seen.mark("picked", select.values)
        await interaction.response.defer()

    @discord.ui.button(label="Confirmar", custom_id="confirm", style=discord.ButtonStyle.green)
    async def confirm(
        self, interaction: discord.Interaction, button: discord.ui.Button[Any]
    ) -> None:
        self.seen.mark("pressed", interaction.user.id)
        await interaction.response.edit_message(content="confirmado", view=None)


class TradingCog(
    commands.GroupCog,
    group_name=locale_str("bot"),
    group_description=locale_str("Manage trading bots"),
):
    """A small slice of the product's command surface."""

    def __init__(self, seen: Seen) -> None:
        self.seen = seen
        super().__init__()

    @app_commands.command(name=locale_str("create"), description=locale_str("Create a trading bot"))
    @app_commands.describe(name=locale_str("The bot's name"))
    @app_commands.rename(name=locale_str("name"))
    async def create(self, interaction: discord.Interaction, name: str) -> None:
        self.seen.mark("create", (name, str(interaction.locale)))
        await interaction.response.send_message(f"criado {name}", ephemeral=True)

    alerts = app_commands.Group(name="alerts", description="Price alerts")

    @alerts.command(name="add", description="Add a price alert")
    @app_commands.choices(
        direction=[
            app_commands.Choice(name="acima", value="above"),
            app_commands.Choice(name="abaixo", value="below"),
        ]
    )
    async def alerts_add(
        self,
        interaction: discord.Interaction,
        price: app_commands.Range[float, 0],
        direction: str,
        pair: str = "BTC/BRL",
    ) -> None:
        self.seen.mark("alerts add", (price, direction, pair))
        await interaction.response.send_message("alerta criado", ephemeral=True)

    @app_commands.command(
        name=locale_str("status"), description=locale_str("Show the bots' status")
    )
    async def status(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await asyncio.sleep(0.05)
        await interaction.followup.send("2 robôs ativos")

    @app_commands.command(name="panel", description="Show the confirmation panel")
    async def panel(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Confirmar?", view=ConfirmView(self.seen))

    @app_commands.command(name="config", description="Configure a bot")
    async def config(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(ConfigModal(self.seen))

    @app_commands.command(name="alert", description="Alert a user in a channel")
    async def alert(
        self, interaction: discord.Interaction, channel: discord.TextChannel, user: discord.Member
    ) -> None:
        self.seen.mark("alert", (channel.id, channel.name, user.id, user.name))
        await interaction.response.send_message(f"{user.mention} em {channel.mention}")


class EmulatedBot(commands.Bot):
    """A bot wired to the emulator as the product does it."""

    def __init__(self, seen: Seen, *, intents: discord.Intents | None = None) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents or discord.Intents.default(),
            help_command=None,
            guild_ready_timeout=0.05,
        )
        self.seen = seen

    async def setup_hook(self) -> None:
        _shards, url, _limits = await self.http.get_bot_gateway()
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        await self.tree.set_translator(PtBrTranslator())
        await self.add_cog(TradingCog(self.seen))

        @self.tree.command(name="wipe", description="Delete every bot of this server")
        @app_commands.default_permissions(manage_guild=True)
        @app_commands.guild_only()
        async def wipe(interaction: discord.Interaction) -> None:
            self.seen.mark("wipe", interaction.user.id)
            await interaction.response.send_message("apagado", ephemeral=True)

    async def on_message(self, message: discord.Message) -> None:
        if message.author.id != self.user.id:  # type: ignore[union-attr]
            self.seen.mark(f"message:{message.id}", message.content)


@dataclass
class World:
    emulator: DiscordEmulator
    guild: EmuGuild
    general: EmuChannel
    trades: EmuChannel


@pytest.fixture
def world() -> Iterator[World]:
    old_base, old_gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    with DiscordEmulator(token=TOKEN, bot_name="RoboTrader") as emulator:
        Route.BASE = emulator.api_base
        guild = emulator.add_guild("Traders BR", OWNER_ID, preferred_locale="pt-BR")
        emulator.add_member(guild.id, ALICE_ID, "alice")
        emulator.add_member(guild.id, BOB_ID, "bob", permissions=Perm.MANAGE_GUILD, locale="en-US")
        emulator.add_user(CAROL_ID, "carol", dms_open=False)
        trades = emulator.add_channel(guild.id, "trades", topic="sinais")
        general = emulator.channel(guild.system_channel_id or 0)
        try:
            yield World(emulator, emulator.guild(guild.id), general, trades)
        finally:
            Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway


@asynccontextmanager
async def running_bot(
    world: World, *, sync: bool = True, intents: discord.Intents | None = None
) -> AsyncIterator[EmulatedBot]:
    """Log in, connect, wait for READY (and sync the commands), then close cleanly."""
    bot = EmulatedBot(Seen(), intents=intents)
    await bot.login(TOKEN)
    task = asyncio.create_task(bot.connect())
    try:
        await asyncio.wait_for(bot.wait_until_ready(), 10)
        if sync:
            await bot.tree.sync()
        yield bot
    finally:
        await bot.close()
        await asyncio.wait_for(task, 10)


# ---------------------------------------------------------------------------
# The real client
# ---------------------------------------------------------------------------


async def test_login_ready_and_guild_cache(world: World) -> None:
    emulator = world.emulator
    async with running_bot(world, sync=False) as bot:
        assert bot.user is not None and bot.user.id == emulator.bot_user.id
        assert bot.application_id == emulator.application_id
        guild = bot.get_guild(world.guild.id)
        assert guild is not None and guild.name == "Traders BR"
        assert guild.preferred_locale is discord.Locale.brazil_portuguese
        assert {c.name for c in guild.text_channels} == {"general", "trades"}
        assert guild.me.guild_permissions.send_messages
        assert not guild.me.guild_permissions.manage_messages
        assert guild.get_channel(world.trades.id).topic == "sinais"  # type: ignore[union-attr]
        [session] = emulator.sessions
        assert session["connected"] and session["compress"] == "zlib-stream"
        assert session["intents"] == discord.Intents.default().value
        identify = next(f for f in emulator.gateway_received() if f["op"] == 2)
        assert identify["d"]["token"] == TOKEN
        # A guild added while connected arrives as GUILD_CREATE.
        other = emulator.add_guild("Outro", OWNER_ID)
        await emulator.wait_for_async(lambda: bot.get_guild(other.id))
    # discord.py's close() races its own reader, which closes with 4000 first:
    # the session stays resumable, as it would on Discord.
    [session] = await emulator.wait_for_async(
        lambda: [s for s in emulator.sessions if not s["connected"]]
    )
    assert session["seq"] >= 3  # READY, GUILD_CREATE, GUILD_CREATE


async def test_sync_group_with_pt_br_localizations(world: World) -> None:
    emulator = world.emulator
    async with running_bot(world) as bot:
        synced = await bot.tree.fetch_commands()
        assert {c.name for c in synced} == {"bot", "wipe"}
    stored = {c["name"]: c for c in emulator.commands()}
    group = stored["bot"]
    assert group["name_localizations"] == {"pt-BR": "robo"}
    assert group["description_localizations"] == {"pt-BR": "Gerencie robôs de trading"}
    create = next(o for o in group["options"] if o["name"] == "create")
    assert create["type"] == 1
    assert create["name_localizations"] == {"pt-BR": "criar"}
    [name_option] = create["options"]
    assert name_option["name_localizations"] == {"pt-BR": "nome"}
    assert name_option["required"] is True
    wipe = stored["wipe"]
    assert wipe["default_member_permissions"] == str(Perm.MANAGE_GUILD.value)
    assert wipe["dm_permission"] is False
    assert group["default_member_permissions"] is None


async def test_slash_command_replies_ephemerally(world: World) -> None:
    emulator = world.emulator
    async with running_bot(world) as bot:
        # The user types the Portuguese names their client shows.
        interaction = emulator.invoke(
            ALICE_ID, "robo criar", {"name": "alpha"}, channel_id=world.trades.id
        )
        record = await emulator.wait_for_response(interaction)
        assert await bot.seen.wait("create") == ("alpha", "pt-BR")
        # The same command from the user's DM with the bot (context 1, "user" not "member").
        in_dm = emulator.invoke(ALICE_ID, "bot create", {"name": "dm"}, locale="en-US")
        dm_record = await emulator.wait_for_response(in_dm)
        assert dm_record.content == "criado dm"
        assert in_dm.payload["context"] == 1 and "member" not in in_dm.payload
        assert in_dm.payload["authorizing_integration_owners"] == {"0": "0"}
    assert record.callback_type == CALLBACK_MESSAGE
    assert record.callback_data is not None
    assert record.callback_data["flags"] & FLAG_EPHEMERAL
    assert record.ephemeral and record.content == "criado alpha"
    assert record.callback_delay is not None and record.callback_delay < 3
    assert interaction.payload["member"]["user"]["id"] == str(ALICE_ID)
    assert interaction.payload["guild_locale"] == "pt-BR"
    # Ephemeral messages are not in the channel for everyone.
    assert emulator.messages(world.trades.id, include_ephemeral=False) == []


async def test_defer_then_followup(world: World) -> None:
    emulator = world.emulator
    async with running_bot(world) as bot:
        interaction = emulator.invoke(ALICE_ID, "bot status", guild_id=world.guild.id)
        await emulator.wait_for_async(lambda: emulator.responses(interaction).followups)
        record = emulator.responses(interaction)
        assert bot.is_ready()
    assert record.callback_type == CALLBACK_DEFERRED_MESSAGE
    assert [f["content"] for f in record.followups] == ["2 robôs ativos"]
    assert record.original is not None and record.original["content"] == "2 robôs ativos"
    assert not record.original["flags"] & 128  # no longer "thinking"
    [message] = emulator.messages(world.general.id)
    assert message["interaction_metadata"]["user"]["id"] == str(ALICE_ID)


async def test_button_press_reaches_the_view(world: World) -> None:
    emulator = world.emulator
    async with running_bot(world) as bot:
        shown = emulator.invoke(BOB_ID, "bot panel", channel_id=world.trades.id)
        record = await emulator.wait_for_response(shown)
        assert record.original is not None
        [select], [button] = (row["components"] for row in record.original["components"])
        assert select["type"] == 3 and select["custom_id"] == "pair"
        assert button["custom_id"] == "confirm" and button["label"] == "Confirmar"
        picked = emulator.press(ALICE_ID, record.original, "pair", ["ETH/BRL"])
        assert await bot.seen.wait("picked") == ["ETH/BRL"]
        assert (await emulator.wait_for_response(picked)).callback_type == 6
        with pytest.raises(InvocationRefused) as bad_value:
            emulator.press(ALICE_ID, record.original, "pair", ["DOGE/BRL"])
        assert bad_value.value.reason == "invalid_values"
        press = emulator.press(ALICE_ID, record.original, "confirm")
        assert await bot.seen.wait("pressed") == ALICE_ID
        answer = await emulator.wait_for_response(press)
    assert answer.callback_type == CALLBACK_UPDATE_MESSAGE
    assert answer.original is not None and answer.original["content"] == "confirmado"
    assert answer.original["components"] == []
    assert press.payload["message"]["id"] == record.original["id"]
    with pytest.raises(InvocationRefused) as refused:
        emulator.press(ALICE_ID, record.original, "confirm")
    assert refused.value.reason == "unknown_component"


async def test_modal_submit_reaches_on_submit(world: World) -> None:
    emulator = world.emulator
    async with running_bot(world) as bot:
        opened = emulator.invoke(ALICE_ID, "bot config", guild_id=world.guild.id)
        record = await emulator.wait_for_response(opened)
        assert record.callback_type == CALLBACK_MODAL and record.modal is not None
        assert record.modal["title"] == "Configurar robô"
        assert [c["type"] for c in record.modal["components"]] == [1, 18]
        with pytest.raises(InvocationRefused) as refused:
            emulator.submit_modal(ALICE_ID, opened, {"pair": "X" * 21})
        assert refused.value.reason == "invalid_values"
        submitted = emulator.submit_modal(ALICE_ID, opened, {"pair": "BTC/BRL", "notes": "devagar"})
        assert await bot.seen.wait("modal") == {"pair": "BTC/BRL", "notes": "devagar"}
        answer = await emulator.wait_for_response(submitted)
    assert answer.content == "par BTC/BRL" and answer.ephemeral
    with pytest.raises(InvocationRefused):
        emulator.submit_modal(ALICE_ID, opened, {"pair": "ETH/BRL"})


async def test_options_are_resolved(world: World) -> None:
    emulator = world.emulator
    async with running_bot(world) as bot:
        interaction = emulator.invoke(
            BOB_ID,
            "bot alert",
            {"channel": world.trades.id, "user": ALICE_ID},
            guild_id=world.guild.id,
        )
        seen = await bot.seen.wait("alert")
        record = await emulator.wait_for_response(interaction)
    assert seen == (world.trades.id, "trades", ALICE_ID, "alice")
    resolved = interaction.payload["data"]["resolved"]
    assert set(resolved) == {"channels", "users", "members"}
    assert record.content == f"<@{ALICE_ID}> em <#{world.trades.id}>"
    [message] = emulator.messages(world.general.id)
    assert message["mentions"][0]["id"] == str(ALICE_ID)


async def test_nested_group_options_choices_and_guild_commands(world: World) -> None:
    emulator = world.emulator
    async with running_bot(world) as bot:
        bot.tree.copy_global_to(guild=discord.Object(world.guild.id))
        await bot.tree.sync(guild=discord.Object(world.guild.id))
        [guild_bot] = [c for c in emulator.commands(world.guild.id) if c["name"] == "bot"]
        assert guild_bot["guild_id"] == str(world.guild.id)
        interaction = emulator.invoke(
            ALICE_ID,
            "bot alerts add",
            {"price": 350000.5, "direction": "above"},
            guild_id=world.guild.id,
        )
        assert await bot.seen.wait("alerts add") == (350000.5, "above", "BTC/BRL")
        await emulator.wait_for_response(interaction)
        for options in (
            {"price": 1, "direction": "sideways"},  # not a choice
            {"price": -1, "direction": "below"},  # below min_value
            {"direction": "below"},  # required option missing
            {"price": 1, "direction": "below", "leverage": 3},  # unknown option
        ):
            with pytest.raises(InvocationRefused) as refused:
                emulator.invoke(ALICE_ID, "bot alerts add", options, guild_id=world.guild.id)
            assert refused.value.reason == "invalid_options"
        with pytest.raises(InvocationRefused):
            emulator.invoke(ALICE_ID, "bot alerts", guild_id=world.guild.id)  # not a leaf
    data = interaction.payload["data"]
    assert data["guild_id"] == str(world.guild.id)  # the guild copy was chosen
    [group] = data["options"]
    assert (group["name"], group["type"]) == ("alerts", 2)
    [sub] = group["options"]
    assert (sub["name"], sub["type"]) == ("add", 1)
    assert sub["options"] == [
        {"name": "price", "type": 10, "value": 350000.5},
        {"name": "direction", "type": 3, "value": "above"},
    ]


async def test_dm_to_a_user_with_closed_dms_is_forbidden(world: World) -> None:
    emulator = world.emulator
    async with running_bot(world, sync=False) as bot:
        carol = await bot.fetch_user(CAROL_ID)
        with pytest.raises(discord.Forbidden) as forbidden:
            await carol.send("oi")
        assert forbidden.value.code == 50007
        assert forbidden.value.text == "Cannot send messages to this user"
        alice = await bot.fetch_user(ALICE_ID)
        await alice.send("seu robô comprou BTC")
    assert [m["content"] for m in emulator.dm_messages(ALICE_ID)] == ["seu robô comprou BTC"]
    assert emulator.dm_messages(CAROL_ID) == []


async def test_429_with_via_is_retried(world: World) -> None:
    emulator = world.emulator
    async with running_bot(world, sync=False) as bot:
        channel = bot.get_channel(world.trades.id)
        assert isinstance(channel, discord.TextChannel)
        emulator.inject_rate_limit("POST", "/channels/{channel_id}/messages", retry_after=0.05)
        before = emulator.stats
        message = await channel.send("ordem executada")
        after = emulator.stats
    assert after["rate_limited"] == before["rate_limited"] + 1
    route = "POST /channels/{channel_id}/messages"
    assert after["by_route"][route] == before["by_route"].get(route, 0) + 2
    assert [m["id"] for m in emulator.messages(world.trades.id)] == [str(message.id)]


async def test_route_bucket_headers_pace_the_library(world: World) -> None:
    emulator = world.emulator
    emulator.set_route_limit("POST", "/channels/{channel_id}/messages", 2, 0.4)
    async with running_bot(world, sync=False) as bot:
        channel = bot.get_channel(world.trades.id)
        assert isinstance(channel, discord.TextChannel)
        started = time.monotonic()
        for number in range(3):
            await channel.send(f"sinal {number}")
        elapsed = time.monotonic() - started
    assert elapsed >= 0.3  # the third send waited for the bucket to reset
    assert emulator.stats["rate_limited"] == 0  # paced by the headers, never a 429
    assert len(emulator.messages(world.trades.id)) == 3


async def test_a_deleted_channel_leaves_the_cache_and_answers_unknown_channel(
    world: World,
) -> None:
    emulator = world.emulator
    async with running_bot(world, sync=False) as bot:
        channel = bot.get_channel(world.trades.id)
        assert isinstance(channel, discord.TextChannel)
        await channel.send("antes")
        emulator.delete_channel(world.trades.id)
        await emulator.wait_for_async(lambda: bot.get_channel(world.trades.id) is None)
        with pytest.raises(discord.NotFound) as gone:
            await channel.send("depois")
        assert (gone.value.status, gone.value.code) == (404, 10003)
        assert gone.value.text == "Unknown Channel"
        with pytest.raises(InvocationRefused) as refused:
            emulator.post_message(ALICE_ID, world.trades.id, "oi")
        assert refused.value.reason == "unknown_channel"
    assert [m["content"] for m in emulator.messages(world.trades.id)] == ["antes"]
    assert world.trades.id not in emulator.guild(world.guild.id).channel_ids


async def test_deleting_without_manage_messages_is_forbidden(world: World) -> None:
    emulator = world.emulator
    async with running_bot(world, sync=False) as bot:
        posted = emulator.post_message(ALICE_ID, world.trades.id, "comprar agora!")
        assert await bot.seen.wait(f"message:{posted['id']}") == ""  # no MESSAGE_CONTENT intent
        channel = bot.get_channel(world.trades.id)
        assert isinstance(channel, discord.TextChannel)
        with pytest.raises(discord.Forbidden) as forbidden:
            await channel.get_partial_message(int(posted["id"])).delete()
        assert forbidden.value.code == 50013
        emulator.set_bot_permissions(
            world.guild.id, Perm.VIEW_CHANNEL | Perm.SEND_MESSAGES | Perm.MANAGE_MESSAGES
        )
        await emulator.wait_for_async(
            lambda: channel.permissions_for(channel.guild.me).manage_messages
        )
        await channel.get_partial_message(int(posted["id"])).delete()
    [gone] = emulator.deleted(world.trades.id)
    assert gone["id"] == posted["id"] and gone["deleted_by"] == str(emulator.bot_user.id)


async def test_message_content_needs_the_intent_or_a_mention(world: World) -> None:
    emulator = world.emulator
    async with running_bot(world, sync=False) as bot:
        mention = emulator.post_message(ALICE_ID, world.trades.id, f"<@{bot.user.id}> saldo")  # type: ignore[union-attr]
        assert await bot.seen.wait(f"message:{mention['id']}") == f"<@{bot.user.id}> saldo"  # type: ignore[union-attr]
        dm = emulator.post_message(ALICE_ID, emulator.dm_channel(ALICE_ID).id, "oi robô")
        assert await bot.seen.wait(f"message:{dm['id']}") == "oi robô"
    intents = discord.Intents.default()
    intents.message_content = True
    async with running_bot(world, sync=False, intents=intents) as bot:
        plain = emulator.post_message(ALICE_ID, world.trades.id, "vender tudo")
        assert await bot.seen.wait(f"message:{plain['id']}") == "vender tudo"


async def test_default_member_permissions_are_enforced_by_the_client(world: World) -> None:
    emulator = world.emulator
    async with running_bot(world) as bot:
        with pytest.raises(InvocationRefused) as refused:
            emulator.invoke(ALICE_ID, "wipe", guild_id=world.guild.id)
        assert refused.value.reason == "missing_permissions"
        with pytest.raises(InvocationRefused) as in_dm:
            emulator.invoke(BOB_ID, "wipe")
        assert in_dm.value.reason == "wrong_context"
        allowed = emulator.invoke(BOB_ID, "wipe", guild_id=world.guild.id)
        assert await bot.seen.wait("wipe") == BOB_ID
        await emulator.wait_for_response(allowed)
        with pytest.raises(InvocationRefused) as unknown:
            emulator.invoke(ALICE_ID, "bot delete", guild_id=world.guild.id)
        assert unknown.value.reason == "unknown_command"
    assert len(emulator.interactions()) == 1  # refused invocations never reached the bot


async def test_unsynced_commands_are_refused(world: World) -> None:
    async with running_bot(world, sync=False):
        with pytest.raises(InvocationRefused) as refused:
            world.emulator.invoke(ALICE_ID, "bot create", {"name": "x"}, guild_id=world.guild.id)
    assert refused.value.reason == "unknown_command"


async def test_gateway_resume_after_a_dropped_connection(world: World) -> None:
    emulator = world.emulator
    async with running_bot(world) as bot:
        resumed = asyncio.Event()

        async def on_resumed() -> None:
            resumed.set()

        bot.add_listener(on_resumed)
        [before] = emulator.sessions
        emulator.disconnect_bot(4000)
        await asyncio.wait_for(resumed.wait(), 10)
        [after] = emulator.sessions
        assert after["session_id"] == before["session_id"] and after["connected"]
        assert any(f["op"] == 6 for f in emulator.gateway_received())
        resumed.clear()
        emulator.request_reconnect()  # op 7: the client closes and resumes again
        await asyncio.wait_for(resumed.wait(), 10)
        assert sum(f["op"] == 6 for f in emulator.gateway_received()) == 2
        assert [s["session_id"] for s in emulator.sessions] == [before["session_id"]]
        interaction = emulator.invoke(
            ALICE_ID, "bot create", {"name": "beta"}, guild_id=world.guild.id
        )
        assert (await emulator.wait_for_response(interaction)).content == "criado beta"


# ---------------------------------------------------------------------------
# Raw HTTP and websocket: what the library relies on
# ---------------------------------------------------------------------------


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bot {TOKEN}"}


async def test_rest_answers_like_discord(world: World) -> None:
    api = world.emulator.api_base
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{api}/users/@me", headers=_auth()) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/json"
            assert "X-RateLimit-Bucket" in resp.headers
            assert (await resp.json())["bot"] is True
        async with http.get(f"{api}/users/@me", headers={"Authorization": "Bot wrong"}) as resp:
            assert resp.status == 401
            assert await resp.json() == {"message": "401: Unauthorized", "code": 0}
        async with http.get(f"{api}/no/such/route", headers=_auth()) as resp:
            assert resp.status == 404
            assert await resp.json() == {"message": "404: Not Found", "code": 0}
        async with http.get(f"{api}/oauth2/applications/@me", headers=_auth()) as resp:
            assert (await resp.json())["interactions_endpoint_url"] is None
        async with http.get(f"{api}/gateway/bot", headers=_auth()) as resp:
            assert (await resp.json())["url"] == world.emulator.gateway_url
        url = f"{api}/channels/{world.trades.id}/messages"
        async with http.post(url, headers=_auth(), json={"content": "x" * 2001}) as resp:
            assert resp.status == 400
            body = await resp.json()
            assert body["code"] == 50035
            assert body["errors"]["content"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
        async with http.post(url, headers=_auth(), json={"content": ""}) as resp:
            assert (await resp.json())["code"] == 50006
        guild_url = f"{api}/guilds/{world.guild.id}/members/{ALICE_ID}"
        async with http.get(guild_url, headers=_auth()) as resp:
            assert (await resp.json())["user"]["username"] == "alice"


async def test_global_rate_limit(world: World) -> None:
    emulator = world.emulator
    emulator.global_limit = 5
    emulator.global_window = 30.0
    async with aiohttp.ClientSession() as http:
        statuses = []
        for _ in range(6):
            async with http.get(f"{emulator.api_base}/users/@me", headers=_auth()) as resp:
                statuses.append(resp.status)
                last_headers, last_body = resp.headers, await resp.json()
    assert statuses == [200] * 5 + [429]
    assert last_headers["Via"] == "1.1 google"
    assert last_headers["X-RateLimit-Scope"] == "global"
    assert last_headers["X-RateLimit-Global"] == "true"
    assert int(last_headers["Retry-After"]) >= 1
    assert last_body["global"] is True and 0 < last_body["retry_after"] <= 30
    assert last_body["message"] == "You are being rate limited."
    assert emulator.stats["global_rate_limited"] == 1


async def test_route_rate_limit_headers_and_429(world: World) -> None:
    emulator = world.emulator
    emulator.set_route_limit("POST", "/channels/{channel_id}/messages", 2, 5.0)
    url = f"{emulator.api_base}/channels/{world.trades.id}/messages"
    async with aiohttp.ClientSession() as http:
        answers = []
        for number in range(3):
            async with http.post(url, headers=_auth(), json={"content": str(number)}) as resp:
                answers.append((resp.status, dict(resp.headers), await resp.json()))
        other = f"{emulator.api_base}/channels/{world.general.id}/messages"
        async with http.post(other, headers=_auth(), json={"content": "outro canal"}) as resp:
            assert resp.status == 200  # buckets are per channel
    (s1, h1, _), (s2, h2, _), (s3, h3, b3) = answers
    assert (s1, s2, s3) == (200, 200, 429)
    assert (h1["X-RateLimit-Limit"], h1["X-RateLimit-Remaining"]) == ("2", "1")
    assert h2["X-RateLimit-Remaining"] == "0"
    assert h1["X-RateLimit-Bucket"] == h3["X-RateLimit-Bucket"]
    assert 0 < float(h2["X-RateLimit-Reset-After"]) <= 5
    assert abs(float(h2["X-RateLimit-Reset"]) - time.time() - 5) < 1
    assert h3["X-RateLimit-Scope"] == "user" and h3["Via"] == "1.1 google"
    assert b3["global"] is False and b3["retry_after"] > 0


async def test_interaction_callback_rules(world: World) -> None:
    """Raw callbacks: answered twice -> 40060; too late -> 10062 (the bot is not running)."""
    emulator = world.emulator
    emulator.interaction_deadline = 0.5
    async with running_bot(world, sync=True):
        pass
    # A stand-in gateway session so interactions can be sent without a bot.
    gateway = emulator.gateway_url + "/?v=10&encoding=json"
    async with aiohttp.ClientSession() as http, http.ws_connect(gateway) as ws:
        await ws.receive_json()  # HELLO
        await ws.send_json({"op": 2, "d": {"token": TOKEN, "intents": 1, "properties": {}}})
        ready = await ws.receive_json()
        assert ready["t"] == "READY"
        first = emulator.invoke(ALICE_ID, "bot create", {"name": "a"}, guild_id=world.guild.id)
        late = emulator.invoke(ALICE_ID, "bot create", {"name": "b"}, guild_id=world.guild.id)
        callback = f"{emulator.api_base}/interactions/{first.id}/{first.token}/callback"
        body = {"type": 4, "data": {"content": "ok", "flags": 64}}
        async with http.post(callback, params={"with_response": "1"}, json=body) as resp:
            assert resp.status == 200
            answer = await resp.json()
            assert answer["interaction"]["id"] == str(first.id)
            assert answer["interaction"]["response_message_ephemeral"] is True
            assert answer["resource"]["message"]["content"] == "ok"
        async with http.post(callback, json=body) as resp:
            assert resp.status == 400
            assert (await resp.json())["code"] == 40060
        await asyncio.sleep(0.6)
        late_url = f"{emulator.api_base}/interactions/{late.id}/{late.token}/callback"
        async with http.post(late_url, json=body) as resp:
            assert resp.status == 404
            assert await resp.json() == {"message": "Unknown interaction", "code": 10062}
        # Followups use the token, without Authorization.
        followup = f"{emulator.api_base}/webhooks/{emulator.application_id}/{first.token}"
        async with http.post(followup, params={"wait": "1"}, json={"content": "mais"}) as resp:
            assert resp.status == 200
        async with http.patch(followup + "/messages/@original", json={"content": "novo"}) as resp:
            assert (await resp.json())["content"] == "novo"
        async with http.post(followup, json={"content": "x" * 2001}) as resp:
            assert (await resp.json())["code"] == 50035
    record = emulator.responses(first)
    assert record.content == "novo" and [f["content"] for f in record.followups] == ["mais"]
    assert [r["code"] for r in record.rejected] == [40060, 50035]
    assert emulator.responses(late).rejected[0]["code"] == 10062


async def test_gateway_handshake_close_codes_and_compression(world: World) -> None:
    emulator = world.emulator
    url = emulator.gateway_url + "/?v=10&encoding=json&compress=zlib-stream"
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url) as ws:
            inflate = zlib.decompressobj()
            hello_frame = await ws.receive_bytes()
            assert hello_frame.endswith(b"\x00\x00\xff\xff")
            hello = json.loads(inflate.decompress(hello_frame))
            assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] == 41250
            await ws.send_json({"op": 1, "d": None})
            assert json.loads(inflate.decompress(await ws.receive_bytes()))["op"] == 11
            await ws.send_json({"op": 2, "d": {"token": "wrong", "intents": 0}})
            closing = await ws.receive()
            assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 4004
        privileged = DiscordEmulator(token=TOKEN, privileged_intents=0)
        with privileged:
            async with http.ws_connect(privileged.gateway_url + "/?v=10") as ws:
                await ws.receive_json()
                intents = discord.Intents.default()
                intents.members = True
                await ws.send_json({"op": 2, "d": {"token": TOKEN, "intents": intents.value}})
                assert (await ws.receive()).data == 4014
        async with http.ws_connect(emulator.gateway_url + "/?v=10") as ws:
            await ws.receive_json()
            await ws.send_json({"op": 8, "d": {"guild_id": str(world.guild.id)}})
            assert (await ws.receive()).data == 4003  # not identified


async def test_message_validation_and_attachments(world: World) -> None:
    emulator = world.emulator
    async with running_bot(world, sync=False) as bot:
        channel = bot.get_channel(world.trades.id)
        assert isinstance(channel, discord.TextChannel)
        with pytest.raises(discord.HTTPException) as too_long:
            await channel.send("x" * 2001)
        assert too_long.value.status == 400 and too_long.value.code == 50035
        embed = discord.Embed(title="BTC/BRL", description="alta de 3%")
        chart = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
        sent = await channel.send(
            "gráfico", embed=embed, file=discord.File(io.BytesIO(chart), "chart.png")
        )
        assert sent.attachments[0].filename == "chart.png"
        assert sent.attachments[0].size == len(chart)
        assert await sent.attachments[0].read() == chart
        edited = await sent.edit(content="gráfico atualizado")
        assert edited.edited_at is not None
    [stored] = emulator.messages(world.trades.id)
    assert stored["content"] == "gráfico atualizado"
    assert stored["embeds"][0]["title"] == "BTC/BRL"
    assert emulator.attachment_bytes(int(stored["attachments"][0]["id"])).startswith(b"\x89PNG")


def test_invalid_command_names_are_rejected(world: World) -> None:
    emulator = world.emulator

    async def put(commands_payload: list[dict[str, Any]]) -> tuple[int, Any]:
        url = f"{emulator.api_base}/applications/{emulator.application_id}/commands"
        async with (
            aiohttp.ClientSession() as http,
            http.put(url, headers=_auth(), json=commands_payload) as resp,
        ):
            return resp.status, await resp.json()

    status, body = asyncio.run(put([{"name": "Create Bot", "description": "x", "type": 1}]))
    assert status == 400 and body["code"] == 50035
    assert body["errors"]["0"]["name"]["_errors"][0]["code"] == "APPLICATION_COMMAND_INVALID_NAME"
    status, body = asyncio.run(
        put(
            [
                {
                    "name": "criar",
                    "description": "x",
                    "name_localizations": {"pt-BR": "Criar"},
                    "description_localizations": {"xx": "y"},
                }
            ]
        )
    )
    assert status == 400
    assert set(body["errors"]["0"]) == {"name_localizations", "description_localizations"}
    status, body = asyncio.run(
        put(
            [
                {
                    "name": "ação",
                    "description": "Comando em português",
                    "name_localizations": {"pt-BR": "ação-rápida", "hi": "खरीदें"},
                }
            ]
        )
    )
    assert status == 200, body
    assert emulator.commands()[0]["name_localizations"]["hi"] == "खरीदें"
    assert emulator.wait_for(lambda: emulator.commands(), timeout=1)


def test_runs_standalone_until_sigterm() -> None:
    command = [sys.executable, "-m", "tests.emulators.discord_api", "--port", "0", "--token", "cli"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env) as process:
        try:
            assert process.stdout is not None
            info = json.loads(process.stdout.readline())
            assert info["api_base"].startswith("http://127.0.0.1:")

            async def drive() -> None:
                call = info["api_base"].replace("/api/v10", "/_emulator/call")
                async with aiohttp.ClientSession() as http:
                    body: dict[str, Any] = {"method": "add_guild", "args": ["CLI", 5]}
                    async with http.post(call, json=body) as resp:
                        guild = (await resp.json())["result"]
                    url = f"{info['api_base']}/guilds/{guild['id']}"
                    async with http.get(url, headers={"Authorization": "Bot cli"}) as resp:
                        assert (await resp.json())["name"] == "CLI"
                    body = {"method": "invoke", "args": [5, "nothing"], "kwargs": {}}
                    async with http.post(call, json=body) as resp:
                        assert resp.status == 409
                        assert (await resp.json())["reason"] == "bot_offline"

            asyncio.run(drive())
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0
        finally:
            if process.poll() is None:
                process.kill()
