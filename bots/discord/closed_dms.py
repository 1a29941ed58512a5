"""Users whose DMs refused a notification, to be told at their next server interaction.

Discord answers 50007 when a user closed their DMs: the notification is lost to
them, and the only place left to say so is an interaction they start in a server.
"""

from __future__ import annotations

from bots.core.replies import Reply
from robotrader.i18n import Translator


class ClosedDms:
    def __init__(self) -> None:
        self._language: dict[str, str] = {}  # DM channel id -> the user's language

    def remember(self, chat_id: str, language: str) -> None:
        """The user's DMs refused a notification: tell them at their next server interaction."""
        self._language[chat_id] = language

    def notice(self, chat_id: str) -> Reply | None:
        """The one-time notice for this DM channel, if its DMs refused one; then forgotten."""
        language = self._language.pop(chat_id, None)
        if language is None:
            return None
        return Reply.text(Translator(language)("discord.dms_closed"))
