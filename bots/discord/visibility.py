"""Who sees an answer to an interaction.

In a DM everything is seen by the user alone anyway. In a server, what concerns
the user's own account is ephemeral; only a public command (a leaderboard)
shows the replies the chat core marks impersonal to everyone, and errors stay
hidden even then.
"""

from __future__ import annotations

from bots.core.replies import Reply
from bots.discord.commands import Interaction


def in_server(interaction: Interaction) -> bool:
    return interaction.guild_id is not None


def thinking_hidden(interaction: Interaction, *, public: bool) -> bool:
    """Whether the deferred "thinking..." message (and the progress it becomes) is ephemeral."""
    return in_server(interaction) and not public


def reply_hidden(interaction: Interaction, reply: Reply, *, public: bool) -> bool:
    """Whether one reply is sent as an ephemeral followup."""
    return in_server(interaction) and (reply.personal or reply.private or not public)
