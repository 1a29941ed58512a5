"""The discord.py adapter: interactions and messages in, chat core, rendered replies out.

No rules here. Every interaction is acknowledged first (deferred, well within
Discord's 3 seconds, because the chat core touches the database), then
answered with followups. What concerns the user's own account is ephemeral in
servers and a normal message in DMs; a server interaction is as private as a
DM, so the chat core is told the chat is private and personal commands work
there too. The user's DM channel is what the core records as their
notification chat.

Button presses, select menus and the key form are answered in one place
(``on_interaction``) from their ``custom_id``, which is the chat core's own
short payload: a button keeps working after a restart, with no View alive.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from pydantic import SecretStr

from bots.core import actions
from bots.core.context import ChatContext
from bots.core.core import ChatCore
from bots.core.dialogs import TTL_SECONDS
from bots.core.invocation import Invocation
from bots.core.registry import Handler
from bots.core.replies import Reply
from bots.discord.commands import Interaction, command_label, slash_commands
from bots.discord.localization import CatalogTranslator
from bots.discord.rendering import (
    PICK_PREFIX,
    ReplyView,
    is_empty,
    message_kwargs,
    render_embeds,
    render_files,
    render_view,
)
from robotrader.app import App
from robotrader.credentials import CredentialSecrets
from robotrader.enums import Platform
from robotrader.errors import UserError
from robotrader.i18n import Translator
from robotrader.use_cases.community import forget_community
from robotrader.use_cases.exchanges import supported_exchange

log = logging.getLogger(__name__)

KEY_FORM_PREFIX = "rt:key:"
# The one core button answered here: on Discord a key goes into a modal, never a message.
CONNECT_VERB = "cx"
KEY_FIELDS = ("api_key", "secret", "passphrase")
MAX_MODAL_TITLE = 45
Produce = Callable[[ChatContext], Awaitable[list[Reply]]]


def key_form_exchange(payload: str) -> str | None:
    """The exchange a ``cx:<exchange>`` button asks a key for, else None."""
    decoded = actions.decode(payload)
    if decoded is not None and decoded.verb == CONNECT_VERB and decoded.args:
        return decoded.args[0]
    return None


class KeyForm(discord.ui.Modal):
    """The API key form: what is typed here reaches the bot only, never a channel.

    Its submit is answered by ``DiscordFrontEnd.on_interaction`` (from the
    custom_id), like every component.
    """

    def __init__(
        self, exchange_id: str, exchange_title: str, t: Translator, timeout: float
    ) -> None:
        title = t("connect.title", exchange=exchange_title)[:MAX_MODAL_TITLE]
        super().__init__(title=title, custom_id=f"{KEY_FORM_PREFIX}{exchange_id}", timeout=timeout)
        for name in ("api_key", "secret"):
            self.add_item(
                discord.ui.TextInput(
                    label=t(f"discord.modal.{name}"),
                    custom_id=name,
                    style=discord.TextStyle.short,
                    max_length=512,
                )
            )

    def ask_passphrase(self, t: Translator) -> None:
        self.add_item(
            discord.ui.TextInput(
                label=t("discord.modal.passphrase"),
                custom_id="passphrase",
                style=discord.TextStyle.short,
                max_length=512,
            )
        )


def form_values(data: dict[str, Any]) -> dict[str, str]:
    """custom_id -> value of a submitted modal (action rows and labels alike)."""
    values: dict[str, str] = {}
    for row in data.get("components") or []:
        children = row.get("components") or ([row["component"]] if "component" in row else [])
        for child in children:
            if child.get("custom_id") and child.get("value") is not None:
                values[str(child["custom_id"])] = str(child["value"])
    return values


class InteractionProgress:
    """Long work shown in one message that each call edits: the first followup (it takes the
    place of "thinking..."), or, after a button press, the pressed message itself.
    Best effort: a refused edit is logged and the work goes on; its result still comes.
    """

    def __init__(
        self, client: DiscordFrontEnd, interaction: Interaction, *, hidden: bool, pressed: bool
    ) -> None:
        self.client = client
        self.interaction = interaction
        self.hidden = hidden
        self.pressed = pressed
        self.message: discord.WebhookMessage | discord.InteractionMessage | None = None

    @property
    def answered(self) -> bool:
        """Whether the deferred "thinking..." message has been used up."""
        return self.message is not None and not self.pressed

    async def __call__(self, reply: Reply) -> None:
        embeds = render_embeds(reply)
        try:
            if self.pressed:
                self.message = await self.interaction.edit_original_response(
                    embeds=embeds, view=None, attachments=[]
                )
                self.client.forget_view(self.message.id)
            elif self.message is None:
                self.message = await self.interaction.followup.send(
                    wait=True, ephemeral=self.hidden, embeds=embeds
                )
            else:
                self.message = await self.message.edit(embeds=embeds)
        except discord.HTTPException as exc:
            log.warning("discord.progress_failed status=%s", exc.status)


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
        self._dm_channels: dict[int, int] = {}  # Discord user id -> DM channel id
        self._views: dict[int, ReplyView] = {}  # message id -> its live View
        # DM channel id -> language: users whose DMs refused a notification, to tell once.
        self._dms_closed: dict[str, str] = {}

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

    # ------------------------------------------------------- who is talking

    async def dm_channel_id(self, user: discord.User | discord.Member) -> int:
        """The user's DM channel with the bot (opened once, then remembered)."""
        known = self._dm_channels.get(user.id)
        if known is None:
            channel = user.dm_channel or await user.create_dm()
            known = self._dm_channels[user.id] = channel.id
            if len(self._dm_channels) > 200_000:  # forget the oldest half
                for key in list(self._dm_channels)[:100_000]:
                    del self._dm_channels[key]
        return known

    async def interaction_context(
        self, interaction: Interaction, progress: InteractionProgress | None = None
    ) -> ChatContext:
        user = interaction.user
        if interaction.guild_id is None and interaction.channel_id is not None:
            self._dm_channels[user.id] = interaction.channel_id
        dm = await self.dm_channel_id(user)
        return ChatContext(
            platform=Platform.DISCORD,
            platform_user_id=str(user.id),
            chat_id=str(dm),
            is_private=True,  # ephemeral in servers, a DM otherwise: only the user sees it
            client_language=str(interaction.locale),
            display_name=user.display_name,
            command_label=command_label,
            progress=progress,
        )

    # ------------------------------------------------- answering interactions

    async def run_text(self, interaction: Interaction, text: str) -> None:
        """A slash command, as the chat-core command text it stands for."""
        await self._respond(interaction, lambda ctx: self.core.handle_text(ctx, text))

    async def run_work(
        self, interaction: Interaction, work: str, handler: Handler, *, public: bool = False
    ) -> None:
        """A Discord-only command (communities) run by the chat core's machinery."""
        await self._respond(
            interaction, lambda ctx: self.core.run(ctx, work, handler), public=public
        )

    async def open_key_form(self, interaction: Interaction, exchange: str) -> None:
        """Answer with the key form at once (a modal must be the first answer)."""
        t = Translator(str(interaction.locale))
        try:
            spec = supported_exchange(exchange)
        except UserError:  # unknown exchange: let the core say so, in the user's language
            await self._respond(
                interaction,
                lambda ctx: self.core.run(ctx, "connect:form", _refuse_exchange, [exchange]),
            )
            return
        form = KeyForm(spec.id, spec.title, t, self.view_timeout)
        if spec.needs_passphrase:
            form.ask_passphrase(t)
        try:
            await interaction.response.send_modal(form)
        except discord.HTTPException:
            log.warning("discord.modal_failed exchange=%s", spec.id, exc_info=True)

    async def _respond(
        self,
        interaction: Interaction,
        produce: Produce,
        *,
        public: bool = False,
        pressed: bool = False,
    ) -> None:
        """Acknowledge now, let the core work, answer with followups; never leave it unanswered."""
        in_server = interaction.guild_id is not None
        hidden = in_server and not public
        progress = InteractionProgress(self, interaction, hidden=hidden, pressed=pressed)
        try:
            if pressed:
                await interaction.response.defer()  # keeps the pressed message, may edit it
            else:
                await interaction.response.defer(ephemeral=hidden, thinking=True)
            ctx = await self.interaction_context(interaction, progress)
            replies = await produce(ctx)
            notice = self._dms_closed.pop(ctx.chat_id, None) if in_server else None
            if notice is not None:
                replies.append(Reply.text(Translator(notice)("discord.dms_closed")))
            await self._answer(
                interaction, replies, pressed=pressed, public=public, thinking=not progress.answered
            )
        except Exception as exc:
            await self._apologize(interaction, exc)

    async def _answer(
        self,
        interaction: Interaction,
        replies: list[Reply],
        *,
        pressed: bool,
        public: bool,
        thinking: bool = True,
    ) -> None:
        """Followups (the first one replaces "thinking..."), or an edit of the pressed message.

        The core was told a server interaction is private, so its replies are all
        for the user alone there; only a public command (a leaderboard) shows the
        replies the core marks impersonal to everyone, and still hides errors.
        """
        in_server = interaction.guild_id is not None
        deferred_hidden = in_server and not public
        # The deferred "thinking..." message waits for its first reply (unless progress used it).
        thinking = thinking and not pressed
        edited = False
        for reply in replies:
            if is_empty(reply):
                continue
            view = render_view(reply, timeout=self.view_timeout)
            message: discord.InteractionMessage | discord.WebhookMessage
            if pressed and reply.edit and not edited:
                edited = True
                message = await interaction.edit_original_response(
                    embeds=message_kwargs(reply, None)["embeds"],
                    attachments=render_files(reply),
                    view=view,
                )
            else:
                hidden = in_server and (reply.personal or reply.private or not public)
                if thinking and hidden != deferred_hidden:
                    # The first followup would take the thinking message's visibility.
                    await interaction.delete_original_response()
                    thinking = False
                message = await interaction.followup.send(
                    wait=True, ephemeral=hidden, **message_kwargs(reply, view)
                )
                thinking = False
            self._track(message, view)
        if thinking:
            await interaction.delete_original_response()  # nothing to say

    async def _apologize(self, interaction: Interaction, error: BaseException) -> None:
        """A bug: logged with a trace id, and the user gets a short apology quoting it."""
        trace = uuid.uuid4().hex[:8]
        log.error("discord.error trace=%s type=%s", trace, interaction.type, exc_info=error)
        text = Translator(str(interaction.locale))("error.internal", trace=trace)
        with contextlib.suppress(discord.HTTPException):
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=interaction.guild_id is not None)
            else:
                await interaction.response.send_message(text, ephemeral=True)

    async def _on_command_error(
        self, interaction: Interaction, error: app_commands.AppCommandError
    ) -> None:
        # Option conversion failures and the like: logged with a trace id, answered.
        await self._apologize(interaction, error)

    def forget_view(self, message_id: int) -> None:
        """The message's components are gone (replaced by progress): stop its View."""
        previous = self._views.pop(message_id, None)
        if previous is not None:
            previous.stop()

    def _track(
        self,
        message: discord.Message | discord.InteractionMessage | discord.WebhookMessage,
        view: ReplyView | None,
    ) -> None:
        """One live View per message: a new step replaces (and stops) the previous one."""
        previous = self._views.pop(message.id, None)
        if previous is not None and previous is not view:
            previous.stop()
        if view is not None and not view.is_finished():
            view.message = message
            self._views[message.id] = view
        if len(self._views) > 10_000:
            self._views = {k: v for k, v in self._views.items() if not v.is_finished()}

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
                await self.open_key_form(interaction, exchange)
                return
            await self._respond(
                interaction, lambda ctx: self.core.handle_action(ctx, payload), pressed=True
            )
        elif interaction.type is discord.InteractionType.modal_submit:
            custom_id = str(data.get("custom_id", ""))
            if custom_id.startswith(KEY_FORM_PREFIX):
                await self._on_key_form(interaction, custom_id.removeprefix(KEY_FORM_PREFIX), data)

    async def _on_key_form(
        self, interaction: Interaction, exchange: str, data: dict[str, Any]
    ) -> None:
        values = form_values(data)
        passphrase = values.get("passphrase", "").strip()
        secrets = CredentialSecrets(
            api_key=SecretStr(values.get("api_key", "").strip()),
            secret=SecretStr(values.get("secret", "").strip()),
            passphrase=SecretStr(passphrase) if passphrase else None,
        )
        del values, data  # the secrets live on only in ``secrets``
        await self._respond(
            interaction, lambda ctx: self.core.connect_with_secrets(ctx, exchange, secrets)
        )

    # ------------------------------------------------------------- messages

    async def on_message(self, message: discord.Message) -> None:
        """DMs go to the chat core like any chat; in servers it only looks for pasted keys."""
        author = message.author
        if author.bot or message.webhook_id is not None or not message.content:
            return
        try:
            if message.guild is None:
                await self._on_direct_message(message)
            elif not message.content.lstrip().startswith("/"):  # no text commands on Discord
                await self._on_server_message(message)
        except Exception:
            log.exception("discord.message_error channel=%s", message.channel.id)

    async def _on_direct_message(self, message: discord.Message) -> None:
        author = message.author
        self._dm_channels[author.id] = message.channel.id
        ctx = ChatContext(
            platform=Platform.DISCORD,
            platform_user_id=str(author.id),
            chat_id=str(message.channel.id),
            is_private=True,
            display_name=author.display_name,
            command_label=command_label,
        )
        for reply in await self.core.handle_text(ctx, message.content):
            await self.send_reply(message.channel, reply)

    async def _on_server_message(self, message: discord.Message) -> None:
        guild = message.guild
        ctx = ChatContext(
            platform=Platform.DISCORD,
            platform_user_id=str(message.author.id),
            chat_id=str(message.channel.id),
            is_private=False,
            # Messages carry no locale: a warning posted there speaks the server's language.
            client_language=str(guild.preferred_locale) if guild is not None else None,
            display_name=message.author.display_name,
            delete_incoming=partial(_delete, message),
            command_label=command_label,
        )
        for reply in await self.core.handle_text(ctx, message.content):
            if reply.private:
                try:
                    await self.send_reply(message.author, reply)
                except discord.Forbidden:
                    log.info("discord.warning_dm_refused user=%s", message.author.id)
            else:
                await self.send_reply(message.channel, reply)

    async def send_reply(
        self, target: discord.abc.Messageable, reply: Reply
    ) -> discord.Message | None:
        """Send a reply as a new message (a channel, a DM, a user); None when it is empty."""
        if is_empty(reply):
            return None
        view = render_view(reply, timeout=self.view_timeout)
        message = await target.send(**message_kwargs(reply, view))
        self._track(message, view)
        return message

    # ------------------------------------------------------- notifications

    def dms_closed(self, chat_id: str, language: str) -> None:
        """The user's DMs refused a notification: tell them at their next server interaction."""
        self._dms_closed[chat_id] = language

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """Removed from a server: its community channel and opt-ins go too."""
        try:
            await forget_community(self.app, Platform.DISCORD, str(guild.id))
        except Exception:
            log.exception("discord.forget_community_failed guild=%s", guild.id)


async def _delete(message: discord.Message) -> bool:
    """Delete a message holding a secret; False when the bot may not (no Manage Messages)."""
    try:
        await message.delete()
    except discord.HTTPException as exc:
        log.warning("discord.delete_failed channel=%s code=%s", message.channel.id, exc.code)
        return False
    return True


async def _refuse_exchange(inv: Invocation) -> Reply:
    supported_exchange(inv.args[0] if inv.args else "")  # raises the catalog's error
    return Reply.text(inv.t("error.button_expired"))
