"""/notify on Discord: notifications by DM, or in a server channel the user picked.

The rules live in robotrader.use_cases.notification_channel; these handlers run
inside ChatCore.run (the account, the rate limit, errors in the user's language)
and only render. Who may read and write in a channel is Discord's to say: it is
read here from discord.py's permission cache and handed to the use case.
"""

from __future__ import annotations

import discord

from bots.core.invocation import Invocation
from bots.core.replies import Reply
from bots.discord.community import channel_mention
from robotrader.use_cases.notification_channel import (
    clear_notification_channel,
    notification_target,
    set_notification_channel,
)


def channel_access(
    channel: discord.abc.GuildChannel, user: discord.User | discord.Member
) -> tuple[bool, bool]:
    """(the user can read and write in ``channel``, the bot can post notifications there)."""
    user_can_post = False
    if isinstance(user, discord.Member):
        mine = channel.permissions_for(user)
        user_can_post = mine.view_channel and mine.send_messages
    me = channel.guild.me
    bots = channel.permissions_for(me) if me is not None else discord.Permissions.none()
    # Notifications are embeds: without Embed Links they would arrive empty.
    bot_can_post = bots.view_channel and bots.send_messages and bots.embed_links
    return user_can_post, bot_can_post


async def pick_channel(
    inv: Invocation, *, channel_id: str, guild_id: str, user_can_post: bool, bot_can_post: bool
) -> Reply:
    target = await set_notification_channel(
        inv.app,
        inv.ctx.platform,
        inv.ctx.platform_user_id,
        channel_id,
        guild_id,
        user_can_post=user_can_post,
        bot_can_post=bot_can_post,
    )
    channel = channel_mention(target.channel_id or channel_id)
    return Reply.text(
        inv.t("notify_channel.set", channel=channel),
        inv.t("notify_channel.public_warning", channel=channel),
    )


async def back_to_dm(inv: Invocation) -> Reply:
    await clear_notification_channel(inv.app, inv.ctx.platform, inv.ctx.platform_user_id)
    return Reply.text(inv.t("notify_channel.private"))


async def show_target(inv: Invocation) -> Reply:
    target = await notification_target(inv.app, inv.ctx.platform, inv.ctx.platform_user_id)
    if target.channel_id is None:
        return Reply.text(inv.t("notify_channel.show_private"))
    channel = channel_mention(target.channel_id)
    return Reply.text(
        inv.t("notify_channel.show_channel", channel=channel),
        inv.t("notify_channel.public_warning", channel=channel),
    )
