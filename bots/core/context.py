"""Who is talking, from where: what a front end knows about an incoming event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from robotrader.enums import Platform

if TYPE_CHECKING:
    from bots.core.replies import Reply

# Shows a reply as one message that each later call edits in place (a progress bar).
Progress = Callable[["Reply"], Awaitable[None]]


def _no_link(payload: str) -> str | None:
    return None


def _slash_command(name: str, language: str) -> str | None:
    return f"/{name}"


async def _cannot_delete() -> bool:
    return False


@dataclass(frozen=True)
class ChatContext:
    platform: Platform
    platform_user_id: str
    chat_id: str
    is_private: bool
    client_language: str | None = None
    display_name: str | None = None
    # A link that opens the private chat with the bot (Telegram deep link), or None.
    private_link: Callable[[str], str | None] = field(default=_no_link, compare=False)
    # Delete the message being handled, now (it holds a secret). True if it was deleted.
    delete_incoming: Callable[[], Awaitable[bool]] = field(default=_cannot_delete, compare=False)
    # How users type a core command here, in a language (Discord: "/bot create" for
    # "newbot"); None when the platform has no such command.
    command_label: Callable[[str, str], str | None] = field(default=_slash_command, compare=False)
    # Long work (a backtest) shows its progress through this: the first call sends a
    # message, each later one edits that same message. None: the front end cannot, and
    # the work reports back later instead (a notification).
    progress: Progress | None = field(default=None, compare=False)

    @property
    def identity_key(self) -> tuple[str, str]:
        return (str(self.platform), self.platform_user_id)
