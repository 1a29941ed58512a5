"""Each Discord user's DM channel with the bot: what the chat core records as their chat."""

from __future__ import annotations

import discord

# Bounded: past this many users the oldest half is forgotten (and asked Discord again).
MAX_REMEMBERED = 200_000


class DmChannels:
    """Discord user id -> DM channel id, learnt from DMs and interactions, else opened once."""

    def __init__(self) -> None:
        self._by_user: dict[int, int] = {}

    def remember(self, user_id: int, channel_id: int) -> None:
        self._by_user[user_id] = channel_id

    async def channel_id(self, user: discord.User | discord.Member) -> int:
        """The user's DM channel with the bot (opened once, then remembered)."""
        known = self._by_user.get(user.id)
        if known is None:
            channel = user.dm_channel or await user.create_dm()
            known = self._by_user[user.id] = channel.id
            if len(self._by_user) > MAX_REMEMBERED:  # forget the oldest half
                for key in list(self._by_user)[: MAX_REMEMBERED // 2]:
                    del self._by_user[key]
        return known
