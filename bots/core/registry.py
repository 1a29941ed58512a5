"""The command registry: name, help, where it may run, and its handler — declared once.

Like Freqtrade's ``@authorized_only``: who may run a command and in which kind
of chat is stated at the declaration, never re-checked by hand in handlers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from bots.core.invocation import Invocation
    from bots.core.replies import Reply

Handler = Callable[["Invocation"], Awaitable["Reply | list[Reply]"]]
H = TypeVar("H", bound=Callable[..., Awaitable[Any]])


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    help_key: str  # catalog key of the one-line description
    usage_key: str | None = None  # catalog key of the usage line, shown on bad arguments
    private_only: bool = False  # personal data or secrets: never answered in a group
    menu: bool = True  # listed in the platform's command menu
    args: tuple[str, ...] = field(default_factory=tuple)  # names, for help


COMMANDS: dict[str, Command] = {}
ACTIONS: dict[str, Handler] = {}
DIALOGS: dict[str, Handler] = {}


def command(
    name: str,
    *,
    help_key: str | None = None,
    usage_key: str | None = None,
    private_only: bool = False,
    menu: bool = True,
    args: tuple[str, ...] = (),
) -> Callable[[H], H]:
    def register(handler: H) -> H:
        if name in COMMANDS:
            raise ValueError(f"command {name} declared twice")
        COMMANDS[name] = Command(
            name, handler, help_key or f"help.{name}", usage_key, private_only, menu, args
        )
        return handler

    return register


def action(verb: str) -> Callable[[H], H]:
    """A button's handler; the invocation's ``args`` are the payload's arguments."""

    def register(handler: H) -> H:
        if verb in ACTIONS:
            raise ValueError(f"action {verb} declared twice")
        ACTIONS[verb] = handler
        return handler

    return register


def dialog(name: str) -> Callable[[H], H]:
    """The handler of free text typed while dialog ``name`` waits for an answer."""

    def register(handler: H) -> H:
        DIALOGS[name] = handler
        return handler

    return register
