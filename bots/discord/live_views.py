"""The Views alive on sent messages: one per message, stopped when a new step replaces it.

A View only makes buttons feel instant while the process lives; presses are
answered from their custom_id either way, so forgetting one loses nothing.
"""

from __future__ import annotations

import discord

from bots.discord.rendering import ReplyView

# Past this many, finished Views are dropped.
MAX_TRACKED = 10_000


class LiveViews:
    def __init__(self) -> None:
        self.by_message: dict[int, ReplyView] = {}  # message id -> its live View

    def forget(self, message_id: int) -> None:
        """The message's components are gone (replaced by progress): stop its View."""
        previous = self.by_message.pop(message_id, None)
        if previous is not None:
            previous.stop()

    def track(
        self,
        message: discord.Message | discord.InteractionMessage | discord.WebhookMessage,
        view: ReplyView | None,
    ) -> None:
        """One live View per message: a new step replaces (and stops) the previous one."""
        previous = self.by_message.pop(message.id, None)
        if previous is not None and previous is not view:
            previous.stop()
        if view is not None and not view.is_finished():
            view.message = message
            self.by_message[message.id] = view
        if len(self.by_message) > MAX_TRACKED:
            self.by_message = {k: v for k, v in self.by_message.items() if not v.is_finished()}
