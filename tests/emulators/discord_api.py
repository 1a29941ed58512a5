"""A local Discord API emulator: REST v10 and the gateway websocket, on 127.0.0.1.

The real, unchanged discord.py client runs against it. Point the library at it
before logging in and take the gateway URL from the API in ``setup_hook``::

    with DiscordEmulator(token="t") as emu:
        discord.http.Route.BASE = emu.api_base          # http://127.0.0.1:PORT/api/v10
        guild = emu.add_guild("Trading", owner_id=10)
        emu.add_member(guild.id, 11, "alice", permissions=Perm.MANAGE_GUILD)
        ...                                             # bot.login / bot.connect
        interaction = emu.invoke(11, "bot create", {"name": "alpha"}, guild_id=guild.id)
        record = await emu.wait_for_async(lambda: emu.responses(interaction).callback_type)

What is modelled, as Discord does it (see the developer documentation):

* REST under ``/api/v10`` with ``Authorization: Bot <token>``; JSON answers carry
  exactly ``Content-Type: application/json``; errors are ``{"message", "code"}``
  (``"errors"`` for 50035 Invalid Form Body).
* Rate limits: a global 50 requests/s per bot (documented; interaction and
  webhook-token routes are exempt, as documented) and per-route buckets
  announced in ``X-RateLimit-*`` headers, keyed by the route's top-level
  resource (channel, guild, webhook+token). A 429 carries ``Via: 1.1 google``,
  ``Retry-After``, ``X-RateLimit-Scope`` and ``{"message", "retry_after", "global"}``.
* The gateway: HELLO, IDENTIFY (token, intents, privileged intents), READY with
  unavailable guilds then one GUILD_CREATE each, heartbeats, RESUME with replay,
  sequence numbers, ``zlib-stream`` (and ``zstd-stream`` when a zstd module is
  importable), RECONNECT (op 7), INVALID_SESSION (op 9) for an unknown resume,
  REQUEST_GUILD_MEMBERS, and the close codes 4001-4005, 4010, 4012-4014.
* Interactions: application commands (with ``resolved``), component presses and
  modal submits, with callbacks (3 s deadline, one acknowledgement), followups
  and ``@original`` for 15 minutes.

The "user side" (``add_guild``, ``invoke``, ``press``, ``post_message``...) is
called from the test's thread; every method is thread-safe. Everything recorded
(``responses``, ``messages``, ``dm_messages``, ``deleted``, ``commands``) is
returned as deep copies.

Run on its own with ``python -m tests.emulators.discord_api --port N --token T``;
an out-of-process test drives it through ``POST /_emulator/call``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import enum
import functools
import hashlib
import json
import math
import operator
import re
import secrets
import signal
import threading
import time
import unicodedata
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import BodyPartReader, WSMsgType, web

from tests.emulators.server import ThreadedServer

try:  # discord.py asks for zstd-stream when one of these is importable
    from zstandard import ZstdCompressor as _ZstdCompressor

    _ZSTD = "zstandard"
except ImportError:  # pragma: no cover - depends on the environment
    try:
        from compression.zstd import ZstdCompressor as _ZstdCompressor

        _ZSTD = "compression.zstd"
    except ImportError:
        _ZstdCompressor = None
        _ZSTD = ""

T = TypeVar("T")

API_VERSION = 10
API_PREFIX = f"/api/v{API_VERSION}"
DISCORD_EPOCH_MS = 1_420_070_400_000
VIA_HEADER = "1.1 google"

MAX_MESSAGE_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
MAX_TEXT_INPUT = 4000
DEFAULT_ATTACHMENT_LIMIT = 10 * 1024 * 1024  # 10 MiB for servers without boosts

LOCALES = frozenset(
    {"id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu", "nl"}
    | {"no", "pl", "pt-BR", "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru", "uk", "hi"}
    | {"th", "zh-CN", "ja", "zh-TW", "ko"}
)
"""The locales Discord accepts in name/description localizations."""


class Perm(enum.IntFlag):
    """Discord permission bits."""

    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_AUDIT_LOG = 1 << 7
    PRIORITY_SPEAKER = 1 << 8
    STREAM = 1 << 9
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    SEND_TTS_MESSAGES = 1 << 12
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    VIEW_GUILD_INSIGHTS = 1 << 19
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    MUTE_MEMBERS = 1 << 22
    DEAFEN_MEMBERS = 1 << 23
    MOVE_MEMBERS = 1 << 24
    USE_VAD = 1 << 25
    CHANGE_NICKNAME = 1 << 26
    MANAGE_NICKNAMES = 1 << 27
    MANAGE_ROLES = 1 << 28
    MANAGE_WEBHOOKS = 1 << 29
    MANAGE_GUILD_EXPRESSIONS = 1 << 30
    USE_APPLICATION_COMMANDS = 1 << 31
    REQUEST_TO_SPEAK = 1 << 32
    MANAGE_EVENTS = 1 << 33
    MANAGE_THREADS = 1 << 34
    CREATE_PUBLIC_THREADS = 1 << 35
    CREATE_PRIVATE_THREADS = 1 << 36
    USE_EXTERNAL_STICKERS = 1 << 37
    SEND_MESSAGES_IN_THREADS = 1 << 38
    USE_EMBEDDED_ACTIVITIES = 1 << 39
    MODERATE_MEMBERS = 1 << 40
    VIEW_CREATOR_MONETIZATION_ANALYTICS = 1 << 41
    USE_SOUNDBOARD = 1 << 42
    CREATE_GUILD_EXPRESSIONS = 1 << 43
    CREATE_EVENTS = 1 << 44
    USE_EXTERNAL_SOUNDS = 1 << 45
    SEND_VOICE_MESSAGES = 1 << 46
    SEND_POLLS = 1 << 49
    USE_EXTERNAL_APPS = 1 << 50
    PIN_MESSAGES = 1 << 51
    BYPASS_SLOWMODE = 1 << 52


ALL_PERMISSIONS = functools.reduce(operator.or_, (int(p) for p in Perm), 0)

DEFAULT_EVERYONE_PERMISSIONS = int(
    Perm.CREATE_INSTANT_INVITE
    | Perm.ADD_REACTIONS
    | Perm.STREAM
    | Perm.VIEW_CHANNEL
    | Perm.SEND_MESSAGES
    | Perm.EMBED_LINKS
    | Perm.ATTACH_FILES
    | Perm.READ_MESSAGE_HISTORY
    | Perm.USE_EXTERNAL_EMOJIS
    | Perm.CONNECT
    | Perm.SPEAK
    | Perm.USE_VAD
    | Perm.CHANGE_NICKNAME
    | Perm.USE_APPLICATION_COMMANDS
    | Perm.CREATE_PUBLIC_THREADS
    | Perm.SEND_MESSAGES_IN_THREADS
    | Perm.SEND_VOICE_MESSAGES
    | Perm.SEND_POLLS
    | Perm.USE_EXTERNAL_APPS
)
"""What a new server's @everyone role holds."""

DEFAULT_BOT_PERMISSIONS = int(
    Perm.VIEW_CHANNEL
    | Perm.SEND_MESSAGES
    | Perm.EMBED_LINKS
    | Perm.ATTACH_FILES
    | Perm.READ_MESSAGE_HISTORY
    | Perm.USE_APPLICATION_COMMANDS
)
"""What the bot's own (managed) role holds unless `set_bot_permissions` says otherwise."""

DM_PERMISSIONS = int(
    Perm.VIEW_CHANNEL
    | Perm.SEND_MESSAGES
    | Perm.EMBED_LINKS
    | Perm.ATTACH_FILES
    | Perm.READ_MESSAGE_HISTORY
    | Perm.ADD_REACTIONS
    | Perm.USE_EXTERNAL_EMOJIS
    | Perm.USE_APPLICATION_COMMANDS
    | Perm.SEND_VOICE_MESSAGES
    | Perm.SEND_POLLS
    | Perm.USE_EXTERNAL_APPS
)


class Intent(enum.IntFlag):
    """Gateway intent bits."""

    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_MODERATION = 1 << 2
    GUILD_EXPRESSIONS = 1 << 3
    GUILD_INTEGRATIONS = 1 << 4
    GUILD_WEBHOOKS = 1 << 5
    GUILD_INVITES = 1 << 6
    GUILD_VOICE_STATES = 1 << 7
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    GUILD_MESSAGE_REACTIONS = 1 << 10
    GUILD_MESSAGE_TYPING = 1 << 11
    DIRECT_MESSAGES = 1 << 12
    DIRECT_MESSAGE_REACTIONS = 1 << 13
    DIRECT_MESSAGE_TYPING = 1 << 14
    MESSAGE_CONTENT = 1 << 15
    GUILD_SCHEDULED_EVENTS = 1 << 16
    AUTO_MODERATION_CONFIGURATION = 1 << 20
    AUTO_MODERATION_EXECUTION = 1 << 21
    GUILD_MESSAGE_POLLS = 1 << 24
    DIRECT_MESSAGE_POLLS = 1 << 25


VALID_INTENTS = functools.reduce(operator.or_, (int(i) for i in Intent), 0)
PRIVILEGED_INTENTS = int(Intent.GUILD_MEMBERS | Intent.GUILD_PRESENCES | Intent.MESSAGE_CONTENT)

# Message flags
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_IS_COMPONENTS_V2 = 1 << 15

# Channel types
CHANNEL_TEXT = 0
CHANNEL_DM = 1
CHANNEL_VOICE = 2
CHANNEL_CATEGORY = 4

# Interaction types and callback types
INTERACTION_APPLICATION_COMMAND = 2
INTERACTION_COMPONENT = 3
INTERACTION_MODAL_SUBMIT = 5
CALLBACK_PONG = 1
CALLBACK_MESSAGE = 4
CALLBACK_DEFERRED_MESSAGE = 5
CALLBACK_DEFERRED_UPDATE = 6
CALLBACK_UPDATE_MESSAGE = 7
CALLBACK_MODAL = 9

SELECT_TYPES = frozenset({3, 5, 6, 7, 8})


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


class DiscordHTTPError(Exception):
    """An error answer of the REST API, as Discord words it."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        errors: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        """The JSON body Discord sends for this error."""
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


_UNKNOWN: dict[str, tuple[int, str]] = {
    "channel": (10003, "Unknown Channel"),
    "guild": (10004, "Unknown Guild"),
    "member": (10007, "Unknown Member"),
    "message": (10008, "Unknown Message"),
    "role": (10011, "Unknown Role"),
    "user": (10013, "Unknown User"),
    "webhook": (10015, "Unknown Webhook"),
    "interaction": (10062, "Unknown interaction"),
    "command": (10063, "Unknown application command"),
}


def _unknown(kind: str) -> DiscordHTTPError:
    code, message = _UNKNOWN[kind]
    return DiscordHTTPError(404, code, message)


def _missing_access() -> DiscordHTTPError:
    return DiscordHTTPError(403, 50001, "Missing Access")


def _missing_permissions() -> DiscordHTTPError:
    return DiscordHTTPError(403, 50013, "Missing Permissions")


class _FormErrors:
    """Collects field errors into Discord's nested 50035 ``errors`` object."""

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}

    def add(self, path: Sequence[str | int], code: str, message: str) -> None:
        node = self.tree
        for part in path:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def length(self, path: Sequence[str | int], value: Any, low: int, high: int) -> None:
        if not isinstance(value, str):
            self.add(path, "BASE_TYPE_STRING", "Must be a string.")
        elif low == 0 and len(value) > high:
            self.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {high} or fewer in length.")
        elif not low <= len(value) <= high:
            self.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")

    def raise_if_any(self) -> None:
        if self.tree:
            raise DiscordHTTPError(400, 50035, "Invalid Form Body", errors=self.tree)


class InvocationRefused(Exception):
    """The Discord client would not send this interaction (the user cannot do it).

    ``reason`` is one of: unknown_user, unknown_channel, unknown_guild,
    not_a_member, missing_permissions, unknown_command, wrong_context,
    invalid_options, unknown_message, unknown_component, component_disabled,
    not_visible, invalid_values, no_modal, modal_already_submitted, bot_offline.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# ---------------------------------------------------------------------------
# Entities
# ---------------------------------------------------------------------------


def _iso_now() -> str:
    return datetime.now(UTC).isoformat()


def _perm_value(value: Any) -> int:
    """An int from an int, a `Perm`, a ``discord.Permissions`` or a bit string."""
    if value is None:
        return 0
    if hasattr(value, "value") and not isinstance(value, enum.Enum):
        return int(value.value)
    return int(value)


def _snowflake_of(value: Any) -> int:
    """An id from an int, a numeric string, an object with ``id`` or a payload dict."""
    if isinstance(value, Mapping):
        return int(value["id"])
    if hasattr(value, "id"):
        return int(value.id)
    return int(value)


@dataclass
class EmuUser:
    """A Discord user (a human, or the bot itself)."""

    id: int
    name: str
    global_name: str | None = None
    bot: bool = False
    dms_open: bool = True
    locale: str = "pt-BR"

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "username": self.name,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "collectibles": None,
            "primary_guild": None,
        }
        if self.bot:
            data["bot"] = True
        return data


@dataclass
class EmuRole:
    """A guild role; the @everyone role's id is the guild's id."""

    id: int
    guild_id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False
    bot_id: int | None = None

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": False,
            "flags": 0,
        }
        if self.bot_id is not None:
            data["tags"] = {"bot_id": str(self.bot_id)}
        return data


@dataclass
class EmuMember:
    """A user's membership of a guild."""

    guild_id: int
    user_id: int
    nick: str | None = None
    role_ids: list[int] = field(default_factory=list)
    joined_at: str = field(default_factory=_iso_now)

    def payload(self, user: EmuUser | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "roles": [str(r) for r in self.role_ids],
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if user is not None:
            data["user"] = user.payload()
        return data


@dataclass
class EmuChannel:
    """A guild channel or a DM channel between the bot and one user."""

    id: int
    type: int
    name: str | None
    guild_id: int | None = None
    position: int = 0
    parent_id: int | None = None
    topic: str | None = None
    permission_overwrites: list[dict[str, Any]] = field(default_factory=list)
    recipient_id: int | None = None
    last_message_id: int | None = None
    deleted: bool = False  # kept for its messages; the API answers 10003 Unknown Channel

    @property
    def is_dm(self) -> bool:
        return self.type == CHANNEL_DM


@dataclass
class EmuGuild:
    """A guild (server) the bot is in."""

    id: int
    name: str
    owner_id: int
    preferred_locale: str = "en-US"
    roles: dict[int, EmuRole] = field(default_factory=dict)
    channel_ids: list[int] = field(default_factory=list)
    members: dict[int, EmuMember] = field(default_factory=dict)
    bot_role_id: int = 0
    system_channel_id: int | None = None
    joined_at: str = field(default_factory=_iso_now)


@dataclass
class EmuInteraction:
    """An interaction the emulator sent to the bot (a slash command, a press, a modal submit)."""

    id: int
    token: str
    type: int
    user_id: int
    guild_id: int | None
    channel_id: int
    locale: str
    payload: dict[str, Any]
    created_at: float
    message_id: int | None = None
    source_interaction_id: int | None = None


@dataclass
class InteractionRecord:
    """Everything the bot did with one interaction.

    ``callback_type``/``callback_data`` are the first (accepted) callback;
    ``original`` is the current state of the response message (``@original``);
    ``followups`` the messages created through the webhook; ``edits`` each
    PATCH of a webhook message as ``{"message_id", "payload"}``; ``rejected``
    every refused call as ``{"route", "status", "code", "message"}``.
    """

    interaction_id: int
    interaction_type: int
    user_id: int
    callback_type: int | None = None
    callback_data: dict[str, Any] | None = None
    callback_delay: float | None = None
    original_message_id: int | None = None
    original: dict[str, Any] | None = None
    followups: list[dict[str, Any]] = field(default_factory=list)
    edits: list[dict[str, Any]] = field(default_factory=list)
    deleted_message_ids: list[int] = field(default_factory=list)
    modal: dict[str, Any] | None = None
    modal_submitted: bool = False
    rejected: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ephemeral(self) -> bool:
        """Whether the callback asked for an ephemeral message (flags 64)."""
        flags = int((self.callback_data or {}).get("flags") or 0)
        return bool(flags & FLAG_EPHEMERAL)

    @property
    def content(self) -> str | None:
        """The response message's current content, if there is one."""
        return None if self.original is None else self.original.get("content")


@dataclass(frozen=True)
class RouteLimit:
    """A per-route bucket: ``limit`` requests each ``per`` seconds."""

    limit: int
    per: float


# Per-route buckets. "observed" values are what Discord announces in its
# X-RateLimit-* headers for these routes (they are not in the documentation,
# which tells apps to read the headers); the others are this emulator's choice.
DEFAULT_ROUTE_LIMITS: dict[str, RouteLimit] = {
    "POST /channels/{channel_id}/messages": RouteLimit(5, 5.0),  # observed
    "PATCH /channels/{channel_id}/messages/{message_id}": RouteLimit(5, 5.0),  # observed
    "DELETE /channels/{channel_id}/messages/{message_id}": RouteLimit(5, 1.0),  # observed
    "POST /webhooks/{webhook_id}/{webhook_token}": RouteLimit(5, 2.0),  # observed
    "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}": RouteLimit(5, 2.0),
    "DELETE /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}": RouteLimit(5, 2.0),
    "POST /users/@me/channels": RouteLimit(5, 5.0),
    "PUT /applications/{application_id}/commands": RouteLimit(10, 20.0),
    "PUT /applications/{application_id}/guilds/{guild_id}/commands": RouteLimit(10, 20.0),
}
DEFAULT_ROUTE_LIMIT = RouteLimit(10, 1.0)
"""Buckets for routes not listed above (an emulator choice)."""


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


class _Snowflakes:
    """Strictly increasing snowflakes carrying the current time."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            value = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
            if value <= self._last:
                value = self._last + 1
            self._last = value
            return value


def _json_response(
    status: int, body: Any, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON answer whose Content-Type is exactly ``application/json``."""
    all_headers = {"Content-Type": "application/json"}
    if headers:
        all_headers.update(headers)
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return web.Response(status=status, body=data, headers=all_headers)


def _bucket_hash(route_key: str) -> str:
    return hashlib.blake2b(route_key.encode(), digest_size=16).hexdigest()


def _walk_components(components: Sequence[Any] | None) -> Iterator[dict[str, Any]]:
    """Every component in a tree (action rows, containers, sections, labels)."""
    for component in components or ():
        if not isinstance(component, dict):
            continue
        yield component
        yield from _walk_components(component.get("components"))
        for key in ("accessory", "component"):
            child = component.get(key)
            if isinstance(child, dict):
                yield from _walk_components([child])


def _assign_component_ids(components: Sequence[Any] | None) -> None:
    """Give every component without an ``id`` one, as Discord does."""
    all_components = list(_walk_components(components))
    used = {c["id"] for c in all_components if isinstance(c.get("id"), int)}
    next_id = 1
    for component in all_components:
        if not isinstance(component.get("id"), int):
            while next_id in used:
                next_id += 1
            component["id"] = next_id
            used.add(next_id)


def _valid_command_name(name: Any, *, chat_input: bool) -> bool:
    """Discord's rule: ``^[-_\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]{1,32}$``, lowercase."""
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        return False
    if not chat_input:
        return name.strip() == name and bool(name.strip())
    for char in name:
        if char in "-_":
            continue
        category = unicodedata.category(char)
        if category[0] in "LN":
            continue
        if category in ("Mn", "Mc") and unicodedata.name(char, "").startswith(
            ("DEVANAGARI", "THAI")
        ):
            continue
        return False
    return name.lower() == name


@dataclass
class _Upload:
    index: int
    filename: str
    content_type: str
    data: bytes


@dataclass
class _StoredMessage:
    payload: dict[str, Any]
    channel_id: int
    author_id: int
    ephemeral: bool = False
    interaction_id: int | None = None
    deleted: bool = False
    deleted_by: int | None = None


@dataclass
class _Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Callable[[web.Request, dict[str, str]], Awaitable[tuple[int, Any]]]
    auth: bool = True
    global_limited: bool = True
    limited: bool = True

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"


@dataclass
class _Window:
    count: int = 0
    reset_at: float = 0.0


@dataclass
class _InjectedLimit:
    method: str
    template: str
    remaining: int
    retry_after: float
    is_global: bool
    via: bool


class _Compressor:
    """Per-connection transport compression of gateway payloads."""

    def __init__(self, kind: str | None) -> None:
        self.kind = kind
        self._zlib = zlib.compressobj() if kind == "zlib-stream" else None
        self._zstd: Any = None
        if kind == "zstd-stream" and _ZstdCompressor is not None:
            compressor = _ZstdCompressor()
            self._zstd = compressor.compressobj() if _ZSTD == "zstandard" else compressor

    def encode(self, text: str) -> str | bytes:
        data = text.encode()
        if self._zlib is not None:
            # One compression context per connection; every payload ends with
            # the Z_SYNC_FLUSH marker 00 00 ff ff.
            return self._zlib.compress(data) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
        if self._zstd is not None:
            if _ZSTD == "zstandard":
                import zstandard

                flush = self._zstd.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
                return bytes(self._zstd.compress(data)) + bytes(flush)
            return bytes(self._zstd.compress(data, mode=self._zstd.FLUSH_BLOCK))
        return text


class _GatewayConnection:
    """One websocket: a writer task drains the outbox so sends stay ordered."""

    def __init__(self, ws: web.WebSocketResponse, compress: str | None) -> None:
        self.ws = ws
        self.compress = compress
        self.compressor = _Compressor(compress)
        self.outbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.session: _GatewaySession | None = None
        self.writer: asyncio.Task[None] | None = None
        self.closing = False

    def send(self, payload: dict[str, Any]) -> None:
        if not self.closing:
            self.outbox.put_nowait(("send", payload))

    def close(self, code: int, reason: str = "") -> None:
        if not self.closing:
            self.closing = True
            self.outbox.put_nowait(("close", (code, reason)))

    async def run_writer(self) -> None:
        while True:
            kind, item = await self.outbox.get()
            if kind == "stop":
                return
            if kind == "close":
                code, reason = item
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self.ws.close(code=code, message=reason.encode())
                return
            if self.ws.closed:
                continue
            encoded = self.compressor.encode(json.dumps(item, separators=(",", ":")))
            try:
                if isinstance(encoded, bytes):
                    await self.ws.send_bytes(encoded)
                else:
                    await self.ws.send_str(encoded)
            except (ConnectionError, RuntimeError):
                return


@dataclass
class _GatewaySession:
    session_id: str
    intents: int
    shard: tuple[int, int]
    seq: int = 0
    buffer: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=5000))
    connection: _GatewayConnection | None = None

    def dispatch(self, event: str, data: dict[str, Any]) -> None:
        self.seq += 1
        payload = {"op": 0, "t": event, "s": self.seq, "d": data}
        self.buffer.append(payload)
        if self.connection is not None:
            self.connection.send(payload)


# Which intent a dispatched event needs (None: always delivered).
def _event_intent(event: str, in_guild: bool) -> int | None:
    if event in ("GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE") or event.startswith(
        ("GUILD_ROLE_", "CHANNEL_")
    ):
        return int(Intent.GUILDS)
    if event.startswith("GUILD_MEMBER_") and event != "GUILD_MEMBERS_CHUNK":
        return int(Intent.GUILD_MEMBERS)
    if event.startswith("MESSAGE_"):
        return int(Intent.GUILD_MESSAGES if in_guild else Intent.DIRECT_MESSAGES)
    return None


# ---------------------------------------------------------------------------
# The emulator
# ---------------------------------------------------------------------------


class DiscordEmulator(ThreadedServer):
    """Discord's REST API v10 and gateway on 127.0.0.1, plus a user side for tests."""

    def __init__(
        self,
        port: int = 0,
        *,
        token: str = "emulator-bot-token",  # noqa: S107 - a fake token for a fake server
        bot_name: str = "RoboTrader",
        bot_id: int | None = None,
        privileged_intents: int = PRIVILEGED_INTENTS,
        heartbeat_interval_ms: int = 41_250,
        interaction_deadline: float = 3.0,
        token_lifetime: float = 15 * 60.0,
        global_limit: int = 50,
        global_window: float = 1.0,
        route_limits: Mapping[str, RouteLimit] | None = None,
        default_route_limit: RouteLimit = DEFAULT_ROUTE_LIMIT,
        attachment_size_limit: int = DEFAULT_ATTACHMENT_LIMIT,
    ) -> None:
        """Configure the emulator; nothing listens until `start()`.

        ``privileged_intents`` are the intents switched on in the (emulated)
        developer portal; IDENTIFY asking for others is closed with 4014.
        ``route_limits`` override `DEFAULT_ROUTE_LIMITS` by route key
        (``"POST /channels/{channel_id}/messages"``).
        """
        super().__init__(port)
        self.token = token
        self.privileged_intents = privileged_intents
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.interaction_deadline = interaction_deadline
        self.token_lifetime = token_lifetime
        self.global_limit = global_limit
        self.global_window = global_window
        self.default_route_limit = default_route_limit
        self.attachment_size_limit = attachment_size_limit
        self._route_limits: dict[str, RouteLimit] = dict(DEFAULT_ROUTE_LIMITS)
        self._route_limits.update(route_limits or {})

        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._ids = _Snowflakes()

        bot_user_id = bot_id if bot_id is not None else self._ids.next()
        self.bot_user = EmuUser(bot_user_id, bot_name, bot=True, locale="en-US")
        self.application_id = bot_user_id
        self.owner_user = EmuUser(self._ids.next(), "app-owner", locale="en-US")
        self._verify_key = secrets.token_hex(32)

        self._users: dict[int, EmuUser] = {
            self.bot_user.id: self.bot_user,
            self.owner_user.id: self.owner_user,
        }
        self._guilds: dict[int, EmuGuild] = {}
        self._channels: dict[int, EmuChannel] = {}
        self._dm_channels: dict[int, int] = {}  # user id -> DM channel id
        self._messages: dict[int, _StoredMessage] = {}
        self._channel_messages: dict[int, list[int]] = {}
        self._attachments: dict[int, bytes] = {}
        self._global_commands: list[dict[str, Any]] = []
        self._guild_commands: dict[int, list[dict[str, Any]]] = {}
        self._interactions: dict[int, EmuInteraction] = {}
        self._records: dict[int, InteractionRecord] = {}
        self._tokens: dict[str, int] = {}

        self._sessions: dict[str, _GatewaySession] = {}
        self._connections: set[_GatewayConnection] = set()
        self._gateway_log: list[dict[str, Any]] = []
        self._identify_count = 0

        self._windows: dict[str, _Window] = {}
        self._global_window = _Window()
        self._injected: list[_InjectedLimit] = []
        self._stats: dict[str, Any] = {
            "requests": 0,
            "rate_limited": 0,
            "global_rate_limited": 0,
            "invalid_requests": 0,
            "by_route": {},
        }
        self._routes = self._build_routes()
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ URLs

    @property
    def api_base(self) -> str:
        """What ``discord.http.Route.BASE`` must be set to."""
        return f"{self.base_url}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """The websocket URL served by ``GET /gateway/bot``."""
        return f"ws://{self.host}:{self.port}"

    # ------------------------------------------------------------ app wiring

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/", self._gateway_handler)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._cdn)
        app.router.add_post("/_emulator/call", self._control_call)
        app.router.add_route("*", API_PREFIX + "{tail:/.*}", self._rest_handler)
        app.router.add_route("*", "/{tail:.*}", self._not_found_handler)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_shutdown(self, app: web.Application) -> None:
        for conn in list(self._connections):
            conn.close(1001, "Going away")
        for conn in list(self._connections):
            if conn.writer is not None:
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(conn.writer), 2)

    def _build_routes(self) -> list[_Route]:
        table: list[tuple[str, str, Any, dict[str, bool]]] = [
            ("GET", "/users/@me", self._h_me, {}),
            ("GET", "/users/{user_id}", self._h_get_user, {}),
            ("POST", "/users/@me/channels", self._h_open_dm, {}),
            ("GET", "/gateway", self._h_gateway, {"auth": False, "global_limited": False}),
            ("GET", "/gateway/bot", self._h_gateway_bot, {}),
            ("GET", "/oauth2/applications/@me", self._h_application, {}),
            ("GET", "/applications/@me", self._h_application, {}),
            ("GET", "/applications/{application_id}/commands", self._h_get_commands, {}),
            ("PUT", "/applications/{application_id}/commands", self._h_put_commands, {}),
            (
                "GET",
                "/applications/{application_id}/guilds/{guild_id}/commands",
                self._h_get_commands,
                {},
            ),
            (
                "PUT",
                "/applications/{application_id}/guilds/{guild_id}/commands",
                self._h_put_commands,
                {},
            ),
            (
                "POST",
                "/interactions/{interaction_id}/{interaction_token}/callback",
                self._h_callback,
                {"auth": False, "global_limited": False, "limited": False},
            ),
            (
                "POST",
                "/webhooks/{webhook_id}/{webhook_token}",
                self._h_webhook_execute,
                {"auth": False, "global_limited": False},
            ),
            (
                "GET",
                "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                self._h_webhook_get,
                {"auth": False, "global_limited": False},
            ),
            (
                "PATCH",
                "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                self._h_webhook_edit,
                {"auth": False, "global_limited": False},
            ),
            (
                "DELETE",
                "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                self._h_webhook_delete,
                {"auth": False, "global_limited": False},
            ),
            ("GET", "/channels/{channel_id}", self._h_get_channel, {}),
            ("GET", "/channels/{channel_id}/messages", self._h_history, {}),
            ("POST", "/channels/{channel_id}/messages", self._h_create_message, {}),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self._h_get_message, {}),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self._h_edit_message, {}),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self._h_delete_message, {}),
            ("POST", "/channels/{channel_id}/typing", self._h_typing, {}),
            ("GET", "/guilds/{guild_id}", self._h_get_guild, {}),
            ("GET", "/guilds/{guild_id}/channels", self._h_guild_channels, {}),
            ("GET", "/guilds/{guild_id}/roles", self._h_guild_roles, {}),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self._h_get_member, {}),
        ]
        routes = []
        for method, template, handler, options in table:
            regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
            routes.append(_Route(method, template, re.compile(f"^{regex}$"), handler, **options))
        return routes

    # ------------------------------------------------------ thread plumbing

    def _on_loop_thread(self) -> bool:
        return self._thread is not None and threading.get_ident() == self._thread.ident

    def _run_on_loop(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop (where gateway sends happen) and wait for it."""
        if self._loop is None or self._on_loop_thread():
            return fn()
        future: Future[T] = Future()

        def runner() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the caller
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(runner)
        return future.result(timeout=10)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------- gateway

    def _emit(self, event: str, data: dict[str, Any], *, guild_id: int | None = None) -> None:
        """Dispatch an event to every session whose intents cover it (loop thread)."""
        needed = _event_intent(event, guild_id is not None)
        for session in list(self._sessions.values()):
            if needed is not None and not session.intents & needed:
                continue
            if guild_id is not None and not self._in_shard(guild_id, session.shard):
                continue
            payload = data
            if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE"):
                payload = self._mask_content(data, session.intents)
            session.dispatch(event, copy.deepcopy(payload))

    def _emit_threadsafe(self, events: Sequence[tuple[str, dict[str, Any], int | None]]) -> None:
        if not events:
            return

        def send_all() -> None:
            for event, data, guild_id in events:
                self._emit(event, data, guild_id=guild_id)

        self._run_on_loop(send_all)

    @staticmethod
    def _in_shard(guild_id: int, shard: tuple[int, int]) -> bool:
        shard_id, count = shard
        return count <= 1 or (guild_id >> 22) % count == shard_id

    def _mask_content(self, message: dict[str, Any], intents: int) -> dict[str, Any]:
        """Empty the content fields as Discord does without the MESSAGE_CONTENT intent."""
        if intents & Intent.MESSAGE_CONTENT:
            return message
        author_id = int(message.get("author", {}).get("id", 0))
        mentioned = any(int(u["id"]) == self.bot_user.id for u in message.get("mentions", []))
        if author_id == self.bot_user.id or "guild_id" not in message or mentioned:
            return message
        masked = dict(message)
        masked.update(content="", embeds=[], attachments=[], components=[])
        masked.pop("poll", None)
        return masked

    async def _gateway_handler(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return _json_response(404, {"message": "404: Not Found", "code": 0})
        compress = request.query.get("compress")
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        conn = _GatewayConnection(ws, compress)
        conn.writer = asyncio.ensure_future(conn.run_writer())
        self._connections.add(conn)
        client_close_code: int | None = None
        try:
            if request.query.get("v", str(API_VERSION)) not in ("9", "10"):
                conn.close(4012, "Invalid API version")
            elif request.query.get("encoding", "json") != "json":
                conn.close(4002, "Error while decoding payload.")
            elif compress not in (None, "zlib-stream", "zstd-stream") or (
                compress == "zstd-stream" and _ZstdCompressor is None
            ):
                conn.close(4000, "Unknown compression.")
            else:
                conn.send(
                    {
                        "op": 10,
                        "d": {
                            "heartbeat_interval": self.heartbeat_interval_ms,
                            "_trace": ['["gateway-emulator",{"micros":0}]'],
                        },
                        "s": None,
                        "t": None,
                    }
                )
                while not conn.closing:
                    msg = await ws.receive()
                    if msg.type == WSMsgType.CLOSE:
                        client_close_code = int(msg.data)
                        break
                    if msg.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                        break
                    if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                        continue
                    raw = msg.data if isinstance(msg.data, str) else msg.data.decode()
                    try:
                        frame = json.loads(raw)
                    except ValueError:
                        conn.close(4002, "Error while decoding payload.")
                        break
                    self._gateway_receive(conn, frame)
        finally:
            if conn.writer is not None and not conn.writer.done():
                conn.outbox.put_nowait(("stop", None))
                try:
                    await asyncio.wait_for(conn.writer, 5)
                except (TimeoutError, asyncio.CancelledError):
                    conn.writer.cancel()
            if not ws.closed:
                await ws.close()
            self._connections.discard(conn)
            session = conn.session
            if session is not None and session.connection is conn:
                session.connection = None
                # Closing with 1000/1001 ends the session: it cannot be resumed.
                if client_close_code in (1000, 1001):
                    with self._lock:
                        self._sessions.pop(session.session_id, None)
            self._notify()
        return ws

    def _gateway_receive(self, conn: _GatewayConnection, frame: Any) -> None:
        if not isinstance(frame, dict) or not isinstance(frame.get("op"), int):
            conn.close(4002, "Error while decoding payload.")
            return
        op = frame["op"]
        data = frame.get("d")
        with self._lock:
            self._gateway_log.append({"op": op, "d": copy.deepcopy(data)})
        if op == 1:
            conn.send({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            self._identify(conn, data)
        elif op == 6:
            self._resume(conn, data)
        elif conn.session is None:
            conn.close(4003, "Not authenticated.")
        elif op == 8:
            self._request_members(conn, data)
        elif op in (3, 4):
            pass  # presence and voice state updates are accepted and logged
        else:
            conn.close(4001, "Unknown opcode.")

    def _identify(self, conn: _GatewayConnection, data: Any) -> None:
        if conn.session is not None:
            conn.close(4005, "Already authenticated.")
            return
        if not isinstance(data, dict):
            conn.close(4002, "Error while decoding payload.")
            return
        token = str(data.get("token", ""))
        if token.startswith("Bot "):
            token = token[4:]
        if token != self.token:
            conn.close(4004, "Authentication failed.")
            return
        intents = data.get("intents")
        if not isinstance(intents, int) or intents < 0 or intents & ~VALID_INTENTS:
            conn.close(4013, "Invalid intent(s).")
            return
        if intents & PRIVILEGED_INTENTS & ~self.privileged_intents:
            conn.close(4014, "Disallowed intent(s).")
            return
        shard = data.get("shard") or [0, 1]
        if not isinstance(shard, list) or len(shard) != 2 or not 0 <= int(shard[0]) < int(shard[1]):
            conn.close(4010, "Invalid shard.")
            return
        session = _GatewaySession(secrets.token_hex(16), intents, (int(shard[0]), int(shard[1])))
        session.connection = conn
        conn.session = session
        with self._lock:
            self._identify_count += 1
            self._sessions[session.session_id] = session
            guilds = [g for g in self._guilds.values() if self._in_shard(g.id, session.shard)]
            ready = {
                "v": API_VERSION,
                "user": self._bot_self_payload(),
                "user_settings": {},
                "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
                "guild_join_requests": [],
                "presences": [],
                "private_channels": [],
                "relationships": [],
                "session_id": session.session_id,
                "session_type": "normal",
                "resume_gateway_url": self.gateway_url,
                "shard": list(session.shard),
                "application": {"id": str(self.application_id), "flags": self._application_flags()},
                "geo_ordered_rtc_regions": ["brazil", "us-east"],
                "_trace": ['["gateway-emulator",{"micros":0}]'],
            }
            guild_payloads = [(self._guild_create_payload(g, intents), g.id) for g in guilds]
        session.dispatch("READY", ready)
        if intents & Intent.GUILDS:
            for payload, _guild_id in guild_payloads:
                session.dispatch("GUILD_CREATE", payload)
        self._notify()

    def _resume(self, conn: _GatewayConnection, data: Any) -> None:
        if not isinstance(data, dict):
            conn.close(4002, "Error while decoding payload.")
            return
        token = str(data.get("token", "")).removeprefix("Bot ")
        if token != self.token:
            conn.close(4004, "Authentication failed.")
            return
        session = self._sessions.get(str(data.get("session_id")))
        seq = data.get("seq")
        if session is None:
            conn.send({"op": 9, "d": False, "s": None, "t": None})
            return
        if isinstance(seq, int) and session.buffer and seq < session.buffer[0]["s"] - 1:
            conn.send({"op": 9, "d": False, "s": None, "t": None})
            return
        previous = session.connection
        if previous is not None and previous is not conn:
            previous.session = None
            previous.close(4000, "Session resumed elsewhere.")
        session.connection = conn
        conn.session = session
        last = seq if isinstance(seq, int) else 0
        for payload in list(session.buffer):
            if payload["s"] > last:
                conn.send(payload)
        session.dispatch("RESUMED", {"_trace": ['["gateway-emulator",{"micros":0}]']})
        self._notify()

    def _request_members(self, conn: _GatewayConnection, data: Any) -> None:
        session = conn.session
        assert session is not None
        if not isinstance(data, dict):
            conn.close(4002, "Error while decoding payload.")
            return
        guild_ids = data.get("guild_id")
        if not isinstance(guild_ids, list):
            guild_ids = [guild_ids]
        for raw_gid in guild_ids:
            with self._lock:
                guild = self._guilds.get(int(raw_gid))
                if guild is None:
                    continue
                user_ids = data.get("user_ids")
                query = str(data.get("query") or "")
                limit = int(data.get("limit") or 0)
                not_found: list[str] = []
                if user_ids is not None:
                    wanted = user_ids if isinstance(user_ids, list) else [user_ids]
                    members = []
                    for uid in wanted:
                        member = guild.members.get(int(uid))
                        if member is None:
                            not_found.append(str(uid))
                        else:
                            members.append(member)
                elif query == "" and limit == 0 and not session.intents & Intent.GUILD_MEMBERS:
                    members = []  # the whole list needs the GUILD_MEMBERS intent
                else:
                    members = [
                        m
                        for m in guild.members.values()
                        if self._users[m.user_id].name.lower().startswith(query.lower())
                    ]
                    if limit:
                        members = members[:limit]
                chunk: dict[str, Any] = {
                    "guild_id": str(guild.id),
                    "members": [m.payload(self._users[m.user_id]) for m in members],
                    "chunk_index": 0,
                    "chunk_count": 1,
                    "not_found": not_found,
                }
                if data.get("nonce") is not None:
                    chunk["nonce"] = data["nonce"]
                if data.get("presences"):
                    chunk["presences"] = []
            session.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    def _application_flags(self) -> int:
        flags = 1 << 23  # APPLICATION_COMMAND_BADGE
        if self.privileged_intents & Intent.GUILD_PRESENCES:
            flags |= 1 << 13  # GATEWAY_PRESENCE_LIMITED
        if self.privileged_intents & Intent.GUILD_MEMBERS:
            flags |= 1 << 15  # GATEWAY_GUILD_MEMBERS_LIMITED
        if self.privileged_intents & Intent.MESSAGE_CONTENT:
            flags |= 1 << 19  # GATEWAY_MESSAGE_CONTENT_LIMITED
        return flags

    def _bot_self_payload(self) -> dict[str, Any]:
        data = self.bot_user.payload()
        data.update(verified=True, mfa_enabled=False, locale="en-US", email=None, bio="")
        return data

    # ------------------------------------------------------ payload builders

    def _channel_payload(self, channel: EmuChannel) -> dict[str, Any]:
        if channel.is_dm:
            assert channel.recipient_id is not None
            return {
                "id": str(channel.id),
                "type": CHANNEL_DM,
                "last_message_id": None
                if channel.last_message_id is None
                else str(channel.last_message_id),
                "flags": 0,
                "recipients": [self._users[channel.recipient_id].payload()],
            }
        data: dict[str, Any] = {
            "id": str(channel.id),
            "type": channel.type,
            "guild_id": str(channel.guild_id),
            "name": channel.name,
            "position": channel.position,
            "permission_overwrites": copy.deepcopy(channel.permission_overwrites),
            "parent_id": None if channel.parent_id is None else str(channel.parent_id),
            "nsfw": False,
            "flags": 0,
        }
        if channel.type == CHANNEL_VOICE:
            data.update(bitrate=64000, user_limit=0, rtc_region=None)
        elif channel.type != CHANNEL_CATEGORY:
            data.update(
                topic=channel.topic,
                rate_limit_per_user=0,
                last_message_id=None
                if channel.last_message_id is None
                else str(channel.last_message_id),
            )
        return data

    def _guild_payload(self, guild: EmuGuild) -> dict[str, Any]:
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": guild.preferred_locale,
            "system_channel_id": None
            if guild.system_channel_id is None
            else str(guild.system_channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "application_id": None,
            "features": [],
            "roles": [r.payload() for r in guild.roles.values()],
            "emojis": [],
            "stickers": [],
            "max_members": 25_000_000,
            "max_video_channel_users": 25,
            "incidents_data": None,
        }

    def _guild_create_payload(self, guild: EmuGuild, intents: int) -> dict[str, Any]:
        data = self._guild_payload(guild)
        # Without GUILD_PRESENCES only the bot itself (and members in voice) are sent.
        if intents & Intent.GUILD_PRESENCES and len(guild.members) < 250:
            members = list(guild.members.values())
        else:
            members = [guild.members[self.bot_user.id]]
        data.update(
            joined_at=guild.joined_at,
            large=len(guild.members) >= 250,
            unavailable=False,
            member_count=len(guild.members),
            voice_states=[],
            members=[m.payload(self._users[m.user_id]) for m in members],
            channels=[
                {
                    k: v
                    for k, v in self._channel_payload(self._channels[c]).items()
                    if k != "guild_id"
                }
                for c in guild.channel_ids
            ],
            threads=[],
            presences=[],
            stage_instances=[],
            guild_scheduled_events=[],
            soundboard_sounds=[],
        )
        return data

    # ------------------------------------------------------------ permissions

    def _base_permissions(self, guild: EmuGuild, user_id: int) -> int:
        if user_id == guild.owner_id:
            return ALL_PERMISSIONS
        member = guild.members.get(user_id)
        if member is None:
            return 0
        perms = guild.roles[guild.id].permissions
        for role_id in member.role_ids:
            role = guild.roles.get(role_id)
            if role is not None:
                perms |= role.permissions
        if perms & Perm.ADMINISTRATOR:
            return ALL_PERMISSIONS
        return perms

    def _channel_permissions(self, channel: EmuChannel, user_id: int) -> int:
        """A user's permissions in a channel, overwrites included (Discord's algorithm)."""
        if channel.is_dm:
            return DM_PERMISSIONS if user_id in (channel.recipient_id, self.bot_user.id) else 0
        assert channel.guild_id is not None
        guild = self._guilds[channel.guild_id]
        perms = self._base_permissions(guild, user_id)
        if perms == ALL_PERMISSIONS:
            return perms
        member = guild.members.get(user_id)
        if member is None:
            return 0
        overwrites = {int(o["id"]): o for o in channel.permission_overwrites}
        everyone = overwrites.get(guild.id)
        if everyone is not None:
            perms &= ~int(everyone.get("deny", 0))
            perms |= int(everyone.get("allow", 0))
        allow = deny = 0
        for role_id in member.role_ids:
            overwrite = overwrites.get(role_id)
            if overwrite is not None and int(overwrite.get("type", 0)) == 0:
                allow |= int(overwrite.get("allow", 0))
                deny |= int(overwrite.get("deny", 0))
        perms = (perms & ~deny) | allow
        own = overwrites.get(user_id)
        if own is not None and int(own.get("type", 0)) == 1:
            perms = (perms & ~int(own.get("deny", 0))) | int(own.get("allow", 0))
        if not perms & Perm.VIEW_CHANNEL:
            return 0
        if not perms & Perm.SEND_MESSAGES:
            perms &= ~int(
                Perm.SEND_TTS_MESSAGES
                | Perm.MENTION_EVERYONE
                | Perm.EMBED_LINKS
                | Perm.ATTACH_FILES
            )
        return perms

    # ------------------------------------------------------------- REST core

    async def _not_found_handler(self, request: web.Request) -> web.StreamResponse:
        return _json_response(404, {"message": "404: Not Found", "code": 0})

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            data = self._attachments.get(int(request.match_info["attachment_id"]))
        if data is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=data, content_type="application/octet-stream")

    async def _rest_handler(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["tail"].rstrip("/") or "/"
        method = request.method.upper()
        with self._lock:
            self._stats["requests"] += 1
        route, params, path_known = self._match(method, path)
        if route is None:
            if path_known:
                return _json_response(405, {"message": "405: Method Not Allowed", "code": 0})
            return _json_response(404, {"message": "404: Not Found", "code": 0})
        with self._lock:
            by_route = self._stats["by_route"]
            by_route[route.key] = by_route.get(route.key, 0) + 1
        headers: dict[str, str] = {}
        try:
            if route.auth and request.headers.get("Authorization") != f"Bot {self.token}":
                raise DiscordHTTPError(401, 0, "401: Unauthorized")
            limited = self._check_rate_limits(route, params)
            if limited is not None:
                return limited
            headers = self._route_headers(route, params)
            status, body = await route.handler(request, params)
        except DiscordHTTPError as exc:
            if exc.status in (401, 403, 429):
                with self._lock:
                    self._stats["invalid_requests"] += 1
            self._record_rejection(route, params, exc)
            return _json_response(exc.status, exc.body(), headers)
        if body is None:
            return web.Response(status=status, headers=headers)
        return _json_response(status, body, headers)

    def _match(self, method: str, path: str) -> tuple[_Route | None, dict[str, str], bool]:
        known = False
        for route in self._routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            known = True
            if route.method == method:
                return route, found.groupdict(), True
        return None, {}, known

    def _record_rejection(
        self, route: _Route, params: Mapping[str, str], exc: DiscordHTTPError
    ) -> None:
        interaction_id: int | None = None
        with self._lock:
            if "interaction_id" in params and params["interaction_id"].isdigit():
                interaction_id = int(params["interaction_id"])
            elif "webhook_token" in params:
                interaction_id = self._tokens.get(params["webhook_token"])
            record = self._records.get(interaction_id) if interaction_id is not None else None
            if record is not None:
                record.rejected.append(
                    {
                        "route": route.key,
                        "status": exc.status,
                        "code": exc.code,
                        "message": exc.message,
                    }
                )
                self._changed.notify_all()

    # ------------------------------------------------------------ rate limits

    def _major(self, route: _Route, params: Mapping[str, str]) -> str:
        if "channel_id" in params:
            return params["channel_id"]
        if "guild_id" in params:
            return params["guild_id"]
        if "webhook_id" in params:
            return f"{params['webhook_id']}+{params.get('webhook_token', '')}"
        return ""

    def _limit_for(self, route: _Route) -> RouteLimit:
        return self._route_limits.get(route.key, self.default_route_limit)

    def _too_many(
        self,
        retry_after: float,
        *,
        is_global: bool,
        scope: str,
        via: bool,
        extra: Mapping[str, str],
    ) -> web.Response:
        with self._lock:
            self._stats["rate_limited"] += 1
            self._stats["invalid_requests"] += 1
            if is_global:
                self._stats["global_rate_limited"] += 1
        headers = {
            "Retry-After": str(max(1, math.ceil(retry_after))),
            "X-RateLimit-Scope": scope,
        }
        if via:
            headers["Via"] = VIA_HEADER
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        headers.update(extra)
        body = {
            "message": "You are being rate limited.",
            "retry_after": round(retry_after, 3),
            "global": is_global,
        }
        return _json_response(429, body, headers)

    def _check_rate_limits(self, route: _Route, params: Mapping[str, str]) -> web.Response | None:
        now = time.monotonic()
        with self._lock:
            for injected in self._injected:
                if injected.remaining <= 0:
                    continue
                if injected.method not in ("*", route.method):
                    continue
                if injected.template not in ("*", route.template):
                    continue
                injected.remaining -= 1
                self._injected = [i for i in self._injected if i.remaining > 0]
                extra = {} if injected.is_global else self._bucket_headers(route, params, now, 0)
                return self._too_many(
                    injected.retry_after,
                    is_global=injected.is_global,
                    scope="global" if injected.is_global else "user",
                    via=injected.via,
                    extra=extra,
                )
            if route.global_limited:
                window = self._global_window
                if now >= window.reset_at:
                    window.count = 0
                    window.reset_at = now + self.global_window
                if window.count >= self.global_limit:
                    return self._too_many(
                        window.reset_at - now, is_global=True, scope="global", via=True, extra={}
                    )
                window.count += 1
            if not route.limited:
                return None
            limit = self._limit_for(route)
            key = f"{_bucket_hash(route.key)}:{self._major(route, params)}"
            window = self._windows.setdefault(key, _Window())
            if now >= window.reset_at:
                window.count = 0
                window.reset_at = now + limit.per
            if window.count >= limit.limit:
                extra = self._bucket_headers(route, params, now, 0)
                return self._too_many(
                    window.reset_at - now, is_global=False, scope="user", via=True, extra=extra
                )
            window.count += 1
        return None

    def _bucket_headers(
        self, route: _Route, params: Mapping[str, str], now: float, remaining: int | None
    ) -> dict[str, str]:
        limit = self._limit_for(route)
        key = f"{_bucket_hash(route.key)}:{self._major(route, params)}"
        window = self._windows.get(key) or _Window(0, now + limit.per)
        reset_after = max(0.0, window.reset_at - now)
        if remaining is None:
            remaining = max(0, limit.limit - window.count)
        return {
            "X-RateLimit-Limit": str(limit.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": _bucket_hash(route.key),
        }

    def _route_headers(self, route: _Route, params: Mapping[str, str]) -> dict[str, str]:
        if not route.limited:
            return {}
        with self._lock:
            return self._bucket_headers(route, params, time.monotonic(), None)

    # ------------------------------------------------------------ body input

    async def _read_body(self, request: web.Request) -> tuple[Any, list[_Upload]]:
        uploads: list[_Upload] = []
        if request.content_type.startswith("multipart/"):
            payload: Any = {}
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader):
                    continue
                name = part.name or ""
                data = await part.read(decode=False)
                if name == "payload_json":
                    payload = self._parse_json(bytes(data))
                    continue
                found = re.fullmatch(r"files\[(\d+)\]|file(\d*)", name)
                index = len(uploads)
                if found is not None:
                    index = int(found.group(1) or found.group(2) or 0)
                content_type = part.headers.get("Content-Type", "application/octet-stream")
                uploads.append(
                    _Upload(index, part.filename or f"file{index}", content_type, bytes(data))
                )
            return payload, uploads
        raw = await request.read()
        if not raw:
            return {}, uploads
        return self._parse_json(raw), uploads

    @staticmethod
    def _parse_json(raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except ValueError:
            raise DiscordHTTPError(400, 50109, "The request body contains invalid JSON.") from None

    # ----------------------------------------------------- simple resources

    async def _h_me(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        return 200, self._bot_self_payload()

    async def _h_get_user(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            user = self._users.get(int(p["user_id"])) if p["user_id"].isdigit() else None
            if user is None:
                raise _unknown("user")
            return 200, user.payload()

    async def _h_gateway(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        return 200, {"url": self.gateway_url}

    async def _h_gateway_bot(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            remaining = max(0, 1000 - self._identify_count)
        return 200, {
            "url": self.gateway_url,
            "shards": 1,
            "session_start_limit": {
                "total": 1000,
                "remaining": remaining,
                "reset_after": 86_400_000,
                "max_concurrency": 1,
            },
        }

    async def _h_application(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            guild_count = len(self._guilds)
        return 200, {
            "id": str(self.application_id),
            "name": self.bot_user.name,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": self._verify_key,
            "owner": self.owner_user.payload(),
            "team": None,
            "flags": self._application_flags(),
            "bot": self.bot_user.payload(),
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "event_webhooks_url": None,
            "event_webhooks_status": 1,
            "redirect_uris": [],
            "tags": [],
            "approximate_guild_count": guild_count,
            "approximate_user_install_count": 0,
            "integration_types_config": {"0": {}},
            "install_params": {"scopes": ["bot", "applications.commands"], "permissions": "0"},
        }

    async def _h_open_dm(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        body, _ = await self._read_body(request)
        recipient = body.get("recipient_id") if isinstance(body, dict) else None
        with self._lock:
            try:
                user = self._users.get(int(recipient))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                user = None
            if user is None or user.id == self.bot_user.id:
                raise DiscordHTTPError(400, 50033, "Invalid Recipient(s)")
            channel = self._ensure_dm_channel(user.id)
            return 200, self._channel_payload(channel)

    def _ensure_dm_channel(self, user_id: int) -> EmuChannel:
        channel_id = self._dm_channels.get(user_id)
        if channel_id is None:
            channel = EmuChannel(self._ids.next(), CHANNEL_DM, None, recipient_id=user_id)
            self._channels[channel.id] = channel
            self._channel_messages[channel.id] = []
            self._dm_channels[user_id] = channel.id
            return channel
        return self._channels[channel_id]

    def _bot_channel(self, channel_id: str) -> EmuChannel:
        """A channel the bot can see, or the error Discord gives."""
        channel = self._channels.get(int(channel_id)) if channel_id.isdigit() else None
        if channel is None or channel.deleted:
            raise _unknown("channel")
        if channel.is_dm:
            return channel
        if not self._channel_permissions(channel, self.bot_user.id) & Perm.VIEW_CHANNEL:
            raise _missing_access()
        return channel

    def _bot_guild(self, guild_id: str) -> EmuGuild:
        guild = self._guilds.get(int(guild_id)) if guild_id.isdigit() else None
        if guild is None:
            raise _unknown("guild")
        return guild

    async def _h_get_channel(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            return 200, self._channel_payload(self._bot_channel(p["channel_id"]))

    async def _h_typing(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            self._bot_channel(p["channel_id"])
        return 204, None

    async def _h_get_guild(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            guild = self._bot_guild(p["guild_id"])
            data = self._guild_payload(guild)
            if request.query.get("with_counts", "").lower() in ("1", "true"):
                data["approximate_member_count"] = len(guild.members)
                data["approximate_presence_count"] = 0
            return 200, data

    async def _h_guild_channels(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            guild = self._bot_guild(p["guild_id"])
            return 200, [self._channel_payload(self._channels[c]) for c in guild.channel_ids]

    async def _h_guild_roles(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            guild = self._bot_guild(p["guild_id"])
            return 200, [r.payload() for r in guild.roles.values()]

    async def _h_get_member(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            guild = self._bot_guild(p["guild_id"])
            member = guild.members.get(int(p["user_id"])) if p["user_id"].isdigit() else None
            if member is None:
                raise _unknown("member")
            return 200, member.payload(self._users[member.user_id])

    # --------------------------------------------------- application commands

    def _check_application(self, p: Mapping[str, str]) -> None:
        if p.get("application_id") != str(self.application_id):
            raise _missing_access()

    async def _h_get_commands(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        self._check_application(p)
        with self._lock:
            if "guild_id" in p:
                self._bot_guild_or_access(p["guild_id"])
                return 200, copy.deepcopy(self._guild_commands.get(int(p["guild_id"]), []))
            return 200, copy.deepcopy(self._global_commands)

    def _bot_guild_or_access(self, guild_id: str) -> EmuGuild:
        guild = self._guilds.get(int(guild_id)) if guild_id.isdigit() else None
        if guild is None:
            raise _missing_access()
        return guild

    async def _h_put_commands(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        self._check_application(p)
        body, _ = await self._read_body(request)
        guild_id: int | None = None
        with self._lock:
            if "guild_id" in p:
                guild_id = self._bot_guild_or_access(p["guild_id"]).id
        if not isinstance(body, list):
            raise DiscordHTTPError(
                400,
                50035,
                "Invalid Form Body",
                errors={"_errors": [{"code": "BASE_TYPE_ARRAY", "message": "Must be an array."}]},
            )
        errors = _FormErrors()
        seen: set[tuple[int, str]] = set()
        counts: dict[int, int] = {}
        for index, command in enumerate(body):
            if not isinstance(command, dict):
                errors.add(
                    [index], "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType"
                )
                continue
            self._validate_command(command, errors, [index], is_global=guild_id is None)
            ctype = int(command.get("type", 1) or 1)
            key = (ctype, str(command.get("name")))
            if key in seen:
                errors.add(
                    [index, "name"],
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    f"Application command names must be unique ({command.get('name')})",
                )
            seen.add(key)
            counts[ctype] = counts.get(ctype, 0) + 1
        for ctype, count in counts.items():
            maximum = 100 if ctype == 1 else 15
            if count > maximum:
                errors.add([], "BASE_TYPE_MAX_LENGTH", f"Must be {maximum} or fewer in length.")
        errors.raise_if_any()
        with self._lock:
            previous = (
                self._global_commands
                if guild_id is None
                else self._guild_commands.get(guild_id, [])
            )
            by_key = {(c["type"], c["name"]): c for c in previous}
            stored = [self._store_command(c, by_key, guild_id) for c in body]
            if guild_id is None:
                self._global_commands = stored
            else:
                self._guild_commands[guild_id] = stored
            self._changed.notify_all()
            return 200, copy.deepcopy(stored)

    def _store_command(
        self,
        command: dict[str, Any],
        previous: Mapping[tuple[int, str], dict[str, Any]],
        guild_id: int | None,
    ) -> dict[str, Any]:
        ctype = int(command.get("type", 1) or 1)
        dmp = command.get("default_member_permissions")
        stored: dict[str, Any] = {
            "id": "",
            "application_id": str(self.application_id),
            "version": "",
            "default_member_permissions": None if dmp is None else str(int(dmp)),
            "type": ctype,
            "name": command["name"],
            "name_localizations": command.get("name_localizations") or None,
            "description": command.get("description", "") if ctype == 1 else "",
            "description_localizations": command.get("description_localizations") or None,
            "contexts": command.get("contexts"),
            "integration_types": command.get("integration_types") or [0],
            "nsfw": bool(command.get("nsfw", False)),
        }
        if guild_id is None:
            stored["dm_permission"] = command.get("dm_permission", True) is not False
        else:
            stored["guild_id"] = str(guild_id)
        if command.get("options"):
            stored["options"] = copy.deepcopy(command["options"])
        old = previous.get((ctype, command["name"]))
        stored["id"] = old["id"] if old else str(self._ids.next())
        comparable = ("id", "version", "application_id")
        unchanged = old is not None and all(
            old.get(k) == stored.get(k) for k in stored if k not in comparable
        )
        stored["version"] = old["version"] if unchanged and old else str(self._ids.next())
        return stored

    def _validate_localizations(
        self,
        value: Any,
        errors: _FormErrors,
        path: list[str | int],
        *,
        name: bool,
        chat_input: bool,
    ) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            errors.add(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            return
        for locale, text in value.items():
            if locale not in LOCALES:
                errors.add(
                    [*path, locale],
                    "ENUM_TYPE_COERCE",
                    f'Value "{locale}" is not a valid enum value.',
                )
            elif name and not _valid_command_name(text, chat_input=chat_input):
                errors.add(
                    [*path, locale], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
                )
            elif not name:
                errors.length([*path, locale], text, 1, 100)

    def _validate_command(
        self,
        command: dict[str, Any],
        errors: _FormErrors,
        path: list[str | int],
        *,
        is_global: bool,
    ) -> None:
        ctype = command.get("type", 1) or 1
        if ctype not in (1, 2, 3, 4):
            errors.add(
                [*path, "type"], "ENUM_TYPE_COERCE", f'Value "{ctype}" is not a valid enum value.'
            )
            return
        chat_input = ctype == 1
        if not _valid_command_name(command.get("name"), chat_input=chat_input):
            errors.add(
                [*path, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
            )
        self._validate_localizations(
            command.get("name_localizations"),
            errors,
            [*path, "name_localizations"],
            name=True,
            chat_input=chat_input,
        )
        if chat_input:
            errors.length([*path, "description"], command.get("description", ""), 1, 100)
            self._validate_localizations(
                command.get("description_localizations"),
                errors,
                [*path, "description_localizations"],
                name=False,
                chat_input=True,
            )
        elif command.get("description"):
            errors.add(
                [*path, "description"],
                "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION",
                "Context menu commands cannot have description",
            )
        dmp = command.get("default_member_permissions")
        if dmp is not None:
            try:
                if int(dmp) < 0 or int(dmp) & ~ALL_PERMISSIONS:
                    raise ValueError
            except (TypeError, ValueError):
                errors.add(
                    [*path, "default_member_permissions"],
                    "NUMBER_TYPE_COERCE",
                    f'Value "{dmp}" is not int.',
                )
        for key, allowed in (("contexts", {0, 1, 2}), ("integration_types", {0, 1})):
            values = command.get(key)
            if values is None:
                continue
            if not isinstance(values, list) or any(v not in allowed for v in values):
                errors.add(
                    [*path, key], "ENUM_TYPE_COERCE", f'Value "{values}" is not a valid enum value.'
                )
        options = command.get("options") or []
        if options and not chat_input:
            errors.add(
                [*path, "options"],
                "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                "Only chat input commands can have options",
            )
            return
        self._validate_options(options, errors, [*path, "options"], depth=0)

    def _validate_options(
        self, options: Any, errors: _FormErrors, path: list[str | int], *, depth: int
    ) -> None:
        if not isinstance(options, list):
            errors.add(path, "BASE_TYPE_ARRAY", "Must be an array.")
            return
        if len(options) > 25:
            errors.add(path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        kinds = {o.get("type") in (1, 2) for o in options if isinstance(o, dict)}
        if len(kinds) > 1:
            errors.add(
                path,
                "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                "Sub-command and sub-command group option types are mutually exclusive "
                "to all other types",
            )
        names: set[str] = set()
        seen_optional = False
        for index, option in enumerate(options):
            opath = [*path, index]
            if not isinstance(option, dict):
                errors.add(
                    opath, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType"
                )
                continue
            otype = option.get("type")
            if otype not in range(1, 12):
                errors.add(
                    [*opath, "type"],
                    "ENUM_TYPE_COERCE",
                    f'Value "{otype}" is not a valid enum value.',
                )
                continue
            name = option.get("name")
            if not _valid_command_name(name, chat_input=True):
                errors.add(
                    [*opath, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
                )
            elif name in names:
                errors.add(
                    [*opath, "name"],
                    "APPLICATION_COMMAND_OPTION_NAME_ALREADY_EXISTS",
                    "Option names must be unique",
                )
            names.add(str(name))
            errors.length([*opath, "description"], option.get("description", ""), 1, 100)
            self._validate_localizations(
                option.get("name_localizations"),
                errors,
                [*opath, "name_localizations"],
                name=True,
                chat_input=True,
            )
            self._validate_localizations(
                option.get("description_localizations"),
                errors,
                [*opath, "description_localizations"],
                name=False,
                chat_input=True,
            )
            if otype == 2:
                if depth > 0:
                    errors.add(
                        [*opath, "type"],
                        "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                        "Sub-command groups cannot be nested",
                    )
                children = option.get("options") or []
                if any(isinstance(c, dict) and c.get("type") != 1 for c in children):
                    errors.add(
                        [*opath, "options"],
                        "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                        "Sub-command groups may only contain sub-commands",
                    )
                self._validate_options(children, errors, [*opath, "options"], depth=depth + 1)
            elif otype == 1:
                children = option.get("options") or []
                if any(isinstance(c, dict) and c.get("type") in (1, 2) for c in children):
                    errors.add(
                        [*opath, "options"],
                        "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                        "Sub-commands cannot contain sub-commands",
                    )
                self._validate_options(children, errors, [*opath, "options"], depth=depth + 1)
            else:
                if option.get("required"):
                    if seen_optional:
                        errors.add(
                            [*opath, "required"],
                            "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                            "Required options must be placed before non-required options",
                        )
                else:
                    seen_optional = True
                choices = option.get("choices")
                if choices is not None:
                    if otype not in (3, 4, 10):
                        errors.add(
                            [*opath, "choices"],
                            "APPLICATION_COMMAND_OPTION_CHOICES_TYPE_INVALID",
                            "Choices are only valid for string, integer and number options",
                        )
                    elif len(choices) > 25:
                        errors.add(
                            [*opath, "choices"],
                            "BASE_TYPE_MAX_LENGTH",
                            "Must be 25 or fewer in length.",
                        )
                    if choices and option.get("autocomplete"):
                        errors.add(
                            [*opath, "autocomplete"],
                            "APPLICATION_COMMAND_AUTOCOMPLETE_INVALID",
                            "Autocomplete cannot be set with choices",
                        )
                if otype == 3:
                    for key, low in (("min_length", 0), ("max_length", 1)):
                        value = option.get(key)
                        if value is not None and not low <= int(value) <= 6000:
                            errors.add(
                                [*opath, key],
                                "NUMBER_TYPE_MAX",
                                f"int value should be between {low} and 6000.",
                            )

    # -------------------------------------------------------- message bodies

    def _validate_components(
        self, components: Any, errors: _FormErrors, path: list[str | int], *, v2: bool
    ) -> None:
        if not isinstance(components, list):
            errors.add(path, "BASE_TYPE_ARRAY", "Must be an array.")
            return
        if not v2 and len(components) > 5:
            errors.add(path, "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
        if v2 and len(list(_walk_components(components))) > 40:
            errors.add(path, "BASE_TYPE_MAX_LENGTH", "Must be 40 or fewer in length.")
        for index, row in enumerate(components):
            rpath = [*path, index]
            if not isinstance(row, dict):
                errors.add(
                    rpath, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType"
                )
                continue
            if not v2 and row.get("type") != 1:
                errors.add(
                    [*rpath, "type"],
                    "UNION_TYPE_CHOICES",
                    'Value of field "type" must be one of (1,).',
                )
                continue
            if row.get("type") == 1:
                children = row.get("components") or []
                if not 1 <= len(children) <= 5:
                    errors.add(
                        [*rpath, "components"],
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 5 in length.",
                    )
                if (
                    any(isinstance(c, dict) and c.get("type") in SELECT_TYPES for c in children)
                    and len(children) > 1
                ):
                    errors.add(
                        [*rpath, "components"],
                        "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                        "The specified component exceeds the maximum width",
                    )
                for cindex, child in enumerate(children):
                    self._validate_interactive(child, errors, [*rpath, "components", cindex])
        seen: set[str] = set()
        for component in _walk_components(components):
            custom_id = component.get("custom_id")
            if component.get("type") in (2, *SELECT_TYPES) and custom_id is not None:
                if custom_id in seen:
                    errors.add(
                        path,
                        "COMPONENT_CUSTOM_ID_DUPLICATED",
                        "Component custom id cannot be duplicated",
                    )
                seen.add(custom_id)
            if component.get("type") in (9,) and isinstance(component.get("accessory"), dict):
                self._validate_interactive(component["accessory"], errors, [*path, "accessory"])

    @staticmethod
    def _validate_interactive(component: Any, errors: _FormErrors, path: list[str | int]) -> None:
        if not isinstance(component, dict):
            errors.add(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            return
        ctype = component.get("type")
        if ctype == 2:
            style = component.get("style")
            if style not in range(1, 7):
                errors.add(
                    [*path, "style"],
                    "ENUM_TYPE_COERCE",
                    f'Value "{style}" is not a valid enum value.',
                )
            if style == 5:
                if not component.get("url"):
                    errors.add([*path, "url"], "BASE_TYPE_REQUIRED", "This field is required")
            elif style != 6:
                errors.length([*path, "custom_id"], component.get("custom_id"), 1, 100)
            label = component.get("label")
            if label is not None:
                errors.length([*path, "label"], label, 0, 80)
        elif ctype in SELECT_TYPES:
            errors.length([*path, "custom_id"], component.get("custom_id"), 1, 100)
            if component.get("placeholder") is not None:
                errors.length([*path, "placeholder"], component.get("placeholder"), 0, 150)
            if ctype == 3:
                options = component.get("options") or []
                if not 1 <= len(options) <= 25:
                    errors.add(
                        [*path, "options"],
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 25 in length.",
                    )
            minimum = component.get("min_values", 1)
            maximum = component.get("max_values", 1)
            if not 0 <= int(minimum) <= 25 or not 1 <= int(maximum) <= 25 or minimum > maximum:
                errors.add([*path, "max_values"], "BASE_TYPE_BAD_VALUE", "Invalid min/max values")

    def _validate_message(
        self,
        body: Any,
        *,
        uploads: Sequence[_Upload],
        creating: bool,
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise DiscordHTTPError(
                400,
                50035,
                "Invalid Form Body",
                errors={
                    "_errors": [
                        {
                            "code": "DICT_TYPE_CONVERT",
                            "message": "Only dictionaries may be used in a DictType",
                        }
                    ]
                },
            )
        errors = _FormErrors()
        content = body.get("content")
        if content is not None:
            errors.length(["content"], content, 0, MAX_MESSAGE_CONTENT)
        embeds = body.get("embeds")
        if embeds is not None:
            if not isinstance(embeds, list):
                errors.add(["embeds"], "BASE_TYPE_ARRAY", "Must be an array.")
            else:
                if len(embeds) > MAX_EMBEDS:
                    errors.add(
                        ["embeds"],
                        "BASE_TYPE_MAX_LENGTH",
                        f"Must be {MAX_EMBEDS} or fewer in length.",
                    )
                total = 0
                for index, embed in enumerate(embeds):
                    if not isinstance(embed, dict):
                        errors.add(
                            ["embeds", index],
                            "DICT_TYPE_CONVERT",
                            "Only dictionaries may be used in a DictType",
                        )
                        continue
                    for key, high in (("title", 256), ("description", 4096)):
                        if embed.get(key) is not None:
                            errors.length(["embeds", index, key], embed[key], 0, high)
                            total += len(str(embed[key]))
                    fields = embed.get("fields") or []
                    if len(fields) > 25:
                        errors.add(
                            ["embeds", index, "fields"],
                            "BASE_TYPE_MAX_LENGTH",
                            "Must be 25 or fewer in length.",
                        )
                    for findex, item in enumerate(fields):
                        errors.length(
                            ["embeds", index, "fields", findex, "name"], item.get("name"), 1, 256
                        )
                        errors.length(
                            ["embeds", index, "fields", findex, "value"], item.get("value"), 1, 1024
                        )
                        total += len(str(item.get("name", ""))) + len(str(item.get("value", "")))
                    for key, sub, high in (("footer", "text", 2048), ("author", "name", 256)):
                        if isinstance(embed.get(key), dict) and embed[key].get(sub) is not None:
                            errors.length(["embeds", index, key, sub], embed[key][sub], 0, high)
                            total += len(str(embed[key][sub]))
                if total > MAX_EMBED_TOTAL:
                    errors.add(
                        ["embeds"],
                        "MAX_EMBED_SIZE_EXCEEDED",
                        "Embed size exceeds maximum size of 6000",
                    )
        flags = int(body.get("flags") or 0)
        components = body.get("components")
        if components is not None:
            self._validate_components(
                components, errors, ["components"], v2=bool(flags & FLAG_IS_COMPONENTS_V2)
            )
        errors.raise_if_any()
        if flags & FLAG_IS_COMPONENTS_V2 and content:
            raise DiscordHTTPError(
                400,
                50035,
                "Invalid Form Body",
                errors={
                    "content": {
                        "_errors": [
                            {
                                "code": "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                                "message": "The 'content' field cannot be used when "
                                "using MessageFlags.IS_COMPONENTS_V2",
                            }
                        ]
                    }
                },
            )
        for upload in uploads:
            if len(upload.data) > self.attachment_size_limit:
                raise DiscordHTTPError(413, 40005, "Request entity too large")
        if creating and not (
            content
            or embeds
            or components
            or uploads
            or body.get("sticker_ids")
            or body.get("poll")
        ):
            raise DiscordHTTPError(400, 50006, "Cannot send an empty message")
        return body

    def _attachments_from(
        self,
        channel_id: int,
        body: Mapping[str, Any],
        uploads: Sequence[_Upload],
        existing: Sequence[dict[str, Any]] = (),
    ) -> list[dict[str, Any]]:
        by_index = {u.index: u for u in uploads}
        described = {
            int(a["id"]): a
            for a in body.get("attachments") or []
            if isinstance(a, dict) and "id" in a
        }
        kept_ids = {str(a["id"]) for a in body.get("attachments") or [] if isinstance(a, dict)}
        result = (
            [a for a in existing if a["id"] in kept_ids]
            if "attachments" in body
            else list(existing)
        )
        for index, upload in sorted(by_index.items()):
            attachment_id = self._ids.next()
            self._attachments[attachment_id] = upload.data
            meta = described.get(index, {})
            filename = str(meta.get("filename") or upload.filename)
            url = f"{self.base_url}/attachments/{channel_id}/{attachment_id}/{filename}"
            item: dict[str, Any] = {
                "id": str(attachment_id),
                "filename": filename,
                "size": len(upload.data),
                "url": url,
                "proxy_url": url,
                "content_type": upload.content_type,
            }
            if meta.get("description"):
                item["description"] = meta["description"]
            result.append(item)
        return result

    def _mentions(
        self, content: str | None, guild: EmuGuild | None
    ) -> tuple[list[dict[str, Any]], list[str], bool]:
        users: list[dict[str, Any]] = []
        roles: list[str] = []
        for raw in re.findall(r"<@!?(\d+)>", content or ""):
            user = self._users.get(int(raw))
            if user is not None and all(u["id"] != raw for u in users):
                entry = user.payload()
                if guild is not None and user.id in guild.members:
                    entry["member"] = guild.members[user.id].payload()
                users.append(entry)
        for raw in re.findall(r"<@&(\d+)>", content or ""):
            if guild is not None and int(raw) in guild.roles:
                roles.append(raw)
        return users, roles, "@everyone" in (content or "")

    def _new_message(
        self,
        channel: EmuChannel,
        author: EmuUser,
        body: Mapping[str, Any],
        uploads: Sequence[_Upload] = (),
        *,
        message_type: int = 0,
        flags: int = 0,
        interaction: EmuInteraction | None = None,
        interaction_metadata: dict[str, Any] | None = None,
    ) -> _StoredMessage:
        """Create and store a message (the caller holds the lock and emits)."""
        guild = self._guilds.get(channel.guild_id) if channel.guild_id is not None else None
        mentions, mention_roles, everyone = self._mentions(body.get("content"), guild)
        components = copy.deepcopy(body.get("components") or [])
        _assign_component_ids(components)
        message_id = self._ids.next()
        payload: dict[str, Any] = {
            "id": str(message_id),
            "type": message_type,
            "channel_id": str(channel.id),
            "author": author.payload(),
            "content": body.get("content") or "",
            "timestamp": _iso_now(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts", False)),
            "mention_everyone": everyone,
            "mentions": mentions,
            "mention_roles": mention_roles,
            "attachments": self._attachments_from(channel.id, body, uploads),
            "embeds": copy.deepcopy(body.get("embeds") or []),
            "pinned": False,
            "flags": flags,
            "components": components,
        }
        if body.get("nonce") is not None:
            payload["nonce"] = body["nonce"]
        if body.get("poll") is not None:
            payload["poll"] = copy.deepcopy(body["poll"])
        if interaction is not None:
            payload["webhook_id"] = str(self.application_id)
            payload["application_id"] = str(self.application_id)
            if interaction_metadata is not None:
                payload["interaction_metadata"] = interaction_metadata
            if interaction.type == INTERACTION_APPLICATION_COMMAND:
                payload["interaction"] = {
                    "id": str(interaction.id),
                    "type": interaction.type,
                    "name": interaction.payload["data"]["name"],
                    "user": self._users[interaction.user_id].payload(),
                }
        reference = body.get("message_reference")
        if isinstance(reference, dict) and reference.get("message_id") is not None:
            referenced = self._messages.get(int(reference["message_id"]))
            if referenced is None or referenced.deleted or referenced.channel_id != channel.id:
                if reference.get("fail_if_not_exists", True):
                    raise DiscordHTTPError(
                        400,
                        50035,
                        "Invalid Form Body",
                        errors={
                            "message_reference": {
                                "_errors": [
                                    {
                                        "code": "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                                        "message": "Unknown message",
                                    }
                                ]
                            }
                        },
                    )
            else:
                payload["type"] = 19
                payload["message_reference"] = {
                    "type": 0,
                    "message_id": str(referenced.payload["id"]),
                    "channel_id": str(channel.id),
                    **({"guild_id": str(channel.guild_id)} if channel.guild_id else {}),
                }
                payload["referenced_message"] = copy.deepcopy(referenced.payload)
        stored = _StoredMessage(
            payload,
            channel.id,
            author.id,
            ephemeral=bool(flags & FLAG_EPHEMERAL),
            interaction_id=None if interaction is None else interaction.id,
        )
        self._messages[message_id] = stored
        self._channel_messages.setdefault(channel.id, []).append(message_id)
        if not stored.ephemeral:
            channel.last_message_id = message_id
        return stored

    def _apply_edit(
        self, stored: _StoredMessage, body: Mapping[str, Any], uploads: Sequence[_Upload]
    ) -> None:
        """Apply a PATCH body to a message; nothing changes when it is refused."""
        payload = copy.deepcopy(stored.payload)
        channel = self._channels[stored.channel_id]
        guild = self._guilds.get(channel.guild_id) if channel.guild_id is not None else None
        if "content" in body:
            payload["content"] = body.get("content") or ""
            payload["mentions"], payload["mention_roles"], payload["mention_everyone"] = (
                self._mentions(payload["content"], guild)
            )
        if "embeds" in body:
            payload["embeds"] = copy.deepcopy(body.get("embeds") or [])
        if "components" in body:
            components = copy.deepcopy(body.get("components") or [])
            _assign_component_ids(components)
            payload["components"] = components
        if "attachments" in body or uploads:
            payload["attachments"] = self._attachments_from(
                stored.channel_id, body, uploads, payload["attachments"]
            )
        if "flags" in body and body["flags"] is not None:
            keep = payload["flags"] & (FLAG_EPHEMERAL | FLAG_IS_COMPONENTS_V2)
            changeable = FLAG_SUPPRESS_EMBEDS | FLAG_IS_COMPONENTS_V2
            payload["flags"] = keep | (int(body["flags"]) & changeable)
        payload["flags"] &= ~FLAG_LOADING
        if "poll" in body and body["poll"] is not None:
            payload["poll"] = copy.deepcopy(body["poll"])
        payload["edited_timestamp"] = _iso_now()
        if not (
            payload["content"]
            or payload["embeds"]
            or payload["components"]
            or payload["attachments"]
            or payload.get("poll")
        ):
            raise DiscordHTTPError(400, 50006, "Cannot send an empty message")
        stored.payload = payload

    def _message_event(self, stored: _StoredMessage) -> tuple[dict[str, Any], int | None]:
        """A MESSAGE_CREATE/UPDATE body: the message plus guild_id and the author's member."""
        channel = self._channels[stored.channel_id]
        data = copy.deepcopy(stored.payload)
        if channel.guild_id is not None:
            data["guild_id"] = str(channel.guild_id)
            guild = self._guilds[channel.guild_id]
            member = guild.members.get(stored.author_id)
            if member is not None and "webhook_id" not in data:
                data["member"] = member.payload()
        return data, channel.guild_id

    def _deliver_message(
        self, stored: _StoredMessage, event: str = "MESSAGE_CREATE"
    ) -> list[tuple[str, dict[str, Any], int | None]]:
        if stored.ephemeral:
            return []
        data, guild_id = self._message_event(stored)
        return [(event, data, guild_id)]

    # ---------------------------------------------------------- channel REST

    def _visible_message(self, channel: EmuChannel, message_id: str) -> _StoredMessage:
        stored = self._messages.get(int(message_id)) if message_id.isdigit() else None
        if stored is None or stored.deleted or stored.ephemeral or stored.channel_id != channel.id:
            raise _unknown("message")
        return stored

    def _rest_message(self, stored: _StoredMessage) -> dict[str, Any]:
        data = copy.deepcopy(stored.payload)
        channel = self._channels[stored.channel_id]
        if not self.privileged_intents & Intent.MESSAGE_CONTENT and not channel.is_dm:
            data["guild_id"] = str(channel.guild_id)
            data = self._mask_content(data, 0)
            data.pop("guild_id", None)
        return data

    async def _h_history(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            channel = self._bot_channel(p["channel_id"])
            if (
                not channel.is_dm
                and not self._channel_permissions(channel, self.bot_user.id)
                & Perm.READ_MESSAGE_HISTORY
            ):
                return 200, []
            try:
                limit = max(1, min(100, int(request.query.get("limit", "50"))))
            except ValueError:
                limit = 50
            before = int(request.query.get("before", "0") or 0)
            after = int(request.query.get("after", "0") or 0)
            ids = [
                m
                for m in self._channel_messages.get(channel.id, [])
                if not self._messages[m].deleted
                and not self._messages[m].ephemeral
                and (not before or m < before)
                and (not after or m > after)
            ]
            ids = ids[:limit] if after else ids[-limit:]
            return 200, [self._rest_message(self._messages[m]) for m in reversed(ids)]

    async def _h_get_message(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            channel = self._bot_channel(p["channel_id"])
            if (
                not channel.is_dm
                and not self._channel_permissions(channel, self.bot_user.id)
                & Perm.READ_MESSAGE_HISTORY
            ):
                raise _missing_access()
            return 200, self._rest_message(self._visible_message(channel, p["message_id"]))

    async def _h_create_message(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        body, uploads = await self._read_body(request)
        with self._lock:
            channel = self._bot_channel(p["channel_id"])
            if channel.is_dm:
                assert channel.recipient_id is not None
                if not self._users[channel.recipient_id].dms_open:
                    raise DiscordHTTPError(403, 50007, "Cannot send messages to this user")
            else:
                perms = self._channel_permissions(channel, self.bot_user.id)
                if not perms & Perm.SEND_MESSAGES:
                    raise _missing_permissions()
                if uploads and not perms & Perm.ATTACH_FILES:
                    raise _missing_permissions()
            self._validate_message(body, uploads=uploads, creating=True)
            allowed = FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_IS_COMPONENTS_V2
            flags = int(body.get("flags") or 0) & allowed
            stored = self._new_message(channel, self.bot_user, body, uploads, flags=flags)
            events = self._deliver_message(stored)
            result = copy.deepcopy(stored.payload)
            self._changed.notify_all()
        self._emit_threadsafe(events)
        return 200, result

    async def _h_edit_message(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        body, uploads = await self._read_body(request)
        with self._lock:
            channel = self._bot_channel(p["channel_id"])
            stored = self._visible_message(channel, p["message_id"])
            if stored.author_id != self.bot_user.id:
                raise DiscordHTTPError(403, 50005, "Cannot edit a message authored by another user")
            self._validate_message(body, uploads=uploads, creating=False)
            self._apply_edit(stored, body, uploads)
            events = self._deliver_message(stored, "MESSAGE_UPDATE")
            result = copy.deepcopy(stored.payload)
            self._changed.notify_all()
        self._emit_threadsafe(events)
        return 200, result

    async def _h_delete_message(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            channel = self._bot_channel(p["channel_id"])
            stored = self._visible_message(channel, p["message_id"])
            if stored.author_id != self.bot_user.id:
                if channel.is_dm:
                    raise DiscordHTTPError(403, 50003, "Cannot execute action on a DM channel")
                if not self._channel_permissions(channel, self.bot_user.id) & Perm.MANAGE_MESSAGES:
                    raise _missing_permissions()
            events = self._delete_stored(stored, self.bot_user.id)
            self._changed.notify_all()
        self._emit_threadsafe(events)
        return 204, None

    def _delete_stored(
        self, stored: _StoredMessage, by: int
    ) -> list[tuple[str, dict[str, Any], int | None]]:
        stored.deleted = True
        stored.deleted_by = by
        if stored.ephemeral:
            return []
        channel = self._channels[stored.channel_id]
        data: dict[str, Any] = {"id": stored.payload["id"], "channel_id": str(channel.id)}
        if channel.guild_id is not None:
            data["guild_id"] = str(channel.guild_id)
        return [("MESSAGE_DELETE", data, channel.guild_id)]

    # --------------------------------------------------------- interactions

    def _interaction_by_token(
        self, webhook_id: str, token: str
    ) -> tuple[EmuInteraction, InteractionRecord]:
        interaction_id = self._tokens.get(token)
        if webhook_id != str(self.application_id) or interaction_id is None:
            raise _unknown("webhook")
        interaction = self._interactions[interaction_id]
        if time.monotonic() - interaction.created_at > self.token_lifetime:
            raise DiscordHTTPError(401, 50027, "Invalid Webhook Token")
        return interaction, self._records[interaction_id]

    def _interaction_metadata(
        self, interaction: EmuInteraction, *, original_id: int | None = None
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(interaction.id),
            "type": interaction.type,
            "user": self._users[interaction.user_id].payload(),
            "authorizing_integration_owners": copy.deepcopy(
                interaction.payload["authorizing_integration_owners"]
            ),
        }
        if interaction.type == INTERACTION_APPLICATION_COMMAND:
            data["name"] = interaction.payload["data"]["name"]
            data["command_type"] = 1
        if interaction.message_id is not None:
            data["interacted_message_id"] = str(interaction.message_id)
        if original_id is not None:
            data["original_response_message_id"] = str(original_id)
        return data

    async def _h_callback(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        with_response = request.query.get("with_response", "").lower() in ("1", "true")
        body, uploads = await self._read_body(request)
        events: list[tuple[str, dict[str, Any], int | None]] = []
        with self._lock:
            raw_id = p["interaction_id"]
            interaction = self._interactions.get(int(raw_id)) if raw_id.isdigit() else None
            if interaction is None or interaction.token != p["interaction_token"]:
                raise _unknown("interaction")
            record = self._records[interaction.id]
            if record.callback_type is not None:
                raise DiscordHTTPError(400, 40060, "Interaction has already been acknowledged.")
            elapsed = time.monotonic() - interaction.created_at
            if elapsed > self.interaction_deadline:
                raise _unknown("interaction")
            if not isinstance(body, dict) or not isinstance(body.get("type"), int):
                raise DiscordHTTPError(
                    400,
                    50035,
                    "Invalid Form Body",
                    errors={
                        "type": {
                            "_errors": [
                                {"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}
                            ]
                        }
                    },
                )
            ctype = body["type"]
            raw_data = body.get("data")
            data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
            self._check_callback_type(interaction, ctype)
            channel = self._channels[interaction.channel_id]
            message: _StoredMessage | None = None
            loading = False
            if ctype == CALLBACK_MESSAGE:
                self._validate_message(data, uploads=uploads, creating=True)
                allowed = (
                    FLAG_EPHEMERAL
                    | FLAG_SUPPRESS_EMBEDS
                    | FLAG_SUPPRESS_NOTIFICATIONS
                    | FLAG_IS_COMPONENTS_V2
                )
                flags = int(data.get("flags") or 0) & allowed
                message = self._new_message(
                    channel,
                    self.bot_user,
                    data,
                    uploads,
                    message_type=20 if interaction.type == INTERACTION_APPLICATION_COMMAND else 0,
                    flags=flags,
                    interaction=interaction,
                    interaction_metadata=self._interaction_metadata(interaction),
                )
                record.original_message_id = int(message.payload["id"])
                events += self._deliver_message(message)
            elif ctype == CALLBACK_DEFERRED_MESSAGE:
                flags = FLAG_LOADING | (int(data.get("flags") or 0) & FLAG_EPHEMERAL)
                message = self._new_message(
                    channel,
                    self.bot_user,
                    {},
                    (),
                    message_type=20 if interaction.type == INTERACTION_APPLICATION_COMMAND else 0,
                    flags=flags,
                    interaction=interaction,
                    interaction_metadata=self._interaction_metadata(interaction),
                )
                loading = True
                record.original_message_id = int(message.payload["id"])
                events += self._deliver_message(message)
            elif ctype in (CALLBACK_DEFERRED_UPDATE, CALLBACK_UPDATE_MESSAGE):
                assert interaction.message_id is not None
                message = self._messages[interaction.message_id]
                if ctype == CALLBACK_UPDATE_MESSAGE:
                    self._validate_message(data, uploads=uploads, creating=False)
                    self._apply_edit(message, data, uploads)
                    events += self._deliver_message(message, "MESSAGE_UPDATE")
                record.original_message_id = interaction.message_id
            elif ctype == CALLBACK_MODAL:
                modal = self._validate_modal(data)
                record.modal = modal
            record.callback_type = ctype
            record.callback_data = copy.deepcopy(body.get("data"))
            record.callback_delay = elapsed
            self._changed.notify_all()
            response: dict[str, Any] = {
                "interaction": {"id": str(interaction.id), "type": interaction.type}
            }
            if message is not None:
                response["interaction"].update(
                    response_message_id=message.payload["id"],
                    response_message_loading=loading,
                    response_message_ephemeral=message.ephemeral,
                )
                response["resource"] = {"type": ctype, "message": copy.deepcopy(message.payload)}
        self._emit_threadsafe(events)
        if not with_response:
            return 204, None
        return 200, response

    @staticmethod
    def _check_callback_type(interaction: EmuInteraction, ctype: int) -> None:
        valid: dict[int, set[int]] = {
            INTERACTION_APPLICATION_COMMAND: {
                CALLBACK_MESSAGE,
                CALLBACK_DEFERRED_MESSAGE,
                CALLBACK_MODAL,
            },
            INTERACTION_COMPONENT: {
                CALLBACK_MESSAGE,
                CALLBACK_DEFERRED_MESSAGE,
                CALLBACK_DEFERRED_UPDATE,
                CALLBACK_UPDATE_MESSAGE,
                CALLBACK_MODAL,
            },
            INTERACTION_MODAL_SUBMIT: {CALLBACK_MESSAGE, CALLBACK_DEFERRED_MESSAGE},
        }
        allowed = set(valid.get(interaction.type, set()))
        if interaction.type == INTERACTION_MODAL_SUBMIT and interaction.message_id is not None:
            allowed |= {CALLBACK_DEFERRED_UPDATE, CALLBACK_UPDATE_MESSAGE}
        if ctype not in allowed:
            raise DiscordHTTPError(
                400,
                50035,
                "Invalid Form Body",
                errors={
                    "type": {
                        "_errors": [
                            {
                                "code": "INTERACTION_RESPONSE_TYPE_INVALID"
                                if ctype in (1, 4, 5, 6, 7, 8, 9, 10, 12)
                                else "ENUM_TYPE_COERCE",
                                "message": f"Interaction response type {ctype} "
                                "is not valid for this interaction",
                            }
                        ]
                    }
                },
            )

    def _validate_modal(self, data: Mapping[str, Any]) -> dict[str, Any]:
        errors = _FormErrors()
        errors.length(["custom_id"], data.get("custom_id"), 1, 100)
        errors.length(["title"], data.get("title"), 1, 45)
        components = data.get("components")
        if not isinstance(components, list) or not 1 <= len(components) <= 5:
            errors.add(["components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
            errors.raise_if_any()
        assert isinstance(components, list)
        for index, component in enumerate(components):
            path: list[str | int] = ["components", index]
            if not isinstance(component, dict):
                errors.add(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
                continue
            ctype = component.get("type")
            if ctype == 1:
                children = component.get("components") or []
                if (
                    len(children) != 1
                    or not isinstance(children[0], dict)
                    or children[0].get("type") != 4
                ):
                    errors.add(
                        [*path, "components"],
                        "MODAL_ACTION_ROW_INVALID",
                        "An action row in a modal holds exactly one text input",
                    )
                    continue
                self._validate_text_input(
                    children[0], errors, [*path, "components", 0], in_label=False
                )
            elif ctype == 18:
                errors.length([*path, "label"], component.get("label"), 1, 45)
                if component.get("description") is not None:
                    errors.length([*path, "description"], component.get("description"), 0, 100)
                child = component.get("component")
                if not isinstance(child, dict) or child.get("type") not in (4, 19, *SELECT_TYPES):
                    errors.add(
                        [*path, "component"],
                        "UNION_TYPE_CHOICES",
                        "A label holds a text input, a select or a file upload",
                    )
                elif child.get("type") == 4:
                    self._validate_text_input(child, errors, [*path, "component"], in_label=True)
                else:
                    errors.length([*path, "component", "custom_id"], child.get("custom_id"), 1, 100)
            elif ctype == 10:
                errors.length([*path, "content"], component.get("content"), 1, 4000)
            else:
                errors.add(
                    [*path, "type"],
                    "UNION_TYPE_CHOICES",
                    "Modal components are action rows, labels or text displays",
                )
        errors.raise_if_any()
        modal = copy.deepcopy(dict(data))
        _assign_component_ids(modal["components"])
        return modal

    @staticmethod
    def _validate_text_input(
        component: Mapping[str, Any], errors: _FormErrors, path: list[str | int], *, in_label: bool
    ) -> None:
        errors.length([*path, "custom_id"], component.get("custom_id"), 1, 100)
        if component.get("style") not in (1, 2):
            errors.add(
                [*path, "style"],
                "ENUM_TYPE_COERCE",
                f'Value "{component.get("style")}" is not a valid enum value.',
            )
        if in_label:
            if component.get("label") is not None:
                errors.add(
                    [*path, "label"],
                    "TEXT_INPUT_LABEL_IN_LABEL",
                    "A text input inside a label component cannot have a label",
                )
        else:
            errors.length([*path, "label"], component.get("label"), 1, 45)
        minimum = component.get("min_length")
        maximum = component.get("max_length")
        if minimum is not None and not 0 <= int(minimum) <= MAX_TEXT_INPUT:
            errors.add(
                [*path, "min_length"], "NUMBER_TYPE_MAX", "int value should be between 0 and 4000."
            )
        if maximum is not None and not 1 <= int(maximum) <= MAX_TEXT_INPUT:
            errors.add(
                [*path, "max_length"], "NUMBER_TYPE_MAX", "int value should be between 1 and 4000."
            )
        if component.get("value") is not None:
            errors.length([*path, "value"], component.get("value"), 0, MAX_TEXT_INPUT)
        if component.get("placeholder") is not None:
            errors.length([*path, "placeholder"], component.get("placeholder"), 0, 100)

    def _interaction_messages(self, record: InteractionRecord) -> set[int]:
        ids = {int(m["id"]) for m in record.followups}
        if record.original_message_id is not None:
            ids.add(record.original_message_id)
        return ids

    def _webhook_message(self, record: InteractionRecord, message_id: str) -> _StoredMessage:
        if message_id == "@original":
            target = record.original_message_id
        else:
            target = int(message_id) if message_id.isdigit() else None
            if target is not None and target not in self._interaction_messages(record):
                target = None
        stored = self._messages.get(target) if target is not None else None
        if stored is None or stored.deleted:
            raise _unknown("message")
        return stored

    async def _h_webhook_execute(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        body, uploads = await self._read_body(request)
        wait = request.query.get("wait", "").lower() in ("1", "true")
        events: list[tuple[str, dict[str, Any], int | None]] = []
        with self._lock:
            interaction, record = self._interaction_by_token(p["webhook_id"], p["webhook_token"])
            if record.callback_type is None or record.callback_type == CALLBACK_MODAL:
                raise _unknown("webhook")
            self._validate_message(body, uploads=uploads, creating=True)
            original = (
                self._messages.get(record.original_message_id)
                if record.original_message_id is not None
                else None
            )
            if (
                record.callback_type == CALLBACK_DEFERRED_MESSAGE
                and original is not None
                and not original.deleted
                and original.payload["flags"] & FLAG_LOADING
            ):
                # The first followup after a deferral replaces the "thinking..." message.
                self._apply_edit(original, body, uploads)
                stored = original
                events += self._deliver_message(stored, "MESSAGE_UPDATE")
            else:
                allowed = (
                    FLAG_EPHEMERAL
                    | FLAG_SUPPRESS_EMBEDS
                    | FLAG_SUPPRESS_NOTIFICATIONS
                    | FLAG_IS_COMPONENTS_V2
                )
                flags = int(body.get("flags") or 0) & allowed
                channel = self._channels[interaction.channel_id]
                stored = self._new_message(
                    channel,
                    self.bot_user,
                    body,
                    uploads,
                    flags=flags,
                    interaction=interaction,
                    interaction_metadata=self._interaction_metadata(
                        interaction, original_id=record.original_message_id
                    ),
                )
                events += self._deliver_message(stored)
            record.followups.append(copy.deepcopy(stored.payload))
            result = copy.deepcopy(stored.payload)
            self._changed.notify_all()
        self._emit_threadsafe(events)
        return (200, result) if wait else (204, None)

    async def _h_webhook_get(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            _, record = self._interaction_by_token(p["webhook_id"], p["webhook_token"])
            return 200, copy.deepcopy(self._webhook_message(record, p["message_id"]).payload)

    async def _h_webhook_edit(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        body, uploads = await self._read_body(request)
        with self._lock:
            _, record = self._interaction_by_token(p["webhook_id"], p["webhook_token"])
            stored = self._webhook_message(record, p["message_id"])
            self._validate_message(body, uploads=uploads, creating=False)
            self._apply_edit(stored, body, uploads)
            record.edits.append(
                {"message_id": stored.payload["id"], "payload": copy.deepcopy(body)}
            )
            events = self._deliver_message(stored, "MESSAGE_UPDATE")
            result = copy.deepcopy(stored.payload)
            self._changed.notify_all()
        self._emit_threadsafe(events)
        return 200, result

    async def _h_webhook_delete(self, request: web.Request, p: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            _, record = self._interaction_by_token(p["webhook_id"], p["webhook_token"])
            stored = self._webhook_message(record, p["message_id"])
            events = self._delete_stored(stored, self.bot_user.id)
            record.deleted_message_ids.append(int(stored.payload["id"]))
            self._changed.notify_all()
        self._emit_threadsafe(events)
        return 204, None

    # ----------------------------------------------------- control (remote)

    _CONTROL_METHODS = frozenset(
        {
            "add_guild",
            "add_channel",
            "delete_channel",
            "add_member",
            "add_user",
            "set_bot_permissions",
            "set_member_permissions",
            "set_channel_overwrite",
            "invoke",
            "press",
            "submit_modal",
            "post_message",
            "responses",
            "messages",
            "dm_messages",
            "deleted",
            "commands",
            "dm_channel",
            "inject_rate_limit",
            "set_route_limit",
            "reset_rate_limits",
            "disconnect_bot",
            "request_reconnect",
            "gateway_received",
            "attachment_bytes",
        }
    )

    async def _control_call(self, request: web.Request) -> web.StreamResponse:
        """Let another process call the user side.

        ``POST /_emulator/call {"method": name, "args": [...], "kwargs": {...}}``
        answers ``{"result": ...}``, or 409 ``{"error": "refused", "reason"}``.
        """
        body = self._parse_json(await request.read())
        name = body.get("method") if isinstance(body, dict) else None
        if name not in self._CONTROL_METHODS:
            return _json_response(404, {"error": f"unknown method {name!r}"})
        fn = getattr(self, name)
        args = body.get("args") or []
        kwargs = body.get("kwargs") or {}
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                None, functools.partial(fn, *args, **kwargs)
            )
        except InvocationRefused as exc:
            return _json_response(
                409, {"error": "refused", "reason": exc.reason, "detail": exc.detail}
            )
        except (KeyError, ValueError, TypeError) as exc:
            return _json_response(400, {"error": type(exc).__name__, "detail": str(exc)})
        return _json_response(200, {"result": _jsonable(result)})

    # =====================================================================
    # User side: called from the test thread
    # =====================================================================

    def add_user(
        self,
        user_id: int,
        name: str,
        *,
        dms_open: bool = True,
        locale: str = "pt-BR",
        global_name: str | None = None,
    ) -> EmuUser:
        """Create (or update) a human user; ``dms_open=False`` refuses DMs from the bot (50007)."""
        with self._lock:
            user = self._users.get(user_id)
            if user is None:
                user = EmuUser(
                    user_id, name, global_name=global_name, dms_open=dms_open, locale=locale
                )
                self._users[user_id] = user
            else:
                user.name, user.dms_open, user.locale = name, dms_open, locale
                user.global_name = global_name if global_name is not None else user.global_name
            self._changed.notify_all()
            return copy.deepcopy(user)

    def add_guild(
        self,
        name: str,
        owner_id: int,
        *,
        preferred_locale: str = "en-US",
        bot_permissions: int | Perm = DEFAULT_BOT_PERMISSIONS,
        everyone_permissions: int | Perm = DEFAULT_EVERYONE_PERMISSIONS,
    ) -> EmuGuild:
        """Create a guild with the bot in it, a #general text channel and the owner as a member.

        An unknown owner becomes a user named ``owner-<id>``. Dispatches
        GUILD_CREATE to a connected bot.
        """
        with self._lock:
            if owner_id not in self._users:
                self._users[owner_id] = EmuUser(owner_id, f"owner-{owner_id}")
            guild = EmuGuild(self._ids.next(), name, owner_id, preferred_locale=preferred_locale)
            guild.roles[guild.id] = EmuRole(
                guild.id, guild.id, "@everyone", _perm_value(everyone_permissions)
            )
            bot_role = EmuRole(
                self._ids.next(),
                guild.id,
                self.bot_user.name,
                _perm_value(bot_permissions),
                position=1,
                managed=True,
                bot_id=self.bot_user.id,
            )
            guild.roles[bot_role.id] = bot_role
            guild.bot_role_id = bot_role.id
            guild.members[owner_id] = EmuMember(guild.id, owner_id)
            guild.members[self.bot_user.id] = EmuMember(
                guild.id, self.bot_user.id, role_ids=[bot_role.id]
            )
            self._guilds[guild.id] = guild
            general = EmuChannel(self._ids.next(), CHANNEL_TEXT, "general", guild_id=guild.id)
            self._channels[general.id] = general
            self._channel_messages[general.id] = []
            guild.channel_ids.append(general.id)
            guild.system_channel_id = general.id
            self._changed.notify_all()
        self._run_on_loop(lambda: self._emit_guild_create(guild.id))
        return self.guild(guild.id)

    def _emit_guild_create(self, guild_id: int) -> None:
        for session in list(self._sessions.values()):
            if session.intents & Intent.GUILDS and self._in_shard(guild_id, session.shard):
                with self._lock:
                    payload = self._guild_create_payload(self._guilds[guild_id], session.intents)
                session.dispatch("GUILD_CREATE", payload)

    def guild(self, guild_id: int) -> EmuGuild:
        """A copy of a guild's current state."""
        with self._lock:
            return copy.deepcopy(self._guilds[guild_id])

    def channel(self, channel_id: int) -> EmuChannel:
        """A copy of a channel's current state."""
        with self._lock:
            return copy.deepcopy(self._channels[channel_id])

    def add_channel(
        self,
        guild_id: int,
        name: str,
        *,
        channel_type: int = CHANNEL_TEXT,
        topic: str | None = None,
        parent_id: int | None = None,
        permission_overwrites: Sequence[Mapping[str, Any]] = (),
    ) -> EmuChannel:
        """Add a channel to a guild (dispatches CHANNEL_CREATE)."""
        with self._lock:
            guild = self._guilds[guild_id]
            channel = EmuChannel(
                self._ids.next(),
                channel_type,
                name,
                guild_id=guild_id,
                position=len(guild.channel_ids),
                parent_id=parent_id,
                topic=topic,
                permission_overwrites=[
                    {
                        "id": str(o["id"]),
                        "type": int(o.get("type", 0)),
                        "allow": str(_perm_value(o.get("allow", 0))),
                        "deny": str(_perm_value(o.get("deny", 0))),
                    }
                    for o in permission_overwrites
                ],
            )
            self._channels[channel.id] = channel
            self._channel_messages[channel.id] = []
            guild.channel_ids.append(channel.id)
            payload = self._channel_payload(channel)
            self._changed.notify_all()
        self._emit_threadsafe([("CHANNEL_CREATE", payload, guild_id)])
        return copy.deepcopy(channel)

    def delete_channel(self, channel_id: int) -> None:
        """Someone deletes a guild channel (dispatches CHANNEL_DELETE with the channel).

        Its messages stay readable here; the API then answers 404, 10003 Unknown Channel.
        """
        with self._lock:
            channel = self._channels[channel_id]
            if channel.is_dm or channel.deleted:
                raise ValueError(f"channel {channel_id} is a DM or already deleted")
            assert channel.guild_id is not None
            guild = self._guilds[channel.guild_id]
            guild.channel_ids.remove(channel_id)
            channel.deleted = True
            events = [("CHANNEL_DELETE", self._channel_payload(channel), guild.id)]
            if guild.system_channel_id == channel_id:
                guild.system_channel_id = None
                events.append(("GUILD_UPDATE", self._guild_payload(guild), guild.id))
            self._changed.notify_all()
        self._emit_threadsafe(events)

    def set_channel_overwrite(
        self,
        channel_id: int,
        target_id: int,
        *,
        allow: int | Perm = 0,
        deny: int | Perm = 0,
        member: bool = False,
    ) -> None:
        """Set a permission overwrite on a channel for a role (default) or a member."""
        with self._lock:
            channel = self._channels[channel_id]
            channel.permission_overwrites = [
                o for o in channel.permission_overwrites if int(o["id"]) != target_id
            ]
            channel.permission_overwrites.append(
                {
                    "id": str(target_id),
                    "type": 1 if member else 0,
                    "allow": str(_perm_value(allow)),
                    "deny": str(_perm_value(deny)),
                }
            )
            payload = self._channel_payload(channel)
            self._changed.notify_all()
        self._emit_threadsafe([("CHANNEL_UPDATE", payload, channel.guild_id)])

    def add_member(
        self,
        guild_id: int,
        user_id: int,
        name: str | None = None,
        *,
        permissions: int | Perm | None = None,
        locale: str = "pt-BR",
        nick: str | None = None,
        dms_open: bool = True,
    ) -> EmuMember:
        """Make a user (created if unknown) a member of a guild.

        ``permissions`` are granted through a role of the member's own, on top of
        @everyone. ``locale`` is the user's client locale (interaction ``locale``).
        Dispatches GUILD_MEMBER_ADD (GUILD_MEMBERS intent).
        """
        with self._lock:
            guild = self._guilds[guild_id]
            user = self._users.get(user_id)
            if user is None:
                user = EmuUser(user_id, name or f"user-{user_id}", dms_open=dms_open, locale=locale)
                self._users[user_id] = user
            else:
                user.locale = locale
                if name:
                    user.name = name
            member = guild.members.get(user_id) or EmuMember(guild_id, user_id, nick=nick)
            guild.members[user_id] = member
            if permissions is not None:
                self._set_member_role(guild, member, _perm_value(permissions))
            event = dict(member.payload(user), guild_id=str(guild_id))
            self._changed.notify_all()
        self._emit_threadsafe([("GUILD_MEMBER_ADD", event, guild_id)])
        return copy.deepcopy(member)

    def _set_member_role(
        self, guild: EmuGuild, member: EmuMember, permissions: int
    ) -> dict[str, Any]:
        name = f"member-{member.user_id}"
        role = next((guild.roles[r] for r in member.role_ids if guild.roles[r].name == name), None)
        if role is None:
            role = EmuRole(self._ids.next(), guild.id, name, permissions, position=1)
            guild.roles[role.id] = role
            member.role_ids.append(role.id)
        role.permissions = permissions
        return role.payload()

    def set_member_permissions(self, guild_id: int, user_id: int, permissions: int | Perm) -> None:
        """Replace the permissions of a member's own role (dispatches GUILD_ROLE_UPDATE)."""
        with self._lock:
            guild = self._guilds[guild_id]
            role = self._set_member_role(guild, guild.members[user_id], _perm_value(permissions))
            self._changed.notify_all()
        self._emit_threadsafe(
            [("GUILD_ROLE_UPDATE", {"guild_id": str(guild_id), "role": role}, guild_id)]
        )

    def set_bot_permissions(self, guild_id: int, permissions: int | Perm) -> None:
        """Replace the permissions of the bot's managed role in a guild (GUILD_ROLE_UPDATE)."""
        with self._lock:
            guild = self._guilds[guild_id]
            role = guild.roles[guild.bot_role_id]
            role.permissions = _perm_value(permissions)
            payload = role.payload()
            self._changed.notify_all()
        self._emit_threadsafe(
            [("GUILD_ROLE_UPDATE", {"guild_id": str(guild_id), "role": payload}, guild_id)]
        )

    def set_everyone_permissions(self, guild_id: int, permissions: int | Perm) -> None:
        """Replace the @everyone role's permissions (GUILD_ROLE_UPDATE)."""
        with self._lock:
            role = self._guilds[guild_id].roles[guild_id]
            role.permissions = _perm_value(permissions)
            payload = role.payload()
            self._changed.notify_all()
        self._emit_threadsafe(
            [("GUILD_ROLE_UPDATE", {"guild_id": str(guild_id), "role": payload}, guild_id)]
        )

    def dm_channel(self, user_id: int) -> EmuChannel:
        """The DM channel between the bot and a user (opened if needed)."""
        with self._lock:
            if user_id not in self._users:
                raise KeyError(f"unknown user {user_id}")
            return copy.deepcopy(self._ensure_dm_channel(user_id))

    # ------------------------------------------------------------ invoking

    def _require_session(self) -> None:
        if not self._sessions:
            raise InvocationRefused("bot_offline", "no gateway session is open")

    def _context_of(
        self, user: EmuUser, guild_id: int | None, channel_id: int | None
    ) -> tuple[EmuGuild | None, EmuChannel]:
        if channel_id is not None:
            channel = self._channels.get(channel_id)
            if channel is None or channel.deleted:
                raise InvocationRefused("unknown_channel", str(channel_id))
            if channel.is_dm:
                if channel.recipient_id != user.id:
                    raise InvocationRefused("not_visible", "another user's DM channel")
                return None, channel
            assert channel.guild_id is not None
            if guild_id is not None and guild_id != channel.guild_id:
                raise ValueError("channel_id is not in guild_id")
            guild = self._guilds[channel.guild_id]
        elif guild_id is not None:
            found = self._guilds.get(guild_id)
            if found is None:
                raise InvocationRefused("unknown_guild", str(guild_id))
            guild = found
            text = [
                self._channels[c]
                for c in guild.channel_ids
                if self._channels[c].type == CHANNEL_TEXT
            ]
            visible = [c for c in text if self._channel_permissions(c, user.id) & Perm.VIEW_CHANNEL]
            if not visible:
                raise InvocationRefused("not_visible", "no text channel the user can see")
            channel = visible[0]
        else:
            return None, self._ensure_dm_channel(user.id)
        if user.id not in guild.members:
            raise InvocationRefused("not_a_member", f"user {user.id} is not in guild {guild.id}")
        if not self._channel_permissions(channel, user.id) & Perm.VIEW_CHANNEL:
            raise InvocationRefused("not_visible", f"user cannot see channel {channel.id}")
        return guild, channel

    def _interaction_payload(
        self,
        itype: int,
        user: EmuUser,
        guild: EmuGuild | None,
        channel: EmuChannel,
        locale: str,
        data: dict[str, Any] | None,
    ) -> EmuInteraction:
        interaction_id = self._ids.next()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
        channel_payload = self._channel_payload(channel)
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": itype,
            "token": token,
            "version": 1,
            "channel_id": str(channel.id),
            "channel": channel_payload,
            "locale": locale,
            "app_permissions": str(self._channel_permissions(channel, self.bot_user.id)),
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(guild.id) if guild else "0"},
            "context": 0 if guild else 1,
            "attachment_size_limit": self.attachment_size_limit,
        }
        if data is not None:
            payload["data"] = data
        if guild is not None:
            perms = self._channel_permissions(channel, user.id)
            channel_payload["permissions"] = str(perms)
            member = guild.members[user.id].payload(user)
            member["permissions"] = str(perms)
            payload.update(
                guild_id=str(guild.id),
                guild={"id": str(guild.id), "locale": guild.preferred_locale, "features": []},
                guild_locale=guild.preferred_locale,
                member=member,
            )
        else:
            payload["user"] = user.payload()
        return EmuInteraction(
            interaction_id,
            token,
            itype,
            user.id,
            guild.id if guild else None,
            channel.id,
            locale,
            payload,
            time.monotonic(),
        )

    def _register_interaction(
        self, interaction: EmuInteraction
    ) -> tuple[EmuInteraction, Callable[[], None]]:
        """Record an interaction (lock held); returns a copy and the function that sends it."""
        self._interactions[interaction.id] = interaction
        self._tokens[interaction.token] = interaction.id
        self._records[interaction.id] = InteractionRecord(
            interaction.id, interaction.type, interaction.user_id
        )
        self._changed.notify_all()
        payload = copy.deepcopy(interaction.payload)

        def send() -> None:
            # The 3 s clock starts when the event leaves for the bot.
            interaction.created_at = time.monotonic()
            self._emit("INTERACTION_CREATE", payload)

        return copy.deepcopy(interaction), send

    def _find_command(
        self, name: str, guild: EmuGuild | None, locale: str
    ) -> dict[str, Any] | None:
        scopes = []
        if guild is not None:
            scopes.append(self._guild_commands.get(guild.id, []))
        scopes.append(self._global_commands)
        for commands in scopes:
            for command in commands:
                if command["type"] != 1:
                    continue
                localized = (command.get("name_localizations") or {}).get(locale)
                if name in (command["name"], localized):
                    return command
        return None

    def invoke(
        self,
        user_id: int,
        command_path: str,
        options: Mapping[str, Any] | None = None,
        *,
        guild_id: int | None = None,
        channel_id: int | None = None,
        locale: str | None = None,
    ) -> EmuInteraction:
        """A user runs a slash command: ``invoke(11, "bot create", {"name": "x"}, guild_id=g)``.

        Without ``guild_id``/``channel_id`` the command is run in the user's DM
        with the bot. ``locale`` defaults to the user's. The path may use the
        default names or the user's locale's localized names. Raises
        `InvocationRefused` where Discord's client would not send the
        interaction (unknown or unsynced command, ``default_member_permissions``
        not held, wrong context, invalid options).
        """
        with self._lock:
            self._require_session()
            user = self._users.get(user_id)
            if user is None:
                raise InvocationRefused("unknown_user", str(user_id))
            guild, channel = self._context_of(user, guild_id, channel_id)
            locale = locale or user.locale
            parts = command_path.split()
            if not parts:
                raise ValueError("empty command path")
            command = self._find_command(parts[0], guild, locale)
            if command is None:
                raise InvocationRefused("unknown_command", f"/{command_path} is not synced here")
            self._check_command_access(command, user, guild, channel)
            data: dict[str, Any] = {"id": command["id"], "name": command["name"], "type": 1}
            if command.get("guild_id"):
                data["guild_id"] = command["guild_id"]
            leaf_options, nested = self._walk_command_path(command, parts[1:], locale)
            resolved: dict[str, dict[str, Any]] = {}
            values = self._option_values(
                leaf_options, options or {}, guild, channel, user, resolved
            )
            top = self._nest_options(nested, values)
            if top:
                data["options"] = top
            if resolved:
                data["resolved"] = resolved
            interaction = self._interaction_payload(
                INTERACTION_APPLICATION_COMMAND, user, guild, channel, locale, data
            )
            result, send = self._register_interaction(interaction)
        self._run_on_loop(send)
        return result

    def _check_command_access(
        self, command: Mapping[str, Any], user: EmuUser, guild: EmuGuild | None, channel: EmuChannel
    ) -> None:
        contexts = command.get("contexts")
        integration_types = command.get("integration_types") or [0]
        if 0 not in integration_types:
            raise InvocationRefused("wrong_context", "the command is only for user installs")
        if guild is None:
            if command.get("guild_id"):
                raise InvocationRefused("wrong_context", "guild commands are not available in DMs")
            allowed = 1 in contexts if contexts is not None else command.get("dm_permission", True)
            if not allowed:
                raise InvocationRefused("wrong_context", "the command is not available in DMs")
            return
        if contexts is not None and 0 not in contexts:
            raise InvocationRefused("wrong_context", "the command is not available in servers")
        perms = self._channel_permissions(channel, user.id)
        if not perms & Perm.USE_APPLICATION_COMMANDS:
            raise InvocationRefused("missing_permissions", "USE_APPLICATION_COMMANDS")
        required = command.get("default_member_permissions")
        if required is not None:
            base = self._base_permissions(guild, user.id)
            needed = int(required)
            if base != ALL_PERMISSIONS and (needed == 0 or base & needed != needed):
                missing = Perm(needed & ~base) if needed else Perm.ADMINISTRATOR
                raise InvocationRefused("missing_permissions", f"needs {missing!r}")

    def _walk_command_path(
        self, command: Mapping[str, Any], rest: Sequence[str], locale: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        options: list[dict[str, Any]] = list(command.get("options") or [])
        nested: list[dict[str, Any]] = []
        for part in rest:
            match = next(
                (
                    o
                    for o in options
                    if o.get("type") in (1, 2)
                    and part in (o["name"], (o.get("name_localizations") or {}).get(locale))
                ),
                None,
            )
            if match is None:
                raise InvocationRefused("unknown_command", f"no subcommand {part!r}")
            nested.append({"name": match["name"], "type": match["type"]})
            options = list(match.get("options") or [])
        if any(o.get("type") in (1, 2) for o in options):
            raise InvocationRefused("unknown_command", "a subcommand must be chosen")
        return options, nested

    @staticmethod
    def _nest_options(
        levels: Sequence[Mapping[str, Any]], values: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Wrap the leaf's option values in their subcommand (group) levels."""
        for level in reversed(levels):
            values = [{**level, "options": values}]
        return values

    def _option_values(
        self,
        definitions: Sequence[Mapping[str, Any]],
        given: Mapping[str, Any],
        guild: EmuGuild | None,
        channel: EmuChannel,
        user: EmuUser,
        resolved: dict[str, dict[str, Any]],
    ) -> list[dict[str, Any]]:
        by_name = {d["name"]: d for d in definitions}
        unknown = set(given) - set(by_name)
        if unknown:
            raise InvocationRefused("invalid_options", f"unknown options {sorted(unknown)}")
        values: list[dict[str, Any]] = []
        for definition in definitions:
            name = definition["name"]
            if name not in given or given[name] is None:
                if definition.get("required"):
                    raise InvocationRefused("invalid_options", f"option {name!r} is required")
                continue
            value = self._option_value(definition, given[name], guild, channel, user, resolved)
            values.append({"name": name, "type": definition["type"], "value": value})
        return values

    def _option_value(
        self,
        definition: Mapping[str, Any],
        raw: Any,
        guild: EmuGuild | None,
        channel: EmuChannel,
        invoker: EmuUser,
        resolved: dict[str, dict[str, Any]],
    ) -> Any:
        otype = definition["type"]
        name = definition["name"]

        def refuse(why: str) -> InvocationRefused:
            return InvocationRefused("invalid_options", f"{name}: {why}")

        if otype == 3:
            value: Any = str(raw)
            low = int(definition.get("min_length", 0) or 0)
            high = int(definition.get("max_length", 6000) or 6000)
            if not low <= len(value) <= high:
                raise refuse(f"length must be within {low}..{high}")
        elif otype == 4:
            if isinstance(raw, bool) or not isinstance(raw, int | str):
                raise refuse("not an integer")
            try:
                value = int(raw)
            except ValueError:
                raise refuse("not an integer") from None
        elif otype == 10:
            try:
                value = float(raw)
            except (TypeError, ValueError):
                raise refuse("not a number") from None
        elif otype == 5:
            if not isinstance(raw, bool):
                raise refuse("not a boolean")
            value = raw
        elif otype in (6, 9) and not (otype == 9 and guild and _snowflake_of(raw) in guild.roles):
            target = self._users.get(_snowflake_of(raw))
            if target is None:
                raise refuse("unknown user")
            self._resolve_user(resolved, target, guild, channel)
            value = str(target.id)
        elif otype in (8, 9):
            role = guild.roles.get(_snowflake_of(raw)) if guild else None
            if role is None:
                raise refuse("unknown role")
            resolved.setdefault("roles", {})[str(role.id)] = role.payload()
            value = str(role.id)
        elif otype == 7:
            target_channel = self._channels.get(_snowflake_of(raw))
            if (
                target_channel is None
                or target_channel.deleted
                or target_channel.guild_id != (guild.id if guild else None)
            ):
                raise refuse("unknown channel")
            types = definition.get("channel_types")
            if types and target_channel.type not in types:
                raise refuse(f"channel type must be one of {types}")
            self._resolve_channel(resolved, target_channel, invoker)
            value = str(target_channel.id)
        else:
            raise refuse(f"option type {otype} is not supported by the emulator")
        if otype in (4, 10):
            if definition.get("min_value") is not None and value < definition["min_value"]:
                raise refuse(f"below {definition['min_value']}")
            if definition.get("max_value") is not None and value > definition["max_value"]:
                raise refuse(f"above {definition['max_value']}")
        choices = definition.get("choices")
        if choices and value not in [c["value"] for c in choices]:
            raise refuse(f"{value!r} is not one of the choices")
        return value

    def _resolve_user(
        self,
        resolved: dict[str, dict[str, Any]],
        target: EmuUser,
        guild: EmuGuild | None,
        channel: EmuChannel,
    ) -> None:
        resolved.setdefault("users", {})[str(target.id)] = target.payload()
        if guild is not None and target.id in guild.members:
            member = guild.members[target.id].payload()
            member["permissions"] = str(self._channel_permissions(channel, target.id))
            resolved.setdefault("members", {})[str(target.id)] = member

    def _resolve_channel(
        self, resolved: dict[str, dict[str, Any]], target: EmuChannel, invoker: EmuUser
    ) -> None:
        data: dict[str, Any] = {
            "id": str(target.id),
            "name": target.name,
            "type": target.type,
            "permissions": str(self._channel_permissions(target, invoker.id)),
            "parent_id": None if target.parent_id is None else str(target.parent_id),
            "flags": 0,
        }
        if target.type == CHANNEL_TEXT:
            data.update(
                topic=target.topic,
                nsfw=False,
                position=target.position,
                last_message_id=None,
                rate_limit_per_user=0,
            )
        if target.guild_id is not None:
            data["guild_id"] = str(target.guild_id)
        resolved.setdefault("channels", {})[str(target.id)] = data

    def press(
        self,
        user_id: int,
        message: Any,
        custom_id: str,
        values: Sequence[Any] | None = None,
        *,
        locale: str | None = None,
    ) -> EmuInteraction:
        """A user clicks a button (or picks ``values`` in a select) on a message.

        ``message`` is a message payload, a message id or an object with ``id``.
        Refused when the message is gone, invisible to the user (someone else's
        ephemeral), the component is unknown or disabled, or values are invalid.
        """
        with self._lock:
            self._require_session()
            user = self._users.get(user_id)
            if user is None:
                raise InvocationRefused("unknown_user", str(user_id))
            stored = self._messages.get(_snowflake_of(message))
            if stored is None or stored.deleted:
                raise InvocationRefused("unknown_message", str(_snowflake_of(message)))
            if stored.ephemeral:
                owner = (
                    self._interactions[stored.interaction_id].user_id
                    if stored.interaction_id
                    else None
                )
                if owner != user_id:
                    raise InvocationRefused("not_visible", "another user's ephemeral message")
            channel = self._channels[stored.channel_id]
            guild, channel = self._context_of(user, channel.guild_id, channel.id)
            component = next(
                (
                    c
                    for c in _walk_components(stored.payload.get("components"))
                    if c.get("custom_id") == custom_id and c.get("type") in (2, *SELECT_TYPES)
                ),
                None,
            )
            if component is None:
                raise InvocationRefused("unknown_component", custom_id)
            if component.get("disabled"):
                raise InvocationRefused("component_disabled", custom_id)
            data: dict[str, Any] = {
                "custom_id": custom_id,
                "component_type": component["type"],
                "id": component.get("id"),
            }
            if component["type"] in SELECT_TYPES:
                data["values"], resolved = self._select_values(
                    component, values or [], guild, channel, user
                )
                if resolved:
                    data["resolved"] = resolved
            elif values:
                raise InvocationRefused("invalid_values", "buttons take no values")
            interaction = self._interaction_payload(
                INTERACTION_COMPONENT, user, guild, channel, locale or user.locale, data
            )
            interaction.payload["message"] = copy.deepcopy(stored.payload)
            interaction.message_id = int(stored.payload["id"])
            result, send = self._register_interaction(interaction)
        self._run_on_loop(send)
        return result

    def _select_values(
        self,
        component: Mapping[str, Any],
        values: Sequence[Any],
        guild: EmuGuild | None,
        channel: EmuChannel,
        user: EmuUser,
    ) -> tuple[list[str], dict[str, dict[str, Any]]]:
        minimum = int(component.get("min_values", 1))
        maximum = int(component.get("max_values", 1))
        if not minimum <= len(values) <= maximum:
            raise InvocationRefused("invalid_values", f"pick between {minimum} and {maximum}")
        resolved: dict[str, dict[str, Any]] = {}
        ctype = component["type"]
        result: list[str] = []
        if ctype == 3:
            allowed = [o["value"] for o in component.get("options") or []]
            for value in values:
                if str(value) not in allowed:
                    raise InvocationRefused("invalid_values", f"{value!r} is not an option")
                result.append(str(value))
            return result, resolved
        for value in values:
            snowflake = _snowflake_of(value)
            if ctype in (5, 7) and snowflake in self._users:
                self._resolve_user(resolved, self._users[snowflake], guild, channel)
            elif ctype in (6, 7) and guild is not None and snowflake in guild.roles:
                resolved.setdefault("roles", {})[str(snowflake)] = guild.roles[snowflake].payload()
            elif ctype == 8 and snowflake in self._channels:
                self._resolve_channel(resolved, self._channels[snowflake], user)
            else:
                raise InvocationRefused("invalid_values", f"{value!r} cannot be picked here")
            result.append(str(snowflake))
        return result, resolved

    def submit_modal(
        self,
        user_id: int,
        interaction_or_modal: Any,
        values: Mapping[str, Any],
        *,
        locale: str | None = None,
    ) -> EmuInteraction:
        """A user fills in and submits the modal the bot answered an interaction with.

        ``interaction_or_modal`` is the interaction (or its id) that was answered
        with the modal, or the modal payload itself. ``values`` maps text input
        custom_ids to strings (selects: lists). Fields left out keep their
        prefilled ``value``. Refused on missing required fields, lengths out of
        bounds, unknown custom_ids or a second submit.
        """
        with self._lock:
            self._require_session()
            user = self._users.get(user_id)
            if user is None:
                raise InvocationRefused("unknown_user", str(user_id))
            record = self._modal_record(user_id, interaction_or_modal)
            assert record.modal is not None
            source = self._interactions[record.interaction_id]
            channel = self._channels[source.channel_id]
            guild, channel = self._context_of(user, source.guild_id, channel.id)
            components = self._modal_answers(record.modal, values, guild, channel, user)
            data: dict[str, Any] = {
                "custom_id": record.modal["custom_id"],
                "components": components[0],
            }
            if components[1]:
                data["resolved"] = components[1]
            interaction = self._interaction_payload(
                INTERACTION_MODAL_SUBMIT, user, guild, channel, locale or source.locale, data
            )
            interaction.source_interaction_id = source.id
            if source.message_id is not None:
                stored = self._messages[source.message_id]
                interaction.payload["message"] = copy.deepcopy(stored.payload)
                interaction.message_id = source.message_id
            record.modal_submitted = True
            result, send = self._register_interaction(interaction)
        self._run_on_loop(send)
        return result

    def _modal_record(self, user_id: int, source: Any) -> InteractionRecord:
        if isinstance(source, Mapping) and "custom_id" in source and "title" in source:
            candidates = [
                r
                for r in self._records.values()
                if r.modal is not None
                and r.modal.get("custom_id") == source["custom_id"]
                and r.user_id == user_id
                and not r.modal_submitted
            ]
            if not candidates:
                raise InvocationRefused("no_modal", f"no open modal {source['custom_id']!r}")
            return candidates[-1]
        record = self._records.get(_snowflake_of(source))
        if record is None or record.modal is None:
            raise InvocationRefused("no_modal", "that interaction was not answered with a modal")
        if record.user_id != user_id:
            raise InvocationRefused("not_visible", "the modal was shown to another user")
        if record.modal_submitted:
            raise InvocationRefused("modal_already_submitted", record.modal.get("custom_id", ""))
        return record

    def _modal_answers(
        self,
        modal: Mapping[str, Any],
        values: Mapping[str, Any],
        guild: EmuGuild | None,
        channel: EmuChannel,
        user: EmuUser,
    ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        known = {
            c.get("custom_id") for c in _walk_components(modal["components"]) if c.get("custom_id")
        }
        unknown = set(values) - known
        if unknown:
            raise InvocationRefused("invalid_values", f"unknown fields {sorted(unknown)}")
        resolved: dict[str, dict[str, Any]] = {}

        def answer(component: Mapping[str, Any]) -> dict[str, Any]:
            custom_id = component["custom_id"]
            if component["type"] == 4:
                text = values.get(custom_id, component.get("value") or "")
                text = "" if text is None else str(text)
                required = component.get("required", True)
                low = int(component.get("min_length") or 0)
                high = int(component.get("max_length") or MAX_TEXT_INPUT)
                if required and not text:
                    raise InvocationRefused("invalid_values", f"{custom_id} is required")
                if text and not low <= len(text) <= high:
                    raise InvocationRefused(
                        "invalid_values", f"{custom_id} length must be {low}..{high}"
                    )
                return {"type": 4, "id": component["id"], "custom_id": custom_id, "value": text}
            if component["type"] in SELECT_TYPES:
                picked = values.get(custom_id) or []
                if isinstance(picked, str | int):
                    picked = [picked]
                if not picked and component.get("required", True) is False:
                    return {
                        "type": component["type"],
                        "id": component["id"],
                        "custom_id": custom_id,
                        "values": [],
                    }
                chosen, extra = self._select_values(component, picked, guild, channel, user)
                for key, items in extra.items():
                    resolved.setdefault(key, {}).update(items)
                return {
                    "type": component["type"],
                    "id": component["id"],
                    "custom_id": custom_id,
                    "values": chosen,
                }
            return {"type": component["type"], "id": component["id"], "custom_id": custom_id}

        answers: list[dict[str, Any]] = []
        for component in modal["components"]:
            if component["type"] == 1:
                answers.append(
                    {
                        "type": 1,
                        "id": component["id"],
                        "components": [answer(c) for c in component["components"]],
                    }
                )
            elif component["type"] == 18:
                answers.append(
                    {"type": 18, "id": component["id"], "component": answer(component["component"])}
                )
            else:
                answers.append({"type": component["type"], "id": component["id"]})
        return answers, resolved

    def post_message(
        self,
        user_id: int,
        channel_id: int,
        content: str,
        *,
        embeds: Sequence[Mapping[str, Any]] = (),
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """A user writes a message in a channel or in their DM with the bot (MESSAGE_CREATE).

        Content reaches the bot only with the MESSAGE_CONTENT intent, in DMs,
        or when the bot is mentioned, as on Discord.
        """
        with self._lock:
            user = self._users.get(user_id)
            if user is None:
                raise InvocationRefused("unknown_user", str(user_id))
            channel = self._channels.get(channel_id)
            if channel is None:
                raise InvocationRefused("unknown_channel", str(channel_id))
            if channel.is_dm:
                if channel.recipient_id != user_id:
                    raise InvocationRefused("not_visible", "another user's DM channel")
            else:
                self._context_of(user, channel.guild_id, channel.id)
                if not self._channel_permissions(channel, user_id) & Perm.SEND_MESSAGES:
                    raise InvocationRefused("missing_permissions", "SEND_MESSAGES")
            if len(content) > MAX_MESSAGE_CONTENT:
                raise InvocationRefused("invalid_values", "content longer than 2000 characters")
            body: dict[str, Any] = {"content": content, "embeds": [dict(e) for e in embeds]}
            if reply_to is not None:
                body["message_reference"] = {"message_id": str(reply_to)}
            try:
                stored = self._new_message(channel, user, body)
            except DiscordHTTPError as exc:
                raise InvocationRefused("unknown_message", exc.message) from None
            events = self._deliver_message(stored)
            result = copy.deepcopy(stored.payload)
            self._changed.notify_all()
        self._emit_threadsafe(events)
        return result

    # ------------------------------------------------------------ recording

    def responses(self, interaction: Any) -> InteractionRecord:
        """What the bot did with an interaction (an `EmuInteraction`, its id or payload)."""
        with self._lock:
            record = copy.deepcopy(self._records[_snowflake_of(interaction)])
            if record.original_message_id is not None:
                stored = self._messages.get(record.original_message_id)
                if stored is not None and not stored.deleted:
                    record.original = copy.deepcopy(stored.payload)
            return record

    def interactions(self) -> list[EmuInteraction]:
        """Every interaction sent so far, oldest first."""
        with self._lock:
            return copy.deepcopy(list(self._interactions.values()))

    def messages(self, channel_id: int, *, include_ephemeral: bool = True) -> list[dict[str, Any]]:
        """The channel's current (not deleted) messages, oldest first, with full content."""
        with self._lock:
            return [
                copy.deepcopy(self._messages[m].payload)
                for m in self._channel_messages.get(channel_id, [])
                if not self._messages[m].deleted
                and (include_ephemeral or not self._messages[m].ephemeral)
            ]

    def get_message(self, message_id: int) -> dict[str, Any]:
        """One message's current payload (deleted ones too)."""
        with self._lock:
            return copy.deepcopy(self._messages[message_id].payload)

    def dm_messages(self, user_id: int) -> list[dict[str, Any]]:
        """Messages of the DM between the bot and a user, oldest first."""
        with self._lock:
            channel_id = self._dm_channels.get(user_id)
            return [] if channel_id is None else self.messages(channel_id)

    def deleted(self, channel_id: int) -> list[dict[str, Any]]:
        """Messages deleted in a channel, each with an added ``"deleted_by"`` user id."""
        with self._lock:
            result = []
            for message_id in self._channel_messages.get(channel_id, []):
                stored = self._messages[message_id]
                if stored.deleted:
                    item = copy.deepcopy(stored.payload)
                    item["deleted_by"] = str(stored.deleted_by)
                    result.append(item)
            return result

    def commands(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        """The application commands synced globally, or to one guild."""
        with self._lock:
            if guild_id is None:
                return copy.deepcopy(self._global_commands)
            return copy.deepcopy(self._guild_commands.get(guild_id, []))

    def attachment_bytes(self, attachment_id: int) -> bytes:
        """The bytes of an uploaded attachment."""
        with self._lock:
            return self._attachments[int(attachment_id)]

    def gateway_received(self) -> list[dict[str, Any]]:
        """Every frame the bot sent on the gateway (``{"op", "d"}``), oldest first."""
        with self._lock:
            return copy.deepcopy(self._gateway_log)

    @property
    def sessions(self) -> list[dict[str, Any]]:
        """Open gateway sessions: id, intents, seq, connected, compression."""
        with self._lock:
            return [
                {
                    "session_id": s.session_id,
                    "intents": s.intents,
                    "seq": s.seq,
                    "connected": s.connection is not None,
                    "compress": s.connection.compress if s.connection else None,
                }
                for s in self._sessions.values()
            ]

    @property
    def stats(self) -> dict[str, Any]:
        """Counters: requests, rate_limited (429s), global_rate_limited, invalid_requests,
        by_route (requests per route key)."""
        with self._lock:
            return copy.deepcopy(self._stats)

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Block until ``predicate()`` is truthy and return it (TimeoutError otherwise).

        Do not call this from the event loop that runs the bot: it would block
        the bot. Use `wait_for_async` there.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("condition not met in time")
                self._changed.wait(min(remaining, 0.05))

    async def wait_for_async(
        self,
        predicate: Callable[[], T],
        timeout: float = 5.0,  # noqa: ASYNC109 - the same signature as wait_for
    ) -> T:
        """Await until ``predicate()`` is truthy without blocking the caller's loop."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError("condition not met in time")
            await asyncio.sleep(0.01)

    async def wait_for_response(
        self,
        interaction: Any,
        timeout: float = 5.0,  # noqa: ASYNC109 - the same signature as wait_for
    ) -> InteractionRecord:
        """Await the bot's callback to an interaction and return its record."""

        def answered() -> InteractionRecord | None:
            record = self.responses(interaction)
            return record if record.callback_type is not None else None

        found = await self.wait_for_async(answered, timeout)
        assert found is not None
        return found

    # ------------------------------------------------------ test controls

    def inject_rate_limit(
        self,
        method: str = "*",
        route: str = "*",
        *,
        count: int = 1,
        retry_after: float = 0.05,
        is_global: bool = False,
        via: bool = True,
    ) -> None:
        """Answer the next ``count`` matching requests with 429.

        ``route`` is a template such as ``"/channels/{channel_id}/messages"``.
        ``via=False`` leaves out the ``Via`` header, which discord.py takes for a
        Cloudflare ban.
        """
        with self._lock:
            self._injected.append(
                _InjectedLimit(method.upper(), route, count, retry_after, is_global, via)
            )

    def set_route_limit(self, method: str, route: str, limit: int, per: float) -> None:
        """Change a per-route bucket: ``("POST", "/channels/{channel_id}/messages", 2, 0.5)``."""
        with self._lock:
            self._route_limits[f"{method.upper()} {route}"] = RouteLimit(limit, per)

    def reset_rate_limits(self) -> None:
        """Forget every bucket's usage and pending injected 429s."""
        with self._lock:
            self._windows.clear()
            self._global_window = _Window()
            self._injected.clear()

    def disconnect_bot(self, code: int = 4000, reason: str = "Unknown error.") -> None:
        """Close the bot's gateway connections with ``code`` (4000 lets discord.py RESUME)."""

        def close_all() -> None:
            for conn in list(self._connections):
                conn.close(code, reason)

        self._run_on_loop(close_all)

    def request_reconnect(self) -> None:
        """Send op 7 RECONNECT: the bot closes and resumes."""

        def send_all() -> None:
            for conn in list(self._connections):
                conn.send({"op": 7, "d": None, "s": None, "t": None})

        self._run_on_loop(send_all)


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description="Local Discord API + gateway emulator")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="emulator-bot-token")
    parser.add_argument("--bot-name", default="RoboTrader")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    emulator = DiscordEmulator(args.port, token=args.token, bot_name=args.bot_name).start()
    print(
        json.dumps(
            {
                "api_base": emulator.api_base,
                "gateway_url": emulator.gateway_url,
                "port": emulator.port,
                "bot_id": str(emulator.bot_user.id),
            }
        ),
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
