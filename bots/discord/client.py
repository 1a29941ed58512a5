"""The discord.py client: starts the bot, and routes each event to the module answering it.

No rules here, and little else: interactions are answered in interactions.py
(who sees what: visibility.py), the key form in key_form.py, plain messages in
messages.py. Button presses, select menus and the key form are routed in one
place (``on_interaction``) from their ``custom_id``, which is the chat core's
own short payload: a button keeps working after a restart, with no View alive.
The user's DM channel (dm_channels.py) is what the core records as their
notification chat.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket

from bots.core.core import ChatCore
from bots.core.dialogs import TTL_SECONDS
from bots.core.registry import Handler
from bots.core.replies import Reply
from bots.discord.closed_dms import ClosedDms
from bots.discord.commands import Interaction, slash_commands
from bots.discord.dm_channels import DmChannels
from bots.discord.interactions import apologize, respond
from bots.discord.key_form import (
    KEY_FORM_PREFIX,
    key_form_exchange,
    open_key_form,
    submit_key_form,
)
from bots.discord.live_views import LiveViews
from bots.discord.localization import CatalogTranslator
from bots.discord.messages import on_direct_message, on_server_message
from bots.discord.rendering import PICK_PREFIX, is_empty, message_kwargs, render_view
from robotrader.app import App
from robotrader.enums import Platform
from robotrader.use_cases.community import forget_community

log = logging.getLogger(__name__)


class DiscordFrontEnd(discord.Client):
    """The RoboTrader bot on Discord."""

    def __init__(
        self,
        app: App,
        core: ChatCore,
        *,
        guild_ready_timeout: float = 2.0,
        view_timeout: float = TTL_SECONDS,
    ) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # to see API keys pasted in server channels
        super().__init__(
            intents=intents,
            guild_ready_timeout=guild_ready_timeout,
            # Member names in community posts are mentions; nobody is ever pinged.
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.app = app
        self.core = core
        self.view_timeout = view_timeout
        self.tree: app_commands.CommandTree[DiscordFrontEnd] = app_commands.CommandTree(self)
        self.tree.error(self._on_command_error)
        self.dm_channels = DmChannels()
        self.views = LiveViews()
        self.closed_dms = ClosedDms()

    # ------------------------------------------------------------------ start

    async def setup_hook(self) -> None:
        # A plain Client connects to DEFAULT_GATEWAY; ask the API it is pointed at instead.
        _shards, url, _limits = await self.http.get_bot_gateway()
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        await self.tree.set_translator(CatalogTranslator())
        for command in slash_commands(self):
            self.tree.add_command(command)
        await self.tree.sync()
        log.info("discord.commands_synced count=%s", len(self.tree.get_commands()))

    # ------------------------------------------- slash commands (CommandRunner)

    async def run_text(self, interaction: Interaction, text: str) -> None:
        """A slash command, as the chat-core command text it stands for."""
        await respond(self, interaction, lambda ctx: self.core.handle_text(ctx, text))

    async def run_work(
        self, interaction: Interaction, work: str, handler: Handler, *, public: bool = False
    ) -> None:
        """A Discord-only command (communities) run by the chat core's machinery."""
        await respond(
            self, interaction, lambda ctx: self.core.run(ctx, work, handler), public=public
        )

    async def open_key_form(self, interaction: Interaction, exchange: str) -> None:
        """Answer with the key form at once (a modal must be the first answer)."""
        await open_key_form(self, interaction, exchange)

    async def _on_command_error(
        self, interaction: Interaction, error: app_commands.AppCommandError
    ) -> None:
        # Option conversion failures and the like: logged with a trace id, answered.
        await apologize(interaction, error)

    # ---------------------------------------------------- presses and forms

    async def on_interaction(self, interaction: Interaction) -> None:
        data: dict[str, Any] = dict(interaction.data or {})
        if interaction.type is discord.InteractionType.component:
            custom_id = str(data.get("custom_id", ""))
            if custom_id.startswith(PICK_PREFIX):
                values = data.get("values") or [""]
                payload = str(values[0])
            else:
                payload = custom_id
            exchange = key_form_exchange(payload)
            if exchange is not None:
                await open_key_form(self, interaction, exchange)
                return
            await respond(
                self, interaction, lambda ctx: self.core.handle_action(ctx, payload), pressed=True
            )
        elif interaction.type is discord.InteractionType.modal_submit:
            custom_id = str(data.get("custom_id", ""))
            if custom_id.startswith(KEY_FORM_PREFIX):
                exchange = custom_id.removeprefix(KEY_FORM_PREFIX)
                await submit_key_form(self, interaction, exchange, data)

    # ------------------------------------------------------------- messages

    async def on_message(self, message: discord.Message) -> None:
        """DMs go to the chat core like any chat; in servers it only looks for pasted keys."""
        author = message.author
        if author.bot or message.webhook_id is not None or not message.content:
            return
        try:
            if message.guild is None:
                await on_direct_message(self, message)
            elif not message.content.lstrip().startswith("/"):  # no text commands on Discord
                await on_server_message(self, message)
        except Exception:
            log.exception("discord.message_error channel=%s", message.channel.id)

    async def send_reply(
        self, target: discord.abc.Messageable, reply: Reply
    ) -> discord.Message | None:
        """Send a reply as a new message (a channel, a DM, a user); None when it is empty."""
        if is_empty(reply):
            return None
        view = render_view(reply, timeout=self.view_timeout)
        message = await target.send(**message_kwargs(reply, view))
        self.views.track(message, view)
        return message

    # ------------------------------------------------------- notifications

    def dms_closed(self, chat_id: str, language: str) -> None:
        """The user's DMs refused a notification: tell them at their next server interaction."""
        self.closed_dms.remember(chat_id, language)

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """Removed from a server: its community channel and opt-ins go too."""
        try:
            await forget_community(self.app, Platform.DISCORD, str(guild.id))
        except Exception:
            log.exception("discord.forget_community_failed guild=%s", guild.id)
