"""Multi-step conversations (/connect, /newbot): where each user is, kept in memory.

A dialog expires after ten idle minutes. Kept per chat process: a restart ends
open dialogs, and the user simply starts again (nothing half-saved: each dialog
writes only at its final step).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TTL_SECONDS = 600


@dataclass
class Dialog:
    name: str
    step: str
    data: dict[str, Any] = field(default_factory=dict)
    expires: float = 0.0


class DialogStore:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._dialogs: dict[tuple[str, str], Dialog] = {}

    def get(self, key: tuple[str, str]) -> Dialog | None:
        dialog = self._dialogs.get(key)
        if dialog is not None and dialog.expires < self.clock():
            self._dialogs.pop(key, None)
            return None
        return dialog

    def start(self, key: tuple[str, str], name: str, step: str, **data: Any) -> Dialog:
        dialog = Dialog(name, step, dict(data), self.clock() + TTL_SECONDS)
        self._dialogs[key] = dialog
        return dialog

    def touch(self, key: tuple[str, str], dialog: Dialog) -> None:
        dialog.expires = self.clock() + TTL_SECONDS
        self._dialogs[key] = dialog

    def end(self, key: tuple[str, str]) -> None:
        self._dialogs.pop(key, None)
