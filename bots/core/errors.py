"""A UserError as a reply in the user's language."""

from __future__ import annotations

from bots.core.i18n import Translator
from bots.core.replies import Reply
from robotrader.errors import UserError

# Error arguments that are themselves catalog keys (translated before use).
TRANSLATED_ARGS = {"limit": "limit", "plan": "plan"}


def error_text(t: Translator, exc: UserError) -> str:
    args = dict(exc.args_)
    for name, prefix in TRANSLATED_ARGS.items():
        if name in args:
            args[name] = t(f"{prefix}.{args[name]}")
    return t(f"error.{exc.key}", **args)


def error_reply(t: Translator, exc: UserError) -> Reply:
    """A UserError in the user's language."""
    return Reply.text(error_text(t, exc))
