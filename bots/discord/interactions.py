"""Answering an interaction: acknowledge at once, let the chat core work, then follow up.

Every interaction is acknowledged first (deferred, well within Discord's 3
seconds, because the chat core touches the database), then answered with
followups, or, after a button press, by editing the pressed message. A server
interaction is as private as a DM (see visibility.py), so the chat core is told
the chat is private and personal commands work there too. Nothing is ever left
unanswered: a bug gets an apology quoting a trace id.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord

from bots.core.context import ChatContext
from bots.core.replies import Reply
from bots.discord.commands import Interaction, command_label
from bots.discord.rendering import (
    is_empty,
    message_kwargs,
    render_embeds,
    render_files,
    render_view,
)
from bots.discord.visibility import in_server, reply_hidden, thinking_hidden
from robotrader.enums import Platform
from robotrader.i18n import Translator

if TYPE_CHECKING:
    from bots.discord.client import DiscordFrontEnd

log = logging.getLogger(__name__)

Produce = Callable[[ChatContext], Awaitable[list[Reply]]]


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
                self.client.views.forget(self.message.id)
            elif self.message is None:
                self.message = await self.interaction.followup.send(
                    wait=True, ephemeral=self.hidden, embeds=embeds
                )
            else:
                self.message = await self.message.edit(embeds=embeds)
        except discord.HTTPException as exc:
            log.warning("discord.progress_failed status=%s", exc.status)


async def interaction_context(
    client: DiscordFrontEnd, interaction: Interaction, progress: InteractionProgress | None = None
) -> ChatContext:
    """Who is talking: the user, with their DM channel as the chat the core records."""
    user = interaction.user
    if interaction.guild_id is None and interaction.channel_id is not None:
        client.dm_channels.remember(user.id, interaction.channel_id)
    dm = await client.dm_channels.channel_id(user)
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


async def respond(
    client: DiscordFrontEnd,
    interaction: Interaction,
    produce: Produce,
    *,
    public: bool = False,
    pressed: bool = False,
) -> None:
    """Acknowledge now, let the core work, answer with followups; never leave it unanswered."""
    hidden = thinking_hidden(interaction, public=public)
    progress = InteractionProgress(client, interaction, hidden=hidden, pressed=pressed)
    try:
        if pressed:
            await interaction.response.defer()  # keeps the pressed message, may edit it
        else:
            await interaction.response.defer(ephemeral=hidden, thinking=True)
        ctx = await interaction_context(client, interaction, progress)
        replies = await produce(ctx)
        notice = client.closed_dms.notice(ctx.chat_id) if in_server(interaction) else None
        if notice is not None:
            replies.append(notice)
        await answer(
            client,
            interaction,
            replies,
            pressed=pressed,
            public=public,
            thinking=not progress.answered,
        )
    except Exception as exc:
        await apologize(interaction, exc)


async def answer(
    client: DiscordFrontEnd,
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
    deferred_hidden = thinking_hidden(interaction, public=public)
    # The deferred "thinking..." message waits for its first reply (unless progress used it).
    thinking = thinking and not pressed
    edited = False
    for reply in replies:
        if is_empty(reply):
            continue
        view = render_view(reply, timeout=client.view_timeout)
        message: discord.InteractionMessage | discord.WebhookMessage
        if pressed and reply.edit and not edited:
            edited = True
            message = await interaction.edit_original_response(
                embeds=message_kwargs(reply, None)["embeds"],
                attachments=render_files(reply),
                view=view,
            )
        else:
            hidden = reply_hidden(interaction, reply, public=public)
            if thinking and hidden != deferred_hidden:
                # The first followup would take the thinking message's visibility.
                await interaction.delete_original_response()
                thinking = False
            message = await interaction.followup.send(
                wait=True, ephemeral=hidden, **message_kwargs(reply, view)
            )
            thinking = False
        client.views.track(message, view)
    if thinking:
        await interaction.delete_original_response()  # nothing to say


async def apologize(interaction: Interaction, error: BaseException) -> None:
    """A bug: logged with a trace id, and the user gets a short apology quoting it."""
    trace = uuid.uuid4().hex[:8]
    log.error("discord.error trace=%s type=%s", trace, interaction.type, exc_info=error)
    text = Translator(str(interaction.locale))("error.internal", trace=trace)
    with contextlib.suppress(discord.HTTPException):
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=interaction.guild_id is not None)
        else:
            await interaction.response.send_message(text, ephemeral=True)
