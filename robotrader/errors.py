"""The one error type users read: a message key and its arguments.

Front ends turn it into the user's language with the message catalog; any other
exception is a bug, logged with a trace id.
"""

from __future__ import annotations

from typing import Any


class UserError(Exception):
    """Something the user can fix or should know; ``key`` names a catalog message."""

    def __init__(self, key: str, **args: Any) -> None:
        super().__init__(key)
        self.key = key
        self.args_ = args

    def __repr__(self) -> str:
        return f"UserError({self.key!r}, {self.args_!r})"
