"""A UserError as a reply in the user's language."""

from __future__ import annotations

from bots.core.replies import Reply
from robotrader.errors import UserError
from robotrader.i18n import Translator, error_text


def error_reply(t: Translator, exc: UserError) -> Reply:
    """A UserError in the user's language."""
    return Reply.text(error_text(t, exc))
