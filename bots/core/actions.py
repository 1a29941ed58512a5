"""Button payloads: short, versioned strings within Telegram's 64-byte callback limit.

``v1:<verb>:<arg>:<arg>``. A payload of an older version or unknown verb is
answered with "this button expired" rather than guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass

VERSION = "v1"
MAX_BYTES = 64


@dataclass(frozen=True)
class Action:
    verb: str
    args: tuple[str, ...] = ()


def encode(verb: str, *args: object) -> str:
    payload = ":".join([VERSION, verb, *(str(a) for a in args)])
    if len(payload.encode()) > MAX_BYTES:
        raise ValueError(f"button payload too long: {payload!r}")
    return payload


def decode(payload: str) -> Action | None:
    parts = payload.split(":")
    if len(parts) < 2 or parts[0] != VERSION or not parts[1]:
        return None
    return Action(parts[1], tuple(parts[2:]))
