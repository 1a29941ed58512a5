"""How a user names one of their bots: its id, or its name, never both at once.

An id is ASCII digits in the range every database's integer holds (``str.isdigit()``
also takes '²', '١' or '𝟙', which ``int()`` then refuses; SQLite overflows past 2**63).
A name is anything else, compared without case. A name made only of digits is refused
at creation, so ``/startbot 1`` can only mean the bot whose id is 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func

from db.models import Bot
from robotrader.errors import UserError

MAX_ID = 2**31 - 1  # PostgreSQL's INTEGER; ids never come near it
_ASCII_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class BotRef:
    id: int | None = None
    name: str | None = None  # lower case

    def condition(self) -> ColumnElement[bool]:
        """The WHERE clause that finds this bot (the caller adds its owner)."""
        if self.id is not None:
            return Bot.id == self.id
        return func.lower(Bot.name) == self.name


def parse_bot_ref(ref: str | int) -> BotRef:
    """The bot ``ref`` names; UserError ``bot_not_found`` when it can name none."""
    if isinstance(ref, int):
        if not 1 <= ref <= MAX_ID:
            raise UserError("bot_not_found", bot=str(ref)[:32])
        return BotRef(id=ref)
    text = ref.strip()
    if _ASCII_DIGITS.fullmatch(text):
        if len(text) > len(str(MAX_ID)) or not 1 <= int(text) <= MAX_ID:
            raise UserError("bot_not_found", bot=text[:32])
        return BotRef(id=int(text))
    if not text:
        raise UserError("bot_not_found", bot="")
    return BotRef(name=text.lower())


def check_bot_name(name: str) -> None:
    """Refuse a name that reads as a number (in any script): it would shadow an id."""
    if name.strip().isnumeric():
        raise UserError("bot_name_is_number", name=name.strip()[:32])
