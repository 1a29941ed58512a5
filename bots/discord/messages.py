"""Plain messages: a DM is a chat like any other; in servers only pasted keys are looked for.

There are no text commands in servers (slash commands are); a message there
reaches the chat core so that an API key posted in public is deleted at once and
its owner warned, privately when their DMs allow it.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING

import discord

from bots.core.context import ChatContext
from bots.discord.commands import command_label
from robotrader.enums import Platform

if TYPE_CHECKING:
    from bots.discord.client import DiscordFrontEnd

log = logging.getLogger(__name__)


async def on_direct_message(client: DiscordFrontEnd, message: discord.Message) -> None:
    author = message.author
    client.dm_channels.remember(author.id, message.channel.id)
    ctx = ChatContext(
        platform=Platform.DISCORD,
        platform_user_id=str(author.id),
        chat_id=str(message.channel.id),
        is_private=True,
        display_name=author.display_name,
        command_label=command_label,
    )
    for reply in await client.core.handle_text(ctx, message.content):
        await client.send_reply(message.channel, reply)


async def on_server_message(client: DiscordFrontEnd, message: discord.Message) -> None:
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
    for reply in await client.core.handle_text(ctx, message.content):
        if reply.private:
            try:
                await client.send_reply(message.author, reply)
            except discord.Forbidden:
                log.info("discord.warning_dm_refused user=%s", message.author.id)
        else:
            await client.send_reply(message.channel, reply)


async def _delete(message: discord.Message) -> bool:
    """Delete a message holding a secret; False when the bot may not (no Manage Messages)."""
    try:
        await message.delete()
    except discord.HTTPException as exc:
        log.warning("discord.delete_failed channel=%s code=%s", message.channel.id, exc.code)
        return False
    return True
