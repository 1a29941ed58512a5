"""Where the web app hands platform updates that arrive by webhook (Telegram's webhook mode).

A chat front end running in the same process registers a receiver under its
platform's name; web/ looks it up and awaits it. Neither imports the other:
the receiver is a plain callable taking the update as decoded JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

UpdateReceiver = Callable[[dict[str, Any]], Awaitable[None]]


class InvalidUpdate(ValueError):
    """The body is JSON but not an update of the platform (the web app answers 400)."""


class UpdateReceivers:
    def __init__(self) -> None:
        self._receivers: dict[str, UpdateReceiver] = {}

    def register(self, platform: str, receiver: UpdateReceiver) -> None:
        self._receivers[platform] = receiver

    def unregister(self, platform: str) -> None:
        self._receivers.pop(platform, None)

    def get(self, platform: str) -> UpdateReceiver | None:
        return self._receivers.get(platform)
