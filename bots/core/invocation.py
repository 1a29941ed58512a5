"""What a command, button or dialog handler receives."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from bots.core.context import ChatContext
from bots.core.dialogs import Dialog, DialogStore
from robotrader.app import App
from robotrader.i18n import Translator
from robotrader.use_cases.accounts import Account


@dataclass
class Invocation:
    app: App
    ctx: ChatContext
    account: Account
    t: Translator
    args: list[str]
    text: str  # everything after the command name (or the whole message in a dialog)
    dialogs: DialogStore
    dialog: Dialog | None = None
    # Set when the front end is shutting down: handlers that wait (a backtest) stop waiting.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def user_id(self) -> int:
        return self.account.user_id

    def start_dialog(self, name: str, step: str, **data: Any) -> Dialog:
        self.dialog = self.dialogs.start(self.ctx.identity_key, name, step, **data)
        return self.dialog

    def end_dialog(self) -> None:
        self.dialogs.end(self.ctx.identity_key)
        self.dialog = None
