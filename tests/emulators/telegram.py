"""A local Telegram Bot API server for end-to-end tests.

Point the real python-telegram-bot ``Application`` at it::

    with TelegramEmulator(token=TOKEN) as emu:
        emu.add_user(1001, "Ana", language_code="pt-br")
        app = (
            Application.builder().token(TOKEN)
            .base_url(f"{emu.base_url}/bot")
            .base_file_url(f"{emu.base_url}/file/bot")
            .build()
        )
        ...                                   # start polling
        emu.user_sends(1001, "/start")        # the human
        reply = emu.wait_for(lambda m: m["chat"]["id"] == 1001)

What is emulated (Bot API as documented on core.telegram.org/bots/api):

* ``/bot<token>/<method>`` over GET and POST with query-string, JSON,
  form-urlencoded or multipart parameters; method names are case-insensitive
  as the documentation says. A malformed token answers 404 and a well-formed
  unknown token 401 ``Unauthorized`` (what the real server does, and what PTB
  maps to ``InvalidToken``); an unknown method answers 404 ``Not Found``.
* Updates: long polling ``getUpdates`` (offset confirmation, negative offset,
  limit, timeout that really waits, allowed_updates remembered between calls,
  a newer call terminating a pending one with 409) and webhooks
  (``setWebhook`` with secret_token / allowed_updates / drop_pending_updates,
  one POST per update with ``X-Telegram-Bot-Api-Secret-Token``, retries with
  the error shown in ``getWebhookInfo``, getUpdates answering 409 while set).
* Messages: sendMessage, sendPhoto, sendDocument, sendChatAction,
  editMessageText / Caption / ReplyMarkup, deleteMessage(s),
  answerCallbackQuery, bot commands per scope and language, getChat,
  getChatMember, getChatAdministrators, getFile and file download.
* Text formatting: MarkdownV2, HTML and legacy Markdown are parsed with the
  algorithm and the error texts of TDLib (which the Bot API server runs), so
  ``Bad Request: can't parse entities: ...`` comes back for the same inputs;
  entity offsets are in UTF-16 code units; text is trimmed and url, mention,
  hashtag, cashtag, email and bot_command entities are detected as Telegram
  does.
* Flood limits (Bot FAQ): 30 messages/s per bot, 1 message/s per chat and
  20 messages/min per group, answered with 429 and ``retry_after``. A send
  with ``allow_paid_broadcast`` (a paid broadcast) may go up to 1,000 a second
  bot-wide, counting every send; one without it still has only its 30.
* Failure injection (`fail_next`): the next calls of a method answered with
  an error (a 500 by default), as a Telegram having a bad moment.
* The human side (`add_user`, `add_group`, `user_sends`, `user_presses`,
  `bot_added_to_group`, `block`) and a record of what the bot did (`sent`,
  `deleted`, `wait_for`, `callback_answers`, `commands`, `requests`,
  `stats`).
* ``/_emulator/...`` control endpoints and ``python -m tests.emulators.telegram
  --port N --token T`` for a bot running in another process.

Only 127.0.0.0/8 (and ::1 / localhost) is ever contacted: webhook URLs
elsewhere are refused and photo URLs are never fetched.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import ipaddress
import itertools
import json
import re
import secrets
import signal
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiohttp import web

from .server import ThreadedServer

JSONDict = dict[str, Any]
MessagePredicate = Callable[[JSONDict], bool]

DEFAULT_TOKEN = "5000000001:AAEmulatedTokenForRoboTraderTests_0123"
DEFAULT_BOT_USERNAME = "robotrader_test_bot"
DEFAULT_BOT_NAME = "RoboTrader"

# Limits from the Bot API documentation.
MAX_MESSAGE_LENGTH = 4096  # sendMessage.text: 1-4096 characters after entities parsing
MAX_CAPTION_LENGTH = 1024  # sendPhoto.caption: 0-1024 characters after entities parsing
MAX_CALLBACK_DATA_BYTES = 64  # InlineKeyboardButton.callback_data: 1-64 bytes
MAX_COMMANDS = 100  # setMyCommands: at most 100 commands
MAX_COMMAND_LENGTH = 32  # BotCommand.command: 1-32 characters
MAX_COMMAND_DESCRIPTION_LENGTH = 256  # BotCommand.description: 1-256 characters
MAX_UPDATES_LIMIT = 100  # getUpdates.limit: 1-100
CALLBACK_QUERY_TTL_S = 15 * 60  # answers after ~15 minutes are "too old"
MAX_UPLOAD_BYTES = 50 * 1024 * 1024

SECRET_TOKEN_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Update types that are only delivered when listed in allowed_updates.
OPT_IN_UPDATE_TYPES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
SEND_METHODS = frozenset({"sendMessage", "sendPhoto", "sendDocument"})
EDIT_METHODS = frozenset({"editMessageText", "editMessageCaption", "editMessageReplyMarkup"})

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"

_TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
_COMMAND_RE = re.compile(r"^[a-z0-9_]+$")
_LANGUAGE_CODE_RE = re.compile(r"^[a-z]{2}$")
_SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------
class ApiError(Exception):
    """A Bot API error answer: ``{"ok": false, "error_code", "description"}``."""

    def __init__(self, status: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> JSONDict:
        """The JSON body Telegram sends for this error."""
        body: JSONDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


def _forbidden(detail: str) -> ApiError:
    return ApiError(403, f"Forbidden: {detail}")


class EntityParseError(ValueError):
    """Markup that Telegram refuses; the text is TDLib's own error message."""


# ---------------------------------------------------------------------------
# Text formatting (a port of TDLib's parse_markdown_v2 / parse_html /
# parse_markdown, which produce the texts of "can't parse entities" errors)
# ---------------------------------------------------------------------------
_BACKSLASH, _NL, _CR = 0x5C, 0x0A, 0x0D
_STAR, _UNDERSCORE, _TILDE, _PIPE, _BACKTICK = 0x2A, 0x5F, 0x7E, 0x7C, 0x60
_LBRACKET, _RBRACKET, _LPAREN, _RPAREN = 0x5B, 0x5D, 0x28, 0x29
_BANG, _GT, _LT, _AMP, _HASH, _SLASH, _EQ, _SEMI = 0x21, 0x3E, 0x3C, 0x26, 0x23, 0x2F, 0x3D, 0x3B
_DQUOTE, _SQUOTE, _DOT, _MINUS = 0x22, 0x27, 0x2E, 0x2D
_MDV2_RESERVED = b"_*[]()~`>#+-=|{}.!\n"
_ENTITY_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "pre_code": "PreCode",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
    "blockquote": "BlockQuote",
}
_HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (the unit of entity offsets)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _units(byte: int) -> int:
    """UTF-16 code units contributed by one UTF-8 byte (0 for continuation bytes)."""
    if byte & 0xC0 == 0x80:
        return 0
    return 2 if byte >= 0xF0 else 1


def _is_space(byte: int) -> bool:
    return byte in (0x20, 0x09, 0x0D, 0x0A, 0x00, 0x0B)


def _decode(data: bytes | bytearray) -> str:
    return bytes(data).decode("utf-8", "surrogatepass")


def _reserved(byte: int) -> EntityParseError:
    return EntityParseError(
        f"Character '{chr(byte)}' is reserved and must be escaped with the preceding '\\'"
    )


def _entity(kind: str, offset: int, length: int, argument: str = "") -> JSONDict:
    if kind == "pre_code":
        return {"type": "pre", "offset": offset, "length": length, "language": argument}
    entity: JSONDict = {"type": kind, "offset": offset, "length": length}
    if kind == "text_link":
        entity["url"] = argument
    elif kind == "custom_emoji":
        entity["custom_emoji_id"] = argument
    return entity


def _sorted_entities(entities: list[JSONDict]) -> list[JSONDict]:
    return sorted(entities, key=lambda e: (e["offset"], -e["length"]))


def _custom_emoji_id(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.lower() != "tg":
        raise EntityParseError("Custom emoji URL must have scheme tg")
    if parts.netloc.lower() != "emoji":
        raise EntityParseError('Custom emoji URL must have host "emoji"')
    ids = parse_qs(parts.query).get("id")
    if not ids:
        raise EntityParseError("Custom emoji URL must have an emoji identifier")
    if not ids[0].isdigit() or ids[0].startswith("0"):
        raise EntityParseError("Invalid custom emoji identifier specified")
    return ids[0]


@dataclass
class _OpenEntity:
    kind: str
    argument: str
    utf16_offset: int
    byte_offset: int
    out_pos: int


def _closes(kind: str, byte: int, next1: int, next2: int) -> bool:
    if kind == "bold":
        return byte == _STAR
    if kind == "italic":
        return byte == _UNDERSCORE and next1 != _UNDERSCORE
    if kind == "underline":
        return byte == _UNDERSCORE and next1 == _UNDERSCORE
    if kind == "code":
        return byte == _BACKTICK
    if kind in ("pre", "pre_code"):
        return byte == _BACKTICK and next1 == _BACKTICK and next2 == _BACKTICK
    if kind in ("text_link", "custom_emoji"):
        return byte == _RBRACKET
    if kind == "strikethrough":
        return byte == _TILDE
    if kind == "spoiler":
        return byte == _PIPE and next1 == _PIPE
    return False  # a blockquote ends at a line that does not start with '>'


def parse_markdown_v2(text: str) -> tuple[str, list[JSONDict]]:
    """Parse MarkdownV2 like Telegram; return (plain text, entities).

    Raises `EntityParseError` with TDLib's message (e.g. ``Character '.' is
    reserved and must be escaped with the preceding '\\'``). ``text_link``
    entities carry the raw URL; `TelegramEmulator` checks it afterwards.
    Not supported: the ``**>`` expandable block quotation.
    """
    src = text.encode("utf-8", "surrogatepass")
    size = len(src)

    def at(pos: int) -> int:
        return src[pos] if pos < size else 0

    def read_url(pos: int) -> tuple[str, int]:
        buf = bytearray()
        while pos < size and src[pos] != _RPAREN:
            if src[pos] == _BACKSLASH and 0 < at(pos + 1) <= 126:
                buf.append(src[pos + 1])
                pos += 2
                continue
            buf.append(src[pos])
            pos += 1
        return _decode(buf), pos

    out = bytearray()
    entities: list[JSONDict] = []
    stack: list[_OpenEntity] = []
    utf16 = 0
    in_blockquote = False
    i = -1
    while True:
        i += 1
        if i >= size:
            break
        c = src[i]
        if c == _BACKSLASH and 0 < at(i + 1) <= 126:
            i += 1
            utf16 += 1
            out.append(src[i])
            continue
        reserved = _MDV2_RESERVED
        if stack and stack[-1].kind in ("code", "pre", "pre_code"):
            reserved = b"`"
        if c not in reserved:
            utf16 += _units(c)
            out.append(c)
            continue

        is_end = False
        if stack:
            if in_blockquote and c == _NL and (i + 1 == size or src[i + 1] != _GT):
                is_end = True
            else:
                is_end = _closes(stack[-1].kind, c, at(i + 1), at(i + 2))

        if not is_end:
            byte_offset = i
            argument = ""
            kind: str | None
            if c == _UNDERSCORE:
                if at(i + 1) == _UNDERSCORE:
                    kind = "underline"
                    i += 1
                else:
                    kind = "italic"
            elif c == _STAR:
                kind = "bold"
            elif c == _TILDE:
                kind = "strikethrough"
            elif c == _PIPE:
                if at(i + 1) != _PIPE:
                    raise _reserved(c)
                i += 1
                kind = "spoiler"
            elif c == _LBRACKET:
                kind = "text_link"
            elif c == _BACKTICK:
                if at(i + 1) == _BACKTICK and at(i + 2) == _BACKTICK:
                    i += 3
                    kind = "pre"
                    language_end = i
                    while not _is_space(at(language_end)) and at(language_end) != _BACKTICK:
                        language_end += 1
                    if i != language_end and language_end < size and at(language_end) != _BACKTICK:
                        kind = "pre_code"
                        argument = _decode(src[i:language_end])
                        i = language_end
                    if at(i) in (_NL, _CR):  # one new line after ``` is skipped
                        if at(i + 1) in (_NL, _CR) and at(i) != at(i + 1):
                            i += 2
                        else:
                            i += 1
                    i -= 1
                else:
                    kind = "code"
            elif c == _BANG:
                if at(i + 1) != _LBRACKET:
                    raise _reserved(c)
                i += 1
                kind = "custom_emoji"
            elif c == _NL:
                utf16 += 1
                out.append(_NL)
                kind = None
                if i + 1 < size and src[i + 1] == _GT:
                    i += 1
                    if not in_blockquote:
                        kind = "blockquote"
                        in_blockquote = True
            elif c == _GT:
                if i != 0:
                    raise _reserved(c)
                kind = "blockquote"
                in_blockquote = True
            else:
                raise _reserved(c)
            if kind is not None:
                stack.append(_OpenEntity(kind, argument, utf16, byte_offset, len(out)))
            continue

        top = stack[-1]
        if c == _NL and top.kind != "blockquote":
            raise EntityParseError(
                f"Can't find end of {_ENTITY_NAMES[top.kind]} entity "
                f"at byte offset {top.byte_offset}"
            )
        skip = utf16 == top.utf16_offset
        argument = top.argument
        if top.kind in ("underline", "spoiler"):
            i += 1
        elif top.kind in ("pre", "pre_code"):
            i += 2
        elif top.kind == "text_link":
            if at(i + 1) != _LPAREN:
                argument = _decode(out[top.out_pos :])
            else:
                url_begin = i + 2
                argument, i = read_url(url_begin)
                if at(i) != _RPAREN:
                    raise EntityParseError(f"Can't find end of a URL at byte offset {url_begin}")
        elif top.kind == "custom_emoji":
            if at(i + 1) != _LPAREN:
                raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
            url_begin = i + 2
            url, i = read_url(url_begin)
            if at(i) != _RPAREN:
                raise EntityParseError(
                    f"Can't find end of a custom emoji URL at byte offset {url_begin}"
                )
            argument = _custom_emoji_id(url)
        elif top.kind == "blockquote":
            in_blockquote = False
            out.append(_NL)
            utf16 += 1
        if not skip:
            entities.append(_entity(top.kind, top.utf16_offset, utf16 - top.utf16_offset, argument))
        stack.pop()

    if in_blockquote and stack and stack[-1].kind == "blockquote":
        top = stack.pop()
        if utf16 > top.utf16_offset:
            entities.append(_entity("blockquote", top.utf16_offset, utf16 - top.utf16_offset))
    if stack:
        top = stack[-1]
        raise EntityParseError(
            f"Can't find end of {_ENTITY_NAMES[top.kind]} entity at byte offset {top.byte_offset}"
        )
    return _decode(out), _sorted_entities(entities)


def parse_markdown(text: str) -> tuple[str, list[JSONDict]]:
    """Parse legacy ``Markdown`` (v1) like Telegram; return (plain text, entities)."""
    src = text.encode("utf-8", "surrogatepass")
    size = len(src)

    def at(pos: int) -> int:
        return src[pos] if pos < size else 0

    out = bytearray()
    entities: list[JSONDict] = []
    utf16 = 0
    i = 0
    while i < size:
        c = src[i]
        if c == _BACKSLASH and at(i + 1) in (_UNDERSCORE, _STAR, _BACKTICK, _LBRACKET):
            out.append(src[i + 1])
            utf16 += 1
            i += 2
            continue
        if c not in (_UNDERSCORE, _STAR, _BACKTICK, _LBRACKET):
            utf16 += _units(c)
            out.append(c)
            i += 1
            continue
        begin = i
        end_char = _RBRACKET if c == _LBRACKET else c
        is_pre = False
        language = ""
        i += 1
        if c == _BACKTICK and at(i) == _BACKTICK and at(i + 1) == _BACKTICK:
            i += 2
            is_pre = True
            language_end = i
            while not _is_space(at(language_end)) and at(language_end) != _BACKTICK:
                language_end += 1
            if i != language_end and language_end < size and at(language_end) != _BACKTICK:
                language = _decode(src[i:language_end])
                i = language_end
            if at(i) in (_NL, _CR):
                i += 2 if at(i + 1) in (_NL, _CR) and at(i) != at(i + 1) else 1
        entity_offset = utf16
        while i < size and (
            src[i] != end_char
            or (is_pre and not (at(i + 1) == _BACKTICK and at(i + 2) == _BACKTICK))
        ):
            utf16 += _units(src[i])
            out.append(src[i])
            i += 1
        if i == size:
            raise EntityParseError(f"Can't find end of the entity starting at byte offset {begin}")
        if entity_offset != utf16:
            length = utf16 - entity_offset
            if c == _UNDERSCORE:
                entities.append(_entity("italic", entity_offset, length))
            elif c == _STAR:
                entities.append(_entity("bold", entity_offset, length))
            elif c == _LBRACKET:
                if at(i + 1) != _LPAREN:
                    url = _decode(src[begin + 1 : i])
                else:
                    i += 2
                    url_start = i
                    while i < size and src[i] != _RPAREN:
                        i += 1
                    url = _decode(src[url_start:i])
                entities.append(_entity("text_link", entity_offset, length, url))
            elif is_pre:
                kind = "pre_code" if language else "pre"
                entities.append(_entity(kind, entity_offset, length, language))
            else:
                entities.append(_entity("code", entity_offset, length))
        if is_pre:
            i += 2
        i += 1
    return _decode(out), _sorted_entities(entities)


def _decode_html_entity(src: bytes, pos: int) -> tuple[int, int]:
    """Decode ``&...;`` at ``pos``; return (code point or 0, position after it)."""
    size = len(src)

    def at(p: int) -> int:
        return src[p] if p < size else 0

    end = pos + 1
    code = 0
    if at(pos + 1) == _HASH:
        end += 1
        if at(pos + 2) == ord("x"):
            end += 1
            while at(end) and chr(at(end)) in "0123456789abcdefABCDEF":
                code = code * 16 + int(chr(at(end)), 16)
                end += 1
        else:
            while 0x30 <= at(end) <= 0x39:
                code = code * 10 + at(end) - 0x30
                end += 1
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return 0, pos
    else:
        while at(end) and chr(at(end)).isascii() and chr(at(end)).isalpha():
            end += 1
        named = {b"lt": 0x3C, b"gt": 0x3E, b"amp": 0x26, b"quot": 0x22}.get(src[pos + 1 : end])
        if named is None:
            return 0, pos
        code = named
    if at(end) == _SEMI:
        end += 1
    return code, end


@dataclass
class _OpenTag:
    tag: str
    argument: str
    utf16_offset: int
    out_pos: int


def parse_html(text: str) -> tuple[str, list[JSONDict]]:
    """Parse Telegram's HTML subset; return (plain text, entities).

    Supported tags (as documented): b, strong, i, em, u, ins, s, strike, del,
    span class="tg-spoiler", tg-spoiler, a href, tg-emoji, code, pre,
    blockquote [expandable]; entities &lt; &gt; &amp; &quot; and numeric ones.
    Raises `EntityParseError` with TDLib's message (``Unsupported start tag
    "div" at byte offset 0``, ``Can't find end tag corresponding to start tag
    "b"``, ...).
    """
    src = text.encode("utf-8", "surrogatepass")
    size = len(src)

    def at(pos: int) -> int:
        return src[pos] if pos < size else 0

    out = bytearray()
    entities: list[JSONDict] = []
    stack: list[_OpenTag] = []
    utf16 = 0
    i = 0
    while i < size:
        c = src[i]
        if c == _AMP:
            code, end = _decode_html_entity(src, i)
            if code:
                utf16 += 2 if code > 0xFFFF else 1
                out += chr(code).encode("utf-8", "surrogatepass")
                i = end
                continue
        if c != _LT:
            utf16 += _units(c)
            out.append(c)
            i += 1
            continue

        begin = i
        i += 1
        if at(i) != _SLASH:
            while not _is_space(at(i)) and at(i) != _GT:
                i += 1
            if at(i) == 0:
                raise EntityParseError(f"Unclosed start tag at byte offset {begin}")
            tag = _decode(src[begin + 1 : i]).lower()
            if tag not in _HTML_TAGS:
                raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {begin}')
            argument = ""
            while at(i) != _GT:
                while at(i) != 0 and _is_space(at(i)):
                    i += 1
                if at(i) == _GT:
                    break
                name_begin = i
                while not _is_space(at(i)) and at(i) not in (_EQ, _GT):
                    i += 1
                name = _decode(src[name_begin:i])
                if not name:
                    raise EntityParseError(
                        f'Empty attribute name in the tag "{tag}" at byte offset {begin}'
                    )
                while at(i) != 0 and _is_space(at(i)):
                    i += 1
                value = ""
                if at(i) == _EQ:
                    i += 1
                    while at(i) != 0 and _is_space(at(i)):
                        i += 1
                    if at(i) == 0:
                        raise EntityParseError(f'Unclosed start tag "{tag}" at byte offset {begin}')
                    if at(i) not in (_DQUOTE, _SQUOTE):
                        token_begin = i
                        while at(i) in (_DOT, _MINUS) or (
                            at(i) and chr(at(i)).isascii() and chr(at(i)).isalnum()
                        ):
                            i += 1
                        value = _decode(src[token_begin:i]).lower()
                        if not _is_space(at(i)) and at(i) != _GT:
                            raise EntityParseError(
                                f"Unexpected end of name token at byte offset {token_begin}"
                            )
                    else:
                        quote = at(i)
                        i += 1
                        buf = bytearray()
                        while at(i) != quote and at(i) != 0:
                            if at(i) == _AMP:
                                code, end = _decode_html_entity(src, i)
                                if code:
                                    buf += chr(code).encode("utf-8", "surrogatepass")
                                    i = end
                                    continue
                            buf.append(at(i))
                            i += 1
                        if at(i) == quote:
                            i += 1
                        value = _decode(buf)
                if at(i) == 0:
                    raise EntityParseError(f"Unclosed start tag at byte offset {begin}")
                if tag == "a" and name == "href":
                    argument = value
                elif tag == "code" and name == "class" and value.startswith("language-"):
                    argument = value[len("language-") :]
                elif tag == "span" and name == "class" and value.startswith("tg-"):
                    argument = value[len("tg-") :]
                elif tag == "tg-emoji" and name == "emoji-id":
                    argument = value
                elif tag == "blockquote" and name == "expandable":
                    argument = "expandable"
            if tag == "span" and argument != "spoiler":
                raise EntityParseError(
                    f'Tag "span" must have class "tg-spoiler" at byte offset {begin}'
                )
            stack.append(_OpenTag(tag, argument, utf16, len(out)))
        else:
            if not stack:
                raise EntityParseError(f"Unexpected end tag at byte offset {begin}")
            while not _is_space(at(i)) and at(i) != _GT:
                i += 1
            end_tag = _decode(src[begin + 2 : i]).lower()
            while at(i) != 0 and _is_space(at(i)):
                i += 1
            if at(i) != _GT:
                raise EntityParseError(f"Unclosed end tag at byte offset {begin}")
            top = stack[-1]
            if end_tag and end_tag != top.tag:
                raise EntityParseError(
                    f'Unmatched end tag at byte offset {begin}, expected "</{top.tag}>", '
                    f'found "</{end_tag}>"'
                )
            if utf16 > top.utf16_offset:
                _close_html_tag(top, utf16 - top.utf16_offset, out, entities)
            stack.pop()
        i += 1  # past '>'

    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    for entity in entities:
        entity.pop("_language", None)
    try:
        plain = bytes(out).decode("utf-8")
    except UnicodeDecodeError:
        raise EntityParseError(
            "Text contains invalid Unicode characters after decoding HTML entities, "
            "check for unmatched surrogate code units"
        ) from None
    return plain, _sorted_entities(entities)


def _close_html_tag(top: _OpenTag, length: int, out: bytearray, entities: list[JSONDict]) -> None:
    offset = top.utf16_offset
    tag = top.tag
    simple = {
        "i": "italic",
        "em": "italic",
        "b": "bold",
        "strong": "bold",
        "s": "strikethrough",
        "strike": "strikethrough",
        "del": "strikethrough",
        "u": "underline",
        "ins": "underline",
        "tg-spoiler": "spoiler",
        "span": "spoiler",
    }
    last = entities[-1] if entities else None
    same_span = last is not None and last["offset"] == offset and last["length"] == length
    if tag in simple:
        entities.append(_entity(simple[tag], offset, length))
    elif tag == "tg-emoji":
        if not top.argument.isdigit() or int(top.argument) == 0:
            raise EntityParseError("Invalid custom emoji identifier specified")
        entities.append(_entity("custom_emoji", offset, length, top.argument))
    elif tag == "a":
        url = top.argument or _decode(out[top.out_pos :])
        entities.append(_entity("text_link", offset, length, url))
    elif tag == "pre":
        if last is not None and same_span and last["type"] == "code" and last.get("_language"):
            language = last.pop("_language")
            last.clear()
            last.update(_entity("pre_code", offset, length, language))
        else:
            entities.append(_entity("pre", offset, length))
    elif tag == "code":
        if last is not None and same_span and last["type"] == "pre" and top.argument:
            last["language"] = top.argument
        else:
            code = _entity("code", offset, length)
            if top.argument:
                code["_language"] = top.argument
            entities.append(code)
    else:  # blockquote
        kind = "expandable_blockquote" if top.argument == "expandable" else "blockquote"
        entities.append(_entity(kind, offset, length))


_PARSERS: dict[str, Callable[[str], tuple[str, list[JSONDict]]]] = {
    "markdownv2": parse_markdown_v2,
    "html": parse_html,
    "markdown": parse_markdown,
}

_AUTO_ENTITY_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("url", re.compile(r"(?<![\w@/.])https?://[^\s<>\"']+", re.IGNORECASE)),
    (
        "email",
        re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
    ),
    (
        "bot_command",
        re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>])"),
    ),
    ("mention", re.compile(r"(?<![\w@])@[A-Za-z0-9_]{3,32}(?!\w)")),
    ("hashtag", re.compile(r"(?<![\w#])#(?=\w*[^\W\d_])\w{1,256}(?![\w#])")),
    ("cashtag", re.compile(r"(?<![\w$])\$(?:1INCH|[A-Z]{1,8})(?![\w$])")),
)
_NO_AUTO_INSIDE = frozenset({"code", "pre", "text_link", "text_mention", "custom_emoji"})


def find_auto_entities(text: str, existing: Iterable[JSONDict] = ()) -> list[JSONDict]:
    """Entities Telegram detects by itself (url, email, bot_command, mention, ...).

    Nothing is detected inside code, pre and link entities of ``existing``.
    """
    blocked = [
        (e["offset"], e["offset"] + e["length"]) for e in existing if e["type"] in _NO_AUTO_INSIDE
    ]
    taken: list[tuple[int, int]] = []
    found: list[JSONDict] = []
    for kind, pattern in _AUTO_ENTITY_PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.start(), match.end()
            if kind == "url":
                while end > start and text[end - 1] in ".,;:!?)]'\"":
                    end -= 1
            offset = utf16_len(text[:start])
            length = utf16_len(text[start:end])
            span = (offset, offset + length)
            if any(a < span[1] and span[0] < b for a, b in blocked + taken):
                continue
            taken.append(span)
            found.append({"type": kind, "offset": offset, "length": length})
    return found


def trim_formatted(text: str, entities: list[JSONDict]) -> tuple[str, list[JSONDict]]:
    """Strip leading/trailing whitespace as Telegram does, keeping entities aligned."""
    stripped_left = text.lstrip(" \t\r\n")
    lead = utf16_len(text[: len(text) - len(stripped_left)])
    result = stripped_left.rstrip(" \t\r\n")
    new_length = utf16_len(result)
    kept: list[JSONDict] = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, new_length)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return result, kept


_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_DOMAIN_RE = re.compile(r"^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?::\d+)?$")


def checked_link(url: str) -> str | None:
    """Normalise a link as Telegram does (``t.me`` -> ``http://t.me/``) or None if invalid."""
    url = url.strip()
    if not url or any(ch.isspace() for ch in url):
        return None
    scheme_match = _SCHEME_RE.match(url)
    if scheme_match is None:
        if url.lower().startswith(("tg:", "ton:")):
            return url
        host = re.split(r"[/?#]", url, maxsplit=1)[0]
        if not _DOMAIN_RE.match(host):
            return None
        url = "http://" + url
        scheme_match = _SCHEME_RE.match(url)
        assert scheme_match is not None
    scheme = scheme_match.group(1).lower()
    if scheme in ("tg", "ton"):
        return url
    if scheme not in ("http", "https"):
        return None
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    if not parts.path:
        prefix = url[: scheme_match.end() + len(parts.netloc)]
        url = prefix + "/" + url[len(prefix) :]
    return url


# ---------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RequestRecord:
    """One Bot API call as the emulator answered it.

    ``time`` (epoch seconds) and ``monotonic`` are taken when the request was
    handled, i.e. for an accepted send the moment Telegram accepted it.
    """

    method: str
    chat_id: int | str | None
    status: int
    time: float
    monotonic: float
    description: str | None = None
    message_id: int | None = None
    paid: bool = False  # sent with allow_paid_broadcast


@dataclass(frozen=True)
class Stats:
    """Counters since start (or `reset_records`)."""

    requests: int
    by_method: dict[str, int]
    messages_sent: int
    edits: int
    rate_limited: int
    errors: int


@dataclass
class RateLimits:
    """Flood limits enforced by the emulator (see `TelegramEmulator.set_limits`)."""

    enabled: bool = True
    global_per_s: int = 30  # sends without allow_paid_broadcast
    paid_global_per_s: int = 1000  # every send, checked for those with allow_paid_broadcast
    per_chat_per_s: int = 1
    group_per_min: int = 20
    edits_per_chat_per_s: int = 1
    count_edits_globally: bool = True
    global_window_s: float = 1.0
    chat_window_s: float = 1.0
    group_window_s: float = 60.0


@dataclass
class _InjectedFailure:
    method: str
    remaining: int
    status: int
    description: str


@dataclass
class _StoredMessage:
    message: JSONDict
    from_bot: bool
    deleted: bool = False
    edits: int = 0
    reply_keyboard: JSONDict | None = None


@dataclass
class _Chat:
    info: JSONDict  # the Chat object as embedded in messages
    bot_status: str = "member"  # member / administrator / left / kicked
    bot_rights: JSONDict = field(default_factory=dict)
    owner_id: int | None = None
    members: set[int] = field(default_factory=set)
    messages: dict[int, _StoredMessage] = field(default_factory=dict)
    next_message_id: int = 1

    @property
    def id(self) -> int:
        return int(self.info["id"])

    @property
    def type(self) -> str:
        return str(self.info["type"])

    @property
    def is_group(self) -> bool:
        return self.type in ("group", "supergroup")


@dataclass
class _Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    ip_address: str | None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class _CallbackQuery:
    created: float
    user_id: int
    chat_id: int
    message_id: int
    answered: bool = False


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str
    mime_type: str | None
    file_name: str | None
    photo: list[JSONDict] | None = None


@dataclass
class UploadedFile:
    """A file part of a multipart request."""

    filename: str | None
    data: bytes
    content_type: str | None


class Params:
    """Request parameters from the query string, a JSON body or a form.

    Form values arrive as strings (python-telegram-bot JSON-encodes objects and
    sends ``true``/``false``); JSON bodies carry native values. Getters accept
    both, as the Bot API does.
    """

    def __init__(self, values: JSONDict, files: dict[str, UploadedFile]) -> None:
        self.values = values
        self.files = files

    def raw(self, name: str) -> Any:
        """The value as received, or None."""
        return self.values.get(name)

    def has(self, name: str) -> bool:
        """True when the parameter is present and not empty."""
        value = self.values.get(name)
        return value is not None and value != ""

    def text(self, name: str) -> str | None:
        """A string parameter (numbers are converted)."""
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        return json.dumps(value)

    def integer(self, name: str, *, required: bool = False) -> int | None:
        """An integer parameter; ``<name> is empty`` when required and missing."""
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise _bad_request(f"{name} is empty")
            return None
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise _bad_request(f"invalid {name} specified")

    def boolean(self, name: str) -> bool:
        """A boolean parameter (``true``/``1`` are true); False when missing."""
        value = self.values.get(name)
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1")
        return bool(value)

    def json_value(self, name: str, *, error: str | None = None) -> Any:
        """A JSON-serialized parameter, decoded."""
        value = self.values.get(name)
        if isinstance(value, str):
            if value == "":
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise _bad_request(error or f"can't parse {name} JSON object") from None
        return value


@dataclass(frozen=True)
class _Method:
    name: str
    handler: Callable[[Params], Any]
    description: Callable[[Any], str | None] | None = None


# ---------------------------------------------------------------------------
# Media helpers
# ---------------------------------------------------------------------------
def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, GIF, JPEG or WebP image, None if not an image."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data.startswith(b"\xff\xd8"):
        pos = 2
        while pos + 9 < len(data):
            if data[pos] != 0xFF:
                pos += 1
                continue
            marker = data[pos + 1]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
                return int(width), int(height)
            if marker in (0xD8, 0x01, 0xFF) or 0xD0 <= marker <= 0xD7:
                pos += 1 if marker == 0xFF else 2
                continue
            (segment,) = struct.unpack(">H", data[pos + 2 : pos + 4])
            pos += 2 + int(segment)
        return None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            width = 1 + int.from_bytes(data[24:27], "little")
            height = 1 + int.from_bytes(data[27:30], "little")
            return width, height
        if chunk == b"VP8 ":
            width = int.from_bytes(data[26:28], "little") & 0x3FFF
            height = int.from_bytes(data[28:30], "little") & 0x3FFF
            return width, height
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def is_loopback_host(host: str | None) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------------------
# The emulator
# ---------------------------------------------------------------------------
class TelegramEmulator(ThreadedServer):
    """A Telegram Bot API server for one bot, on 127.0.0.1.

    All state lives behind one lock, so the user-side and record methods can
    be called from the test thread while the server answers the bot from its
    own thread. Point PTB at ``f"{emu.base_url}/bot"`` (``api_base_url``) and
    ``f"{emu.base_url}/file/bot"`` (``file_base_url``).
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        port: int = 0,
        bot_username: str = DEFAULT_BOT_USERNAME,
        bot_first_name: str = DEFAULT_BOT_NAME,
        privacy_mode: bool = True,
        rate_limits: bool = True,
    ) -> None:
        """Create the emulator; ``token`` must look like ``<bot id>:<secret>``."""
        super().__init__(port)
        if not _TOKEN_RE.match(token):
            raise ValueError(f"token {token!r} is not of the form <bot id>:<secret>")
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.privacy_mode = privacy_mode
        self.limits = RateLimits(enabled=rate_limits)

        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._users: dict[int, JSONDict] = {}
        self._started_users: set[int] = set()
        self._blocked: set[int] = set()
        self._chats: dict[int, _Chat] = {}
        self._bot_messages: list[_StoredMessage] = []
        self._deleted: dict[int, list[int]] = {}
        self._chat_actions: list[JSONDict] = []
        self._updates: list[JSONDict] = []
        self._next_update_id = 700_000_001
        self._allowed_updates: list[str] | None = None
        self._webhook: _Webhook | None = None
        self._callback_queries: dict[str, _CallbackQuery] = {}
        self._callback_ids = itertools.count(4_400_000_000_000_000_001)
        self._callback_answers: list[JSONDict] = []
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._profile: dict[tuple[str, str], str] = {}
        self._menu_buttons: dict[int | None, JSONDict] = {}
        self._files: dict[str, _StoredFile] = {}
        self._file_paths: dict[str, _StoredFile] = {}
        self._file_counter = itertools.count(1)
        self._requests: list[RequestRecord] = []
        self._by_method: Counter[str] = Counter()
        self._rate_limited = 0
        self._errors = 0
        self._sends_global: deque[float] = deque()  # counted calls not paid for
        self._sends_all: deque[float] = deque()  # every counted call (the paid limit's)
        self._failures: list[_InjectedFailure] = []
        self._sends_chat: dict[int, deque[float]] = {}
        self._sends_group: dict[int, deque[float]] = {}
        self._edits_chat: dict[int, deque[float]] = {}

        # Only touched on the server loop.
        self._update_event: asyncio.Event | None = None
        self._poll_generation = 0
        self._closing = False
        self._webhook_task: asyncio.Task[None] | None = None
        self._methods = self._method_table()

    # -- addresses -----------------------------------------------------------
    @property
    def api_base_url(self) -> str:
        """What to pass to PTB's ``base_url`` (the token is appended by PTB)."""
        return f"{self.base_url}/bot"

    @property
    def file_base_url(self) -> str:
        """What to pass to PTB's ``base_file_url``."""
        return f"{self.base_url}/file/bot"

    def file_bytes(self, file_id: str) -> bytes:
        """The bytes of a file the bot uploaded (what getFile and its download give)."""
        with self._lock:
            return self._files[file_id].data

    @property
    def bot_user(self) -> JSONDict:
        """The bot as a User object (as in ``from`` of its messages)."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    # -- the human side ------------------------------------------------------
    def add_user(
        self,
        user_id: int,
        first_name: str,
        language_code: str | None = "pt-br",
        username: str | None = None,
        *,
        last_name: str | None = None,
        started: bool = True,
    ) -> JSONDict:
        """Register a human and their private chat with the bot; return the User.

        ``started=False`` models a user who never opened the bot: sends to
        them answer 403 ``Forbidden: bot can't initiate conversation with a
        user`` until they write to the bot.
        """
        if user_id <= 0:
            raise ValueError("user ids are positive")
        user: JSONDict = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        chat: JSONDict = {"id": user_id, "first_name": first_name}
        if last_name:
            chat["last_name"] = last_name
        if username:
            chat["username"] = username
        chat["type"] = "private"
        with self._lock:
            self._users[user_id] = user
            existing = self._chats.get(user_id)
            if existing is None:
                self._chats[user_id] = _Chat(info=chat, members={user_id})
            else:
                existing.info = chat
            if started:
                self._started_users.add(user_id)
            return copy.deepcopy(user)

    def add_group(
        self,
        chat_id: int,
        title: str,
        bot_can_delete: bool = True,
        *,
        chat_type: str | None = None,
        username: str | None = None,
        bot_is_member: bool = True,
        bot_is_admin: bool | None = None,
        owner_id: int | None = None,
    ) -> JSONDict:
        """Register a group the bot is in; return the Chat.

        ``chat_type`` defaults to ``supergroup`` for ids starting with -100
        and ``group`` otherwise. The bot is an administrator (with
        ``can_delete_messages=bot_can_delete``) when ``bot_is_admin`` is true,
        which defaults to ``bot_can_delete``.
        """
        if chat_id >= 0:
            raise ValueError("group ids are negative")
        if chat_type is None:
            chat_type = "supergroup" if str(chat_id).startswith("-100") else "group"
        if chat_type not in ("group", "supergroup"):
            raise ValueError("chat_type is group or supergroup")
        admin = bot_can_delete if bot_is_admin is None else bot_is_admin
        info: JSONDict = {"id": chat_id, "title": title, "type": chat_type}
        if username:
            info["username"] = username
        status = "left" if not bot_is_member else ("administrator" if admin else "member")
        with self._lock:
            chat = _Chat(info=info, bot_status=status, owner_id=owner_id)
            chat.bot_rights = self._admin_rights(can_delete=bot_can_delete) if admin else {}
            if owner_id is not None:
                chat.members.add(owner_id)
            self._chats[chat_id] = chat
            return copy.deepcopy(info)

    def user_sends(
        self,
        user_id: int,
        text: str,
        chat_id: int | None = None,
        *,
        reply_to: JSONDict | int | None = None,
        entities: list[JSONDict] | None = None,
        address_commands: bool = True,
    ) -> JSONDict:
        """The user writes ``text`` (privately by default); return the Message.

        Entities are detected as Telegram does (``/start`` is a bot_command).
        In groups a leading command gets ``@<bot username>`` appended, as
        clients do when a command is picked from the menu (turn off with
        ``address_commands=False``). With privacy mode on and the bot not an
        administrator, group messages that are neither commands nor replies
        to the bot are stored but not delivered, as on Telegram. Writing to a
        bot the user blocked unblocks it (the client's "Restart").
        """
        with self._lock:
            user = self._require_user(user_id)
            chat = self._chats[user_id] if chat_id is None else self._require_chat(chat_id)
            if chat.type == "private":
                if chat.id != user_id:
                    raise ValueError("a user only writes in their own private chat with the bot")
                self._started_users.add(user_id)
                if user_id in self._blocked:
                    self.unblock(user_id)
            else:
                chat.members.add(user_id)
                if address_commands:
                    text = self._address_commands(text)
            plain, kept = trim_formatted(text, list(entities or []))
            if not plain:
                raise ValueError("Telegram does not send empty messages")
            all_entities = _sorted_entities(kept + find_auto_entities(plain, kept))
            message = self._new_message(chat, dict(user))
            message["text"] = plain
            if all_entities:
                message["entities"] = all_entities
            if reply_to is not None:
                target = self._find_message(chat, reply_to)
                message["reply_to_message"] = self._quoted(target.message)
            chat.messages[message["message_id"]] = _StoredMessage(message, from_bot=False)
            if self._delivered_to_bot(chat, message):
                self._enqueue("message", copy.deepcopy(message))
            self._changed.notify_all()
            return copy.deepcopy(message)

    def user_presses(
        self,
        user_id: int,
        message: JSONDict | int | Any,
        callback_data: str,
        *,
        chat_id: int | None = None,
    ) -> str:
        """The user taps the inline button with ``callback_data``; return the query id.

        ``message`` is a Message dict (from `sent`), a PTB ``Message`` or a
        message id in ``chat_id`` (default: the user's private chat). Raises
        ValueError when no such button is shown.
        """
        with self._lock:
            user = self._require_user(user_id)
            if hasattr(message, "to_dict"):  # a python-telegram-bot Message
                message = message.to_dict()
            if isinstance(message, dict):
                chat_id = int(message["chat"]["id"])
                message_id = int(message["message_id"])
            else:
                message_id = int(message)
                chat_id = user_id if chat_id is None else chat_id
            chat = self._require_chat(chat_id)
            stored = chat.messages.get(message_id)
            if stored is None or stored.deleted:
                raise ValueError(f"message {message_id} is not in chat {chat_id}")
            markup = stored.message.get("reply_markup") or {}
            buttons = [b for row in markup.get("inline_keyboard", []) for b in row]
            if not any(b.get("callback_data") == callback_data for b in buttons):
                shown = [b.get("callback_data") for b in buttons]
                raise ValueError(
                    f"message {message_id} has no button with callback_data {callback_data!r}; "
                    f"it shows {shown}"
                )
            query_id = str(next(self._callback_ids))
            self._callback_queries[query_id] = _CallbackQuery(
                time.monotonic(), user_id, chat_id, message_id
            )
            self._enqueue(
                "callback_query",
                {
                    "id": query_id,
                    "from": dict(user),
                    "message": copy.deepcopy(stored.message),
                    "chat_instance": str((chat_id * 7_919_000_003) % 10**19),
                    "data": callback_data,
                },
            )
            return query_id

    def bot_added_to_group(
        self, chat_id: int, by_user_id: int, *, as_admin: bool = False, can_delete: bool = True
    ) -> JSONDict:
        """A user adds the bot to a group: ``my_chat_member`` plus the service message.

        Returns the ChatMemberUpdated payload.
        """
        with self._lock:
            user = self._require_user(by_user_id)
            chat = self._require_chat(chat_id)
            if not chat.is_group:
                raise ValueError("bots are added to groups")
            old = self._chat_member(chat, self.bot_id)
            chat.bot_status = "administrator" if as_admin else "member"
            chat.bot_rights = self._admin_rights(can_delete=can_delete) if as_admin else {}
            chat.members.add(by_user_id)
            update = {
                "chat": dict(chat.info),
                "from": dict(user),
                "date": int(time.time()),
                "old_chat_member": old,
                "new_chat_member": self._chat_member(chat, self.bot_id),
            }
            self._enqueue("my_chat_member", copy.deepcopy(update))
            service = self._new_message(chat, dict(user))
            service["new_chat_members"] = [self.bot_user]
            chat.messages[service["message_id"]] = _StoredMessage(service, from_bot=False)
            self._enqueue("message", copy.deepcopy(service))
            return update

    def block(self, user_id: int) -> None:
        """The user blocks the bot: sends to them answer 403, a ``my_chat_member`` is sent."""
        with self._lock:
            user = self._require_user(user_id)
            if user_id in self._blocked:
                return
            self._blocked.add(user_id)
            self._enqueue("my_chat_member", self._private_member_update(user, "member", "kicked"))

    def unblock(self, user_id: int) -> None:
        """The user unblocks (restarts) the bot."""
        with self._lock:
            user = self._require_user(user_id)
            if user_id not in self._blocked:
                return
            self._blocked.discard(user_id)
            self._enqueue("my_chat_member", self._private_member_update(user, "kicked", "member"))

    # -- what the bot did ----------------------------------------------------
    def sent(self, chat_id: int | None = None) -> list[JSONDict]:
        """Messages the bot sent, oldest first, as they are now.

        Each is the Message object with edits applied plus ``deleted`` (bool),
        ``edits`` (count) and, when a reply keyboard / force_reply /
        keyboard removal was sent (Telegram does not echo those),
        ``reply_keyboard``.
        """
        with self._lock:
            return [
                self._record(s)
                for s in self._bot_messages
                if chat_id is None or s.message["chat"]["id"] == chat_id
            ]

    def history(self, chat_id: int) -> list[JSONDict]:
        """Every message of a chat (the users' and the bot's), with ``deleted`` flags."""
        with self._lock:
            chat = self._require_chat(chat_id)
            return [self._record(s) for _, s in sorted(chat.messages.items())]

    def deleted(self, chat_id: int) -> list[int]:
        """Ids of the messages the bot deleted in ``chat_id``, in order."""
        with self._lock:
            return list(self._deleted.get(chat_id, []))

    def wait_for(self, predicate: MessagePredicate, timeout: float = 10) -> JSONDict:
        """Block until a message in `sent` matches ``predicate``; return it.

        Messages already sent count; edits re-evaluate the predicate. Raises
        TimeoutError listing what the bot did send.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for stored in self._bot_messages:
                    record = self._record(stored)
                    if predicate(record):
                        return record
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closing:
                    seen = [
                        (r.message["chat"]["id"], r.message.get("text", r.message.get("caption")))
                        for r in self._bot_messages[-10:]
                    ]
                    raise TimeoutError(
                        f"no sent message matched within {timeout}s; last sent: {seen}"
                    )
                self._changed.wait(remaining)

    async def wait_for_async(
        self,
        predicate: MessagePredicate,
        timeout: float = 10,  # noqa: ASYNC109 - the wait runs in a worker thread
    ) -> JSONDict:
        """`wait_for` for async tests (waits in a worker thread)."""
        return await asyncio.to_thread(self.wait_for, predicate, timeout)

    @property
    def callback_answers(self) -> list[JSONDict]:
        """answerCallbackQuery calls: callback_query_id, text, show_alert, url, cache_time."""
        with self._lock:
            return copy.deepcopy(self._callback_answers)

    def commands(
        self, scope: JSONDict | str | None = None, language_code: str = ""
    ) -> list[JSONDict]:
        """Commands stored for exactly this scope and language (like getMyCommands).

        ``scope`` is a BotCommandScope dict or just its type (``"default"``).
        """
        with self._lock:
            key = (self._scope_key(self._scope_dict(scope)), language_code)
            return copy.deepcopy(self._commands.get(key, []))

    def visible_commands(self, user_id: int, chat_id: int | None = None) -> list[JSONDict]:
        """The command menu this user sees in this chat, resolved by scope and language
        in the order the Bot API documentation gives ("Determining list of commands")."""
        with self._lock:
            user = self._require_user(user_id)
            chat = self._chats[user_id] if chat_id is None else self._require_chat(chat_id)
            language = str(user.get("language_code") or "")[:2]
            languages = [language, ""] if language else [""]
            scopes: list[JSONDict]
            if chat.type == "private":
                scopes = [
                    {"type": "chat", "chat_id": chat.id},
                    {"type": "all_private_chats"},
                    {"type": "default"},
                ]
            else:
                is_admin = user_id == chat.owner_id
                scopes = [{"type": "chat_member", "chat_id": chat.id, "user_id": user_id}]
                if is_admin:
                    scopes.append({"type": "chat_administrators", "chat_id": chat.id})
                scopes.append({"type": "chat", "chat_id": chat.id})
                if is_admin:
                    scopes.append({"type": "all_chat_administrators"})
                scopes += [{"type": "all_group_chats"}, {"type": "default"}]
            for scope in scopes:
                for lang in languages:
                    found = self._commands.get((self._scope_key(scope), lang))
                    if found:
                        return copy.deepcopy(found)
            return []

    def chat_actions(self, chat_id: int | None = None) -> list[JSONDict]:
        """sendChatAction calls: chat_id, action, time."""
        with self._lock:
            return [
                dict(a) for a in self._chat_actions if chat_id is None or a["chat_id"] == chat_id
            ]

    @property
    def requests(self) -> list[RequestRecord]:
        """Every Bot API call answered, in order (method, chat_id, status, time, ...)."""
        with self._lock:
            return list(self._requests)

    @property
    def stats(self) -> Stats:
        """Counters: requests, accepted calls by method, messages sent, edits, 429s."""
        with self._lock:
            return Stats(
                requests=len(self._requests),
                by_method=dict(self._by_method),
                messages_sent=sum(self._by_method[m] for m in SEND_METHODS),
                edits=sum(self._by_method[m] for m in EDIT_METHODS),
                rate_limited=self._rate_limited,
                errors=self._errors,
            )

    def reset_records(self) -> None:
        """Forget the request log and counters (e.g. between benchmark phases)."""
        with self._lock:
            self._requests.clear()
            self._by_method.clear()
            self._rate_limited = 0
            self._errors = 0

    def pending_updates(self) -> list[JSONDict]:
        """Updates not yet confirmed by getUpdates nor delivered to the webhook."""
        with self._lock:
            return copy.deepcopy(self._updates)

    def webhook_info(self) -> JSONDict:
        """What getWebhookInfo answers."""
        with self._lock:
            return self._webhook_info()

    def set_limits(
        self,
        *,
        global_per_s: int | None = None,
        paid_global_per_s: int | None = None,
        per_chat_per_s: int | None = None,
        group_per_min: int | None = None,
        enabled: bool | None = None,
        edits_per_chat_per_s: int | None = None,
        count_edits_globally: bool | None = None,
        group_window_s: float | None = None,
    ) -> RateLimits:
        """Change the flood limits (0 turns one off) and forget past sends; return them.

        Defaults follow the Bot FAQ: 30 messages per second overall, 1 per
        second in a chat (no burst allowance: at most one send in any sliding
        second), 20 per minute in a group. Edits have their own per-chat
        bucket (``edits_per_chat_per_s``) and count toward the overall limit;
        they do not count toward the per-group minute limit.
        """
        with self._lock:
            changes = {
                "global_per_s": global_per_s,
                "paid_global_per_s": paid_global_per_s,
                "per_chat_per_s": per_chat_per_s,
                "group_per_min": group_per_min,
                "enabled": enabled,
                "edits_per_chat_per_s": edits_per_chat_per_s,
                "count_edits_globally": count_edits_globally,
                "group_window_s": group_window_s,
            }
            for name, value in changes.items():
                if value is not None:
                    setattr(self.limits, name, value)
            self._sends_global.clear()
            self._sends_all.clear()
            self._sends_chat.clear()
            self._sends_group.clear()
            self._edits_chat.clear()
            return copy.copy(self.limits)

    # -- aiohttp app ---------------------------------------------------------
    def build_app(self) -> web.Application:
        """Routes: Bot API, file downloads and the ``/_emulator`` control API."""
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        control = ControlApi(self)
        control.register(app)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_startup(self, _app: web.Application) -> None:
        self._update_event = asyncio.Event()
        self._closing = False
        self._webhook_task = asyncio.create_task(self._webhook_worker())

    async def _on_shutdown(self, _app: web.Application) -> None:
        self._closing = True
        self._wake()
        with self._changed:
            self._changed.notify_all()  # waiters give up instead of delaying the stop
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None

    async def _handle_api(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        requested = request.match_info["method"]
        method = self._methods.get(requested.lower())
        name = method.name if method else requested
        if not _TOKEN_RE.match(token):
            return self._answer(name, None, ApiError(404, "Not Found"))
        if token != self.token:
            return self._answer(name, None, ApiError(401, "Unauthorized"))
        if method is None:
            return self._answer(name, None, ApiError(404, "Not Found"))
        try:
            params = await self._read_params(request)
        except ApiError as error:
            return self._answer(name, None, error)
        chat_ref = params.raw("chat_id")
        failure = self._injected_failure(method.name)
        if failure is not None:
            return self._answer(name, chat_ref, failure)
        try:
            if method.name == "getUpdates":
                result: Any = await self._api_get_updates(params)
            else:
                with self._lock:
                    result = method.handler(params)
        except ApiError as error:
            return self._answer(name, chat_ref, error)
        description = method.description(result) if method.description else None
        if isinstance(result, _WithDescription):
            result = result.result
        paid = params.boolean("allow_paid_broadcast")
        return self._answer(name, chat_ref, result, description=description, paid=paid)

    def _answer(
        self,
        method: str,
        chat_ref: Any,
        outcome: Any,
        *,
        description: str | None = None,
        paid: bool = False,
    ) -> web.Response:
        if isinstance(outcome, ApiError):
            status, body = outcome.status, outcome.body()
            description = outcome.description
        else:
            status, body = 200, {"ok": True, "result": outcome}
            if description:
                body["description"] = description
        message_id = outcome.get("message_id") if isinstance(outcome, dict) else None
        chat_id: int | str | None
        try:
            chat_id = int(chat_ref) if chat_ref is not None else None
        except (TypeError, ValueError):
            chat_id = str(chat_ref)
        with self._lock:
            self._requests.append(
                RequestRecord(
                    method=method,
                    chat_id=chat_id,
                    status=status,
                    time=time.time(),
                    monotonic=time.monotonic(),
                    description=description if status != 200 else None,
                    message_id=message_id,
                    paid=paid,
                )
            )
            if status == 200:
                self._by_method[method] += 1
            else:
                self._errors += 1
                if status == 429:
                    self._rate_limited += 1
        return web.json_response(body, status=status)

    async def _read_params(self, request: web.Request) -> Params:
        values: JSONDict = dict(request.query)
        files: dict[str, UploadedFile] = {}
        if request.method == "POST" and request.can_read_body:
            content_type = request.content_type
            if content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise _bad_request("can't parse JSON encoded request body") from None
                if isinstance(body, dict):
                    values.update(body)
            elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files[key] = UploadedFile(
                            value.filename, value.file.read(), value.content_type
                        )
                    else:
                        values[key] = value
        return Params(values, files)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        with self._lock:
            stored = self._file_paths.get(request.match_info["path"])
        if stored is None:
            return web.json_response(ApiError(404, "Not Found").body(), status=404)
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )

    # -- the method table ----------------------------------------------------
    def _method_table(self) -> dict[str, _Method]:
        def text_of(result: Any) -> str | None:
            return result.description if isinstance(result, _WithDescription) else None

        methods = [
            _Method("getMe", self._api_get_me),
            _Method("logOut", lambda _p: True),
            _Method("close", lambda _p: True),
            _Method("getUpdates", lambda _p: None),  # async, see _handle_api
            _Method("setWebhook", self._api_set_webhook, text_of),
            _Method("deleteWebhook", self._api_delete_webhook, text_of),
            _Method("getWebhookInfo", lambda _p: self._webhook_info()),
            _Method("sendMessage", self._api_send_message),
            _Method("sendPhoto", self._api_send_photo),
            _Method("sendDocument", self._api_send_document),
            _Method("sendChatAction", self._api_send_chat_action),
            _Method("editMessageText", self._api_edit_message_text),
            _Method("editMessageCaption", self._api_edit_message_caption),
            _Method("editMessageReplyMarkup", self._api_edit_message_reply_markup),
            _Method("deleteMessage", self._api_delete_message),
            _Method("deleteMessages", self._api_delete_messages),
            _Method("answerCallbackQuery", self._api_answer_callback_query),
            _Method("setMyCommands", self._api_set_my_commands),
            _Method("getMyCommands", self._api_get_my_commands),
            _Method("deleteMyCommands", self._api_delete_my_commands),
            _Method("getChat", self._api_get_chat),
            _Method("getChatMember", self._api_get_chat_member),
            _Method("getChatAdministrators", self._api_get_chat_administrators),
            _Method("getChatMemberCount", self._api_get_chat_member_count),
            _Method("getFile", self._api_get_file),
            _Method("setMyName", self._profile_setter("name", "name", 64)),
            _Method("getMyName", self._profile_getter("name", "name")),
            _Method("setMyDescription", self._profile_setter("description", "description", 512)),
            _Method("getMyDescription", self._profile_getter("description", "description")),
            _Method(
                "setMyShortDescription",
                self._profile_setter("short_description", "short_description", 120),
            ),
            _Method(
                "getMyShortDescription",
                self._profile_getter("short_description", "short_description"),
            ),
            _Method("setChatMenuButton", self._api_set_chat_menu_button),
            _Method("getChatMenuButton", self._api_get_chat_menu_button),
        ]
        return {m.name.lower(): m for m in methods}

    # -- updates -------------------------------------------------------------
    async def _api_get_updates(self, params: Params) -> list[JSONDict]:
        with self._lock:
            if self._webhook is not None:
                raise ApiError(409, WEBHOOK_CONFLICT)
            offset = params.integer("offset")
            limit = params.integer("limit") or MAX_UPDATES_LIMIT
            limit = min(max(limit, 1), MAX_UPDATES_LIMIT)
            timeout = max(params.integer("timeout") or 0, 0)
            allowed = params.json_value("allowed_updates")
            if allowed is not None:
                if not isinstance(allowed, list):
                    raise _bad_request("can't parse allowed_updates JSON array")
                self._allowed_updates = [str(a) for a in allowed]
            if offset is not None:
                self._confirm(offset)
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake()  # a pending getUpdates is terminated by this one
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with self._lock:
                if self._webhook is not None:
                    raise ApiError(409, WEBHOOK_CONFLICT)
                if self._poll_generation != generation:
                    raise ApiError(409, POLL_CONFLICT)
                batch = copy.deepcopy(self._updates[:limit])
            remaining = deadline - loop.time()
            if batch or remaining <= 0 or self._closing:
                return batch
            assert self._update_event is not None
            event = self._update_event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def _confirm(self, offset: int) -> None:
        if offset < 0:
            self._updates = (
                self._updates[offset:] if -offset < len(self._updates) else self._updates
            )
        else:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]

    def _enqueue(self, kind: str, payload: JSONDict) -> JSONDict | None:
        allowed = self._allowed_updates
        if allowed:
            if kind not in allowed:
                return None
        elif kind in OPT_IN_UPDATE_TYPES:
            return None
        update = {"update_id": self._next_update_id, kind: payload}
        self._next_update_id += 1
        self._updates.append(update)
        self._changed.notify_all()
        self._schedule_wake()
        return update

    def _schedule_wake(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        """Wake long polls and the webhook worker (server loop only)."""
        event = self._update_event
        if event is not None:
            self._update_event = asyncio.Event()
            event.set()

    def _api_set_webhook(self, params: Params) -> _WithDescription:
        url = params.text("url") or ""
        if not url:
            return self._api_delete_webhook(params)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _bad_request("bad webhook: HTTPS URL must be provided for webhook")
        if not is_loopback_host(parts.hostname):
            raise _bad_request(
                "bad webhook: the emulator only delivers webhooks to 127.0.0.0/8, ::1 or localhost"
            )
        secret = params.text("secret_token")
        if secret is not None and not _SECRET_TOKEN_RE.match(secret):
            raise _bad_request("secret token contains unallowed characters")
        allowed = params.json_value("allowed_updates")
        if allowed is not None:
            if not isinstance(allowed, list):
                raise _bad_request("can't parse allowed_updates JSON array")
            self._allowed_updates = [str(a) for a in allowed]
        if params.boolean("drop_pending_updates"):
            self._updates.clear()
        already = self._webhook is not None and self._webhook.url == url
        self._webhook = _Webhook(
            url=url,
            secret_token=secret,
            max_connections=params.integer("max_connections") or 40,
            ip_address=params.text("ip_address"),
        )
        self._schedule_wake()  # a pending getUpdates gets its 409
        return _WithDescription(True, "Webhook is already set" if already else "Webhook was set")

    def _api_delete_webhook(self, params: Params) -> _WithDescription:
        if params.boolean("drop_pending_updates"):
            self._updates.clear()
        existed = self._webhook is not None
        self._webhook = None
        return _WithDescription(
            True, "Webhook was deleted" if existed else "Webhook is already deleted"
        )

    def _webhook_info(self) -> JSONDict:
        info: JSONDict = {
            "url": self._webhook.url if self._webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        hook = self._webhook
        if hook is not None:
            info["max_connections"] = hook.max_connections
            info["ip_address"] = hook.ip_address or "127.0.0.1"
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
            if self._allowed_updates:
                info["allowed_updates"] = list(self._allowed_updates)
        return info

    async def _webhook_worker(self) -> None:
        """Deliver queued updates to the webhook, one POST each, in order."""
        backoff = 0.1
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            while not self._closing:
                with self._lock:
                    hook = self._webhook
                    update = copy.deepcopy(self._updates[0]) if hook and self._updates else None
                if hook is None or update is None:
                    assert self._update_event is not None
                    await self._update_event.wait()
                    continue
                headers = {"Content-Type": "application/json"}
                if hook.secret_token:
                    headers[SECRET_TOKEN_HEADER] = hook.secret_token
                error: str | None = None
                reply: bytes = b""
                try:
                    async with session.post(
                        hook.url, data=json.dumps(update), headers=headers
                    ) as response:
                        reply = await response.read()
                        if not 200 <= response.status < 300:
                            error = (
                                f"Wrong response from the webhook: {response.status} "
                                f"{response.reason}"
                            )
                except TimeoutError:
                    error = "Timeout expired"
                except aiohttp.ClientError as exc:
                    error = f"Connection failed: {exc}"
                with self._lock:
                    if error is None:
                        if self._updates and self._updates[0]["update_id"] == update["update_id"]:
                            self._updates.pop(0)
                        self._changed.notify_all()
                    else:
                        hook.last_error_date = int(time.time())
                        hook.last_error_message = error
                if error is None:
                    backoff = 0.1
                    self._run_webhook_reply(reply)
                else:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)

    def _run_webhook_reply(self, reply: bytes) -> None:
        """A webhook answer may itself be a Bot API call (``{"method": ...}``)."""
        try:
            data = json.loads(reply) if reply.strip() else None
        except ValueError:
            return
        if not isinstance(data, dict) or not isinstance(data.get("method"), str):
            return
        method = self._methods.get(data["method"].lower())
        if method is None or method.name == "getUpdates":
            return
        params = Params({k: v for k, v in data.items() if k != "method"}, {})
        try:
            with self._lock:
                method.handler(params)
        except ApiError:
            pass

    # -- sending -------------------------------------------------------------
    def _api_get_me(self, _params: Params) -> JSONDict:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _api_send_message(self, params: Params) -> JSONDict:
        text, entities = self._formatted_text(params, "text", "parse_mode", "entities")
        inline, other = self._reply_markup(params)
        preview = params.json_value("link_preview_options")
        chat = self._resolve_chat(params)
        reply_to = self._reply_target(params, chat)
        self._check_can_send(chat)
        self._take_rate("sendMessage", chat, paid=params.boolean("allow_paid_broadcast"))
        message = self._new_message(chat, self.bot_user, reply_to)
        message["text"] = text
        if entities:
            message["entities"] = entities
        if isinstance(preview, dict) and preview:
            message["link_preview_options"] = preview
        return self._store_bot_message(chat, message, params, inline, other)

    def _api_send_photo(self, params: Params) -> JSONDict:
        caption, entities = self._formatted_caption(params)
        inline, other = self._reply_markup(params)
        stored = self._input_file(params, "photo", photo=True)
        chat = self._resolve_chat(params)
        reply_to = self._reply_target(params, chat)
        self._check_can_send(chat)
        self._take_rate("sendPhoto", chat)
        message = self._new_message(chat, self.bot_user, reply_to)
        message["photo"] = copy.deepcopy(stored.photo)
        self._set_caption(message, caption, entities, params)
        return self._store_bot_message(chat, message, params, inline, other)

    def _api_send_document(self, params: Params) -> JSONDict:
        caption, entities = self._formatted_caption(params)
        inline, other = self._reply_markup(params)
        stored = self._input_file(params, "document", photo=False)
        chat = self._resolve_chat(params)
        reply_to = self._reply_target(params, chat)
        self._check_can_send(chat)
        self._take_rate("sendDocument", chat)
        message = self._new_message(chat, self.bot_user, reply_to)
        document: JSONDict = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
        }
        if stored.file_name:
            document["file_name"] = stored.file_name
        if stored.mime_type:
            document["mime_type"] = stored.mime_type
        message["document"] = document
        self._set_caption(message, caption, entities, params)
        return self._store_bot_message(chat, message, params, inline, other)

    def _api_send_chat_action(self, params: Params) -> bool:
        action = params.text("action")
        if not action:
            raise _bad_request("action is empty")
        if action not in CHAT_ACTIONS:
            raise _bad_request("wrong parameter action in request")
        chat = self._resolve_chat(params)
        self._check_can_send(chat)
        self._chat_actions.append({"chat_id": chat.id, "action": action, "time": time.time()})
        return True

    def _formatted_text(
        self,
        params: Params,
        text_field: str,
        mode_field: str,
        entities_field: str,
        *,
        limit: int = MAX_MESSAGE_LENGTH,
        optional: bool = False,
    ) -> tuple[str, list[JSONDict]]:
        raw = params.text(text_field)
        if not raw:
            if optional:
                return "", []
            raise _bad_request("message text is empty")
        explicit = params.json_value(entities_field)
        mode = params.text(mode_field)
        if explicit:
            if not isinstance(explicit, list) or not all(isinstance(e, dict) for e in explicit):
                raise _bad_request("can't parse entities JSON object")
            text, entities = raw, [dict(e) for e in explicit]
        elif mode:
            parser = _PARSERS.get(mode.lower())
            if parser is None:
                raise _bad_request(f"unsupported parse_mode {mode!r}")
            try:
                text, entities = parser(raw)
            except EntityParseError as exc:
                raise _bad_request(f"can't parse entities: {exc}") from None
        else:
            text, entities = raw, []
        entities = self._resolve_links(entities)
        text, entities = trim_formatted(text, entities)
        if not text:
            if optional:
                return "", []
            raise _bad_request("message text is empty")
        if len(text) > limit:
            raise _bad_request("message caption is too long" if optional else "message is too long")
        entities = _sorted_entities(entities + find_auto_entities(text, entities))
        return text, entities

    def _formatted_caption(self, params: Params) -> tuple[str, list[JSONDict]]:
        return self._formatted_text(
            params,
            "caption",
            "parse_mode",
            "caption_entities",
            limit=MAX_CAPTION_LENGTH,
            optional=True,
        )

    @staticmethod
    def _set_caption(
        message: JSONDict, caption: str, entities: list[JSONDict], params: Params
    ) -> None:
        if caption:
            message["caption"] = caption
            if entities:
                message["caption_entities"] = entities
            if params.boolean("show_caption_above_media"):
                message["show_caption_above_media"] = True

    def _resolve_links(self, entities: list[JSONDict]) -> list[JSONDict]:
        resolved: list[JSONDict] = []
        for entity in entities:
            if entity.get("type") != "text_link":
                resolved.append(entity)
                continue
            url = str(entity.get("url", ""))
            mention = re.match(r"^tg://user\?id=(\d+)$", url, re.IGNORECASE)
            if mention:
                user = self._users.get(int(mention.group(1)))
                if user is not None:
                    base = {k: v for k, v in entity.items() if k != "url"}
                    resolved.append({**base, "type": "text_mention", "user": dict(user)})
                continue
            link = checked_link(url)
            if link is not None:
                resolved.append({**entity, "url": link})
        return resolved

    def _reply_markup(self, params: Params) -> tuple[JSONDict | None, JSONDict | None]:
        error = "can't parse reply keyboard markup JSON object"
        markup = params.json_value("reply_markup", error=error)
        if markup is None:
            return None, None
        if not isinstance(markup, dict):
            raise _bad_request(error)
        if "inline_keyboard" in markup:
            return self._validated_inline_keyboard(markup), None
        if any(key in markup for key in ("keyboard", "remove_keyboard", "force_reply")):
            return None, markup
        raise _bad_request("object expected as reply markup")

    @staticmethod
    def _validated_inline_keyboard(markup: JSONDict) -> JSONDict:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad_request(
                'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array'
            )
        prefix = "can't parse inline keyboard button: "
        for row in rows:
            for button in row:
                if not isinstance(button, dict):
                    raise _bad_request(prefix + "InlineKeyboardButton must be an Object")
                if "text" not in button:
                    raise _bad_request(prefix + 'Can\'t find field "text"')
                if not isinstance(button["text"], str):
                    raise _bad_request(prefix + 'Field "text" must be of type String')
                actions = [
                    key
                    for key in (
                        "web_app",
                        "login_url",
                        "switch_inline_query",
                        "switch_inline_query_current_chat",
                        "switch_inline_query_chosen_chat",
                        "copy_text",
                        "callback_game",
                    )
                    if button.get(key) is not None
                ]
                actions += [key for key in ("url", "callback_data") if button.get(key)]
                if button.get("pay") is True:
                    actions.append("pay")
                if not actions:
                    raise _bad_request(prefix + "Text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                if data is not None:
                    if not isinstance(data, str):
                        raise _bad_request(prefix + 'Field "callback_data" must be of type String')
                    if len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
                        raise _bad_request("BUTTON_DATA_INVALID")
                url = button.get("url")
                if url and (not isinstance(url, str) or checked_link(url) is None):
                    raise _bad_request(
                        f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL"
                    )
        return copy.deepcopy(markup)

    def _input_file(self, params: Params, name: str, *, photo: bool) -> _StoredFile:
        upload = params.files.get(name)
        ref = params.text(name)
        if upload is None and ref and ref.startswith("attach://"):
            upload = params.files.get(ref[len("attach://") :])
        if upload is not None:
            return self._store_upload(upload, photo=photo)
        if not ref:
            raise _bad_request(f"there is no {name} in the request")
        if ref.lower().startswith(("http://", "https://")):
            # Telegram would download it; the emulator never leaves 127.0.0.0/8.
            raise _bad_request("failed to get HTTP URL content")
        stored = self._files.get(ref)
        if stored is None or (photo and stored.photo is None):
            raise _bad_request("wrong file identifier/HTTP URL specified")
        return stored

    def _store_upload(self, upload: UploadedFile, *, photo: bool) -> _StoredFile:
        number = next(self._file_counter)
        if not photo:
            stored = _StoredFile(
                file_id=f"BQACAgEAAxkBAA{number:06d}{secrets.token_urlsafe(12)}",
                file_unique_id=f"AgAD{number:06d}",
                data=upload.data,
                file_path=f"documents/file_{number}{self._extension(upload.filename)}",
                mime_type=upload.content_type,
                file_name=upload.filename,
            )
            self._files[stored.file_id] = stored
            self._file_paths[stored.file_path] = stored
            return stored
        size = image_size(upload.data)
        if size is None or min(size) <= 0:
            raise _bad_request("IMAGE_PROCESS_FAILED")
        width, height = size
        if width + height > 10_000 or max(width, height) > 20 * min(width, height):
            raise _bad_request("PHOTO_INVALID_DIMENSIONS")
        path = f"photos/file_{number}.jpg"
        sizes: list[JSONDict] = []
        largest = max(width, height)
        for index, side in enumerate((90, 320, 800, 1280, 2560)):
            scale = min(1.0, side / largest)
            w, h = max(1, round(width * scale)), max(1, round(height * scale))
            file_id = f"AgACAgEAAxkBAA{number:06d}{index}{secrets.token_urlsafe(12)}"
            sizes.append(
                {
                    "file_id": file_id,
                    "file_unique_id": f"AQAD{number:06d}{index}",
                    "file_size": max(1, round(len(upload.data) * scale * scale)),
                    "width": w,
                    "height": h,
                }
            )
            if side >= largest:
                break
        stored = _StoredFile(
            file_id=sizes[-1]["file_id"],
            file_unique_id=sizes[-1]["file_unique_id"],
            data=upload.data,
            file_path=path,
            mime_type="image/jpeg",
            file_name=None,
            photo=sizes,
        )
        for photo_size in sizes:
            self._files[photo_size["file_id"]] = stored
        self._file_paths[path] = stored
        return stored

    @staticmethod
    def _extension(filename: str | None) -> str:
        if filename and "." in filename:
            return "." + filename.rsplit(".", 1)[1][:10]
        return ""

    def _store_bot_message(
        self,
        chat: _Chat,
        message: JSONDict,
        params: Params,
        inline: JSONDict | None,
        other: JSONDict | None,
    ) -> JSONDict:
        if params.boolean("protect_content"):
            message["has_protected_content"] = True
        if inline is not None:
            message["reply_markup"] = inline
        stored = _StoredMessage(message, from_bot=True, reply_keyboard=other)
        chat.messages[message["message_id"]] = stored
        self._bot_messages.append(stored)
        self._changed.notify_all()
        return copy.deepcopy(message)

    # -- editing and deleting -------------------------------------------------
    def _message_to_edit(self, params: Params) -> tuple[_Chat, _StoredMessage]:
        if params.has("inline_message_id"):
            raise _bad_request("MESSAGE_ID_INVALID")
        chat = self._resolve_chat(params)
        message_id = params.integer("message_id")
        if message_id is None:
            raise _bad_request("message identifier is not specified")
        stored = chat.messages.get(message_id)
        if stored is None or stored.deleted:
            raise _bad_request("message to edit not found")
        if not stored.from_bot:
            raise _bad_request("message can't be edited")
        return chat, stored

    def _finish_edit(self, chat: _Chat, stored: _StoredMessage) -> JSONDict:
        stored.message["edit_date"] = int(time.time())
        stored.edits += 1
        self._changed.notify_all()
        return copy.deepcopy(stored.message)

    @staticmethod
    def _replace(message: JSONDict, key: str, value: Any) -> None:
        if value:
            message[key] = value
        else:
            message.pop(key, None)

    def _inline_only(self, params: Params) -> JSONDict | None:
        inline, other = self._reply_markup(params)
        if other is not None:
            raise _bad_request("inline keyboard expected")
        return inline

    def _api_edit_message_text(self, params: Params) -> JSONDict:
        text, entities = self._formatted_text(params, "text", "parse_mode", "entities")
        inline = self._inline_only(params)
        preview = params.json_value("link_preview_options")
        chat, stored = self._message_to_edit(params)
        message = stored.message
        if "text" not in message:
            raise _bad_request("there is no text in the message to edit")
        if (
            message["text"] == text
            and message.get("entities", []) == entities
            and message.get("reply_markup") == inline
        ):
            raise _bad_request(NOT_MODIFIED)
        self._check_can_send(chat)
        self._take_rate("editMessageText", chat)
        message["text"] = text
        self._replace(message, "entities", entities)
        self._replace(message, "reply_markup", inline)
        if isinstance(preview, dict) and preview:
            message["link_preview_options"] = preview
        return self._finish_edit(chat, stored)

    def _api_edit_message_caption(self, params: Params) -> JSONDict:
        caption, entities = self._formatted_caption(params)
        inline = self._inline_only(params)
        chat, stored = self._message_to_edit(params)
        message = stored.message
        if not any(key in message for key in ("photo", "document")):
            raise _bad_request("there is no caption in the message to edit")
        if (
            message.get("caption", "") == caption
            and message.get("caption_entities", []) == entities
            and message.get("reply_markup") == inline
        ):
            raise _bad_request(NOT_MODIFIED)
        self._check_can_send(chat)
        self._take_rate("editMessageCaption", chat)
        self._replace(message, "caption", caption)
        self._replace(message, "caption_entities", entities)
        self._replace(message, "reply_markup", inline)
        return self._finish_edit(chat, stored)

    def _api_edit_message_reply_markup(self, params: Params) -> JSONDict:
        inline = self._inline_only(params)
        chat, stored = self._message_to_edit(params)
        if stored.message.get("reply_markup") == inline:
            raise _bad_request(NOT_MODIFIED)
        self._check_can_send(chat)
        self._take_rate("editMessageReplyMarkup", chat)
        self._replace(stored.message, "reply_markup", inline)
        return self._finish_edit(chat, stored)

    def _can_delete(self, chat: _Chat, stored: _StoredMessage) -> bool:
        """The rules of deleteMessage's documentation (the 48-hour limit is not modelled)."""
        if chat.type == "private" or stored.from_bot:
            return True  # outgoing messages anywhere, incoming ones in private chats
        if chat.bot_status != "administrator":
            return False
        if chat.type == "group":
            return True  # an administrator of a basic group can delete any message
        return bool(chat.bot_rights.get("can_delete_messages"))

    def _api_delete_message(self, params: Params) -> bool:
        chat = self._resolve_chat(params)
        message_id = params.integer("message_id", required=True)
        assert message_id is not None
        stored = chat.messages.get(message_id)
        if stored is None or stored.deleted:
            raise _bad_request("message to delete not found")
        if not self._can_delete(chat, stored):
            raise _bad_request("message can't be deleted")
        self._mark_deleted(chat, stored)
        return True

    def _api_delete_messages(self, params: Params) -> bool:
        chat = self._resolve_chat(params)
        ids = params.json_value("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise _bad_request("message_ids must be a non-empty list of at most 100 identifiers")
        targets = [chat.messages.get(int(i)) for i in ids]
        found = [s for s in targets if s is not None and not s.deleted]
        if not found:
            raise _bad_request("message to delete not found")
        if not all(self._can_delete(chat, s) for s in found):
            raise _bad_request("message can't be deleted")
        for stored in found:
            self._mark_deleted(chat, stored)
        return True

    def _mark_deleted(self, chat: _Chat, stored: _StoredMessage) -> None:
        stored.deleted = True
        self._deleted.setdefault(chat.id, []).append(int(stored.message["message_id"]))
        self._changed.notify_all()

    def _api_answer_callback_query(self, params: Params) -> bool:
        query_id = params.text("callback_query_id")
        if not query_id:
            raise _bad_request("callback_query_id is empty")
        query = self._callback_queries.get(query_id)
        if (
            query is None
            or query.answered
            or time.monotonic() - query.created > CALLBACK_QUERY_TTL_S
        ):
            raise _bad_request(QUERY_TOO_OLD)
        query.answered = True
        self._callback_answers.append(
            {
                "callback_query_id": query_id,
                "user_id": query.user_id,
                "chat_id": query.chat_id,
                "message_id": query.message_id,
                "text": params.text("text"),
                "show_alert": params.boolean("show_alert"),
                "url": params.text("url"),
                "cache_time": params.integer("cache_time") or 0,
                "time": time.time(),
            }
        )
        self._changed.notify_all()
        return True

    # -- commands and profile ------------------------------------------------
    @staticmethod
    def _scope_dict(scope: JSONDict | str | None) -> JSONDict:
        if scope is None:
            return {"type": "default"}
        if isinstance(scope, str):
            return {"type": scope}
        return dict(scope)

    @staticmethod
    def _scope_key(scope: JSONDict) -> str:
        keys = ("type", "chat_id", "user_id")
        return json.dumps({k: scope[k] for k in keys if k in scope}, sort_keys=True)

    def _command_target(self, params: Params) -> tuple[str, str]:
        scope = params.json_value("scope", error="can't parse BotCommandScope JSON object")
        scope = self._scope_dict(scope)
        kind = scope.get("type")
        if kind not in (
            "default",
            "all_private_chats",
            "all_group_chats",
            "all_chat_administrators",
            "chat",
            "chat_administrators",
            "chat_member",
        ):
            raise _bad_request("unsupported bot command scope type")
        if kind in ("chat", "chat_administrators", "chat_member"):
            chat_ref = scope.get("chat_id")
            chat = self._chat_by_ref(chat_ref)
            scope["chat_id"] = chat.id
            if kind == "chat_member":
                scope["user_id"] = int(scope.get("user_id") or 0)
        language = params.text("language_code") or ""
        if language and not _LANGUAGE_CODE_RE.match(language):
            raise _bad_request("invalid language code specified")
        return self._scope_key(scope), language

    def _api_set_my_commands(self, params: Params) -> bool:
        commands = params.json_value("commands", error="can't parse commands JSON object")
        if not isinstance(commands, list):
            raise _bad_request("commands is empty" if commands is None else "can't parse commands")
        key = self._command_target(params)
        if len(commands) > MAX_COMMANDS:
            raise _bad_request("BOT_COMMANDS_TOO_MUCH")
        cleaned: list[JSONDict] = []
        for item in commands:
            if not isinstance(item, dict):
                raise _bad_request("BotCommand must be an Object")
            command = str(item.get("command") or "").strip().removeprefix("/")
            description = str(item.get("description") or "").strip()
            if not command:
                raise _bad_request("command must be non-empty")
            if len(command) > MAX_COMMAND_LENGTH:
                raise _bad_request(f"command length must not exceed {MAX_COMMAND_LENGTH}")
            if not _COMMAND_RE.match(command):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not description:
                raise _bad_request("command description must be non-empty")
            if len(description) > MAX_COMMAND_DESCRIPTION_LENGTH:
                raise _bad_request(
                    f"command description length must not exceed {MAX_COMMAND_DESCRIPTION_LENGTH}"
                )
            cleaned.append({"command": command, "description": description})
        if cleaned:
            self._commands[key] = cleaned
        else:
            self._commands.pop(key, None)
        return True

    def _api_get_my_commands(self, params: Params) -> list[JSONDict]:
        return copy.deepcopy(self._commands.get(self._command_target(params), []))

    def _api_delete_my_commands(self, params: Params) -> bool:
        self._commands.pop(self._command_target(params), None)
        return True

    def _profile_setter(self, kind: str, field_name: str, limit: int) -> Callable[[Params], bool]:
        def handler(params: Params) -> bool:
            language = params.text("language_code") or ""
            if language and not _LANGUAGE_CODE_RE.match(language):
                raise _bad_request("invalid language code specified")
            value = params.text(field_name) or ""
            if len(value) > limit:
                raise _bad_request(f"bot {kind.replace('_', ' ')} is too long")
            if value:
                self._profile[(kind, language)] = value
            else:
                self._profile.pop((kind, language), None)
            return True

        return handler

    def _profile_getter(self, kind: str, field_name: str) -> Callable[[Params], JSONDict]:
        def handler(params: Params) -> JSONDict:
            language = params.text("language_code") or ""
            value = self._profile.get((kind, language)) or self._profile.get((kind, ""), "")
            if kind == "name" and not value:
                value = self.bot_first_name
            return {field_name: value}

        return handler

    def _api_set_chat_menu_button(self, params: Params) -> bool:
        button = params.json_value("menu_button") or {"type": "default"}
        chat_id = params.integer("chat_id")
        if chat_id is not None:
            self._chat_by_ref(chat_id)
        self._menu_buttons[chat_id] = button
        return True

    def _api_get_chat_menu_button(self, params: Params) -> JSONDict:
        chat_id = params.integer("chat_id")
        button = self._menu_buttons.get(chat_id) or self._menu_buttons.get(None)
        return copy.deepcopy(button or {"type": "commands"})

    # -- chats and members ---------------------------------------------------
    def _api_get_chat(self, params: Params) -> JSONDict:
        chat = self._resolve_chat(params)
        info: JSONDict = {
            **copy.deepcopy(chat.info),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }
        if chat.is_group:
            info["permissions"] = {
                "can_send_messages": True,
                "can_send_photos": True,
                "can_send_documents": True,
                "can_invite_users": True,
            }
        return info

    def _api_get_chat_member(self, params: Params) -> JSONDict:
        chat = self._resolve_chat(params)
        user_id = params.integer("user_id", required=True)
        assert user_id is not None
        if user_id != self.bot_id and user_id not in self._users:
            raise _bad_request("user not found")
        return self._chat_member(chat, user_id)

    def _api_get_chat_administrators(self, params: Params) -> list[JSONDict]:
        chat = self._resolve_chat(params)
        if chat.type == "private":
            raise _bad_request("there are no administrators in the private chat")
        admins: list[JSONDict] = []
        if chat.owner_id is not None and chat.owner_id in self._users:
            admins.append(self._chat_member(chat, chat.owner_id))
        if chat.bot_status == "administrator":
            admins.append(self._chat_member(chat, self.bot_id))
        return admins

    def _api_get_chat_member_count(self, params: Params) -> int:
        chat = self._resolve_chat(params)
        if chat.type == "private":
            return 2
        return len(chat.members) + (1 if chat.bot_status in ("member", "administrator") else 0)

    def _api_get_file(self, params: Params) -> JSONDict:
        file_id = params.text("file_id")
        if not file_id:
            raise _bad_request("file_id is empty")
        stored = self._files.get(file_id)
        if stored is None:
            raise _bad_request("invalid file_id")
        unique = stored.file_unique_id
        for photo_size in stored.photo or []:
            if photo_size["file_id"] == file_id:
                unique = photo_size["file_unique_id"]
        return {
            "file_id": file_id,
            "file_unique_id": unique,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    @staticmethod
    def _admin_rights(*, can_delete: bool) -> JSONDict:
        return {
            "can_be_edited": False,
            "is_anonymous": False,
            "can_manage_chat": True,
            "can_delete_messages": can_delete,
            "can_manage_video_chats": False,
            "can_restrict_members": False,
            "can_promote_members": False,
            "can_change_info": False,
            "can_invite_users": True,
            "can_post_stories": False,
            "can_edit_stories": False,
            "can_delete_stories": False,
            "can_pin_messages": False,
        }

    def _chat_member(self, chat: _Chat, user_id: int) -> JSONDict:
        if user_id == self.bot_id:
            user: JSONDict = self.bot_user
            status = chat.bot_status if chat.is_group else "member"
        else:
            user = dict(self._users[user_id])
            if chat.type == "private":
                status = "member" if user_id == chat.id else "left"
            elif user_id == chat.owner_id:
                return {"status": "creator", "user": user, "is_anonymous": False}
            else:
                status = "member" if user_id in chat.members else "left"
        if status == "administrator":
            return {"status": "administrator", "user": user, **chat.bot_rights}
        if status == "kicked":
            return {"status": "kicked", "user": user, "until_date": 0}
        return {"status": status, "user": user}

    def _private_member_update(self, user: JSONDict, old: str, new: str) -> JSONDict:
        chat = self._chats[int(user["id"])]
        return {
            "chat": dict(chat.info),
            "from": dict(user),
            "date": int(time.time()),
            "old_chat_member": {"status": old, "user": self.bot_user, "until_date": 0}
            if old == "kicked"
            else {"status": old, "user": self.bot_user},
            "new_chat_member": {"status": new, "user": self.bot_user, "until_date": 0}
            if new == "kicked"
            else {"status": new, "user": self.bot_user},
        }

    def _chat_by_ref(self, ref: Any) -> _Chat:
        if ref is None or ref == "":
            raise _bad_request("chat_id is empty")
        if isinstance(ref, str) and ref.startswith("@"):
            name = ref[1:].lower()
            for candidate in self._chats.values():
                if candidate.is_group and str(candidate.info.get("username", "")).lower() == name:
                    return candidate
            raise _bad_request("chat not found")
        try:
            chat_id = int(ref)
        except (TypeError, ValueError):
            raise _bad_request("chat not found") from None
        chat = self._chats.get(chat_id)
        if chat is None:
            raise _bad_request("chat not found")
        return chat

    def _resolve_chat(self, params: Params) -> _Chat:
        return self._chat_by_ref(params.raw("chat_id"))

    def _check_can_send(self, chat: _Chat) -> None:
        if chat.type == "private":
            if chat.id in self._blocked:
                raise _forbidden("bot was blocked by the user")
            if chat.id not in self._started_users:
                raise _forbidden("bot can't initiate conversation with a user")
            return
        kind = "supergroup chat" if chat.type == "supergroup" else "group chat"
        if chat.bot_status == "kicked":
            raise _forbidden(f"bot was kicked from the {kind}")
        if chat.bot_status == "left":
            raise _forbidden(f"bot is not a member of the {kind}")

    def _reply_target(self, params: Params, chat: _Chat) -> _StoredMessage | None:
        reply = params.json_value("reply_parameters", error="can't parse reply parameters")
        allow_without = False
        target_chat = chat
        message_id: Any = None
        if isinstance(reply, dict):
            message_id = reply.get("message_id")
            allow_without = bool(reply.get("allow_sending_without_reply"))
            if reply.get("chat_id") not in (None, chat.id):
                target_chat = self._chat_by_ref(reply["chat_id"])
        elif params.has("reply_to_message_id"):
            message_id = params.integer("reply_to_message_id")
            allow_without = params.boolean("allow_sending_without_reply")
        if message_id is None:
            return None
        stored = target_chat.messages.get(int(message_id))
        if stored is None or stored.deleted:
            if allow_without:
                return None
            raise _bad_request("message to be replied not found")
        return stored

    # -- failure injection ---------------------------------------------------
    def fail_next(
        self,
        method: str = "sendMessage",
        *,
        count: int = 1,
        status: int = 500,
        description: str = "Internal Server Error: injected",
    ) -> None:
        """Answer the next ``count`` calls of ``method`` with ``status`` (nothing is done)."""
        with self._lock:
            self._failures.append(_InjectedFailure(method, count, status, description))

    def _injected_failure(self, method: str) -> ApiError | None:
        with self._lock:
            for failure in self._failures:
                if failure.method == method and failure.remaining > 0:
                    failure.remaining -= 1
                    self._failures = [f for f in self._failures if f.remaining > 0]
                    return ApiError(failure.status, failure.description)
        return None

    # -- flood limits --------------------------------------------------------
    def _take_rate(self, method: str, chat: _Chat, *, paid: bool = False) -> None:
        """Admit one counted call or raise 429 with the seconds until it would pass.

        ``paid`` (``allow_paid_broadcast``): the bot-wide limit is the paid one, over every
        send; otherwise it is the free one, over the sends not paid for.
        """
        limits = self.limits
        if not limits.enabled:
            return
        now = time.monotonic()
        is_edit = method in EDIT_METHODS
        buckets: list[tuple[deque[float], int, float]] = []
        if paid and limits.paid_global_per_s:
            buckets.append((self._sends_all, limits.paid_global_per_s, limits.global_window_s))
        elif limits.global_per_s and (not is_edit or limits.count_edits_globally):
            buckets.append((self._sends_global, limits.global_per_s, limits.global_window_s))
        if is_edit:
            if limits.edits_per_chat_per_s:
                bucket = self._edits_chat.setdefault(chat.id, deque())
                buckets.append((bucket, limits.edits_per_chat_per_s, limits.chat_window_s))
        else:
            if limits.per_chat_per_s:
                bucket = self._sends_chat.setdefault(chat.id, deque())
                buckets.append((bucket, limits.per_chat_per_s, limits.chat_window_s))
            if chat.is_group and limits.group_per_min:
                bucket = self._sends_group.setdefault(chat.id, deque())
                buckets.append((bucket, limits.group_per_min, limits.group_window_s))
        wait = 0.0
        for times, limit, window in buckets:
            while times and times[0] <= now - window:
                times.popleft()
            if len(times) >= limit:
                wait = max(wait, times[len(times) - limit] + window - now)
        if wait > 0:
            retry_after = max(1, int(-(-wait // 1)))
            raise ApiError(
                429,
                f"Too Many Requests: retry after {retry_after}",
                {"retry_after": retry_after},
            )
        for times, _limit, _window in buckets:
            times.append(now)
        if not paid and (not is_edit or limits.count_edits_globally):
            self._sends_all.append(now)  # a free send takes a place of the paid limit too
        while self._sends_all and self._sends_all[0] <= now - limits.global_window_s:
            self._sends_all.popleft()

    # -- helpers ---------------------------------------------------------------
    def _require_user(self, user_id: int) -> JSONDict:
        user = self._users.get(user_id)
        if user is None:
            raise ValueError(f"unknown user {user_id}: call add_user first")
        return user

    def _require_chat(self, chat_id: int) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            raise ValueError(f"unknown chat {chat_id}: call add_user or add_group first")
        return chat

    def _find_message(self, chat: _Chat, ref: JSONDict | int) -> _StoredMessage:
        message_id = int(ref["message_id"]) if isinstance(ref, dict) else int(ref)
        stored = chat.messages.get(message_id)
        if stored is None or stored.deleted:
            raise ValueError(f"message {message_id} is not in chat {chat.id}")
        return stored

    def _new_message(
        self, chat: _Chat, sender: JSONDict, reply_to: _StoredMessage | None = None
    ) -> JSONDict:
        message_id = chat.next_message_id
        chat.next_message_id += 1
        message: JSONDict = {
            "message_id": message_id,
            "from": sender,
            "chat": dict(chat.info),
            "date": int(time.time()),
        }
        if reply_to is not None:
            message["reply_to_message"] = self._quoted(reply_to.message)
        return message

    @staticmethod
    def _quoted(message: JSONDict) -> JSONDict:
        quoted = copy.deepcopy(message)
        quoted.pop("reply_to_message", None)
        return quoted

    @staticmethod
    def _record(stored: _StoredMessage) -> JSONDict:
        record = copy.deepcopy(stored.message)
        record["deleted"] = stored.deleted
        record["edits"] = stored.edits
        if stored.reply_keyboard is not None:
            record["reply_keyboard"] = copy.deepcopy(stored.reply_keyboard)
        return record

    def _address_commands(self, text: str) -> str:
        match = re.match(r"^/[A-Za-z0-9_]{1,64}(?![A-Za-z0-9_@])", text)
        if match is None:
            return text
        return f"{match.group(0)}@{self.bot_username}{text[match.end() :]}"

    def _delivered_to_bot(self, chat: _Chat, message: JSONDict) -> bool:
        """Privacy mode (core.telegram.org/bots/features#privacy-mode)."""
        if not chat.is_group:
            return True
        if chat.bot_status not in ("member", "administrator"):
            return False
        if not self.privacy_mode or chat.bot_status == "administrator":
            return True
        replied = message.get("reply_to_message")
        if replied and replied.get("from", {}).get("id") == self.bot_id:
            return True
        for entity in message.get("entities", []):
            if entity["type"] == "bot_command" and entity["offset"] == 0:
                command = message["text"][: entity["length"]]
                target = command.partition("@")[2]
                return not target or target.lower() == self.bot_username.lower()
        return False


@dataclass(frozen=True)
class _WithDescription:
    """A result whose answer also carries a ``description`` (setWebhook, deleteWebhook)."""

    result: Any
    description: str


# ---------------------------------------------------------------------------
# Control API for tests driving a bot that runs in another process
# ---------------------------------------------------------------------------
class ControlApi:
    """``/_emulator/...``: the user side and the records over HTTP (JSON in, JSON out).

    POST users, groups, messages, callbacks, block, unblock, bot_added,
    limits, reset; GET health, sent, deleted, history, callback_answers,
    commands, requests, stats, updates, webhook, wait (long-polls for a sent
    message: ``chat_id``, ``text_contains``, ``timeout``).
    """

    def __init__(self, emulator: TelegramEmulator) -> None:
        self.emu = emulator

    def register(self, app: web.Application) -> None:
        """Add the routes to ``app``."""
        post = {
            "users": self._users,
            "groups": self._groups,
            "messages": self._messages,
            "callbacks": self._callbacks,
            "block": self._block,
            "unblock": self._unblock,
            "bot_added": self._bot_added,
            "limits": self._limits,
            "reset": self._reset,
        }
        get = {
            "health": self._health,
            "sent": self._sent,
            "deleted": self._deleted,
            "history": self._history,
            "callback_answers": self._callback_answers,
            "commands": self._commands,
            "requests": self._requests,
            "stats": self._stats,
            "updates": self._updates,
            "webhook": self._webhook,
            "wait": self._wait,
        }
        for name, handler in post.items():
            app.router.add_post(f"/_emulator/{name}", self._wrap(handler))
        for name, handler in get.items():
            app.router.add_get(f"/_emulator/{name}", self._wrap(handler))

    @staticmethod
    def _wrap(handler: Callable[[web.Request], Any]) -> Callable[[web.Request], Any]:
        async def run(request: web.Request) -> web.Response:
            try:
                result = await handler(request)
            except TimeoutError as exc:
                return web.json_response({"ok": False, "error": str(exc)}, status=408)
            except (ValueError, KeyError, TypeError) as exc:
                return web.json_response({"ok": False, "error": str(exc)}, status=400)
            return web.json_response({"ok": True, "result": result})

        return run

    @staticmethod
    async def _body(request: web.Request) -> JSONDict:
        if not request.can_read_body:
            return {}
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError("a JSON object is expected")
        return body

    @staticmethod
    def _chat_query(request: web.Request) -> int | None:
        value = request.query.get("chat_id")
        return int(value) if value not in (None, "") else None

    async def _health(self, _request: web.Request) -> JSONDict:
        return {"base_url": self.emu.base_url, "bot": self.emu.bot_user}

    async def _users(self, request: web.Request) -> JSONDict:
        b = await self._body(request)
        return self.emu.add_user(
            int(b["user_id"]),
            str(b["first_name"]),
            language_code=b.get("language_code", "pt-br"),
            username=b.get("username"),
            last_name=b.get("last_name"),
            started=bool(b.get("started", True)),
        )

    async def _groups(self, request: web.Request) -> JSONDict:
        b = await self._body(request)
        return self.emu.add_group(
            int(b["chat_id"]),
            str(b["title"]),
            bot_can_delete=bool(b.get("bot_can_delete", True)),
            chat_type=b.get("chat_type"),
            username=b.get("username"),
            bot_is_member=bool(b.get("bot_is_member", True)),
            bot_is_admin=b.get("bot_is_admin"),
            owner_id=b.get("owner_id"),
        )

    async def _messages(self, request: web.Request) -> JSONDict:
        b = await self._body(request)
        chat_id = b.get("chat_id")
        return self.emu.user_sends(
            int(b["user_id"]),
            str(b["text"]),
            int(chat_id) if chat_id is not None else None,
            reply_to=b.get("reply_to_message_id"),
            address_commands=bool(b.get("address_commands", True)),
        )

    async def _callbacks(self, request: web.Request) -> JSONDict:
        b = await self._body(request)
        query_id = self.emu.user_presses(
            int(b["user_id"]),
            int(b["message_id"]),
            str(b["callback_data"]),
            chat_id=int(b["chat_id"]) if b.get("chat_id") is not None else None,
        )
        return {"callback_query_id": query_id}

    async def _block(self, request: web.Request) -> bool:
        self.emu.block(int((await self._body(request))["user_id"]))
        return True

    async def _unblock(self, request: web.Request) -> bool:
        self.emu.unblock(int((await self._body(request))["user_id"]))
        return True

    async def _bot_added(self, request: web.Request) -> JSONDict:
        b = await self._body(request)
        return self.emu.bot_added_to_group(
            int(b["chat_id"]), int(b["user_id"]), as_admin=bool(b.get("as_admin", False))
        )

    async def _limits(self, request: web.Request) -> JSONDict:
        b = await self._body(request)
        allowed = {
            "global_per_s",
            "paid_global_per_s",
            "per_chat_per_s",
            "group_per_min",
            "enabled",
            "edits_per_chat_per_s",
            "count_edits_globally",
            "group_window_s",
        }
        unknown = set(b) - allowed
        if unknown:
            raise ValueError(f"unknown limits: {sorted(unknown)}")
        return self.emu.set_limits(**b).__dict__

    async def _reset(self, _request: web.Request) -> bool:
        self.emu.reset_records()
        return True

    async def _sent(self, request: web.Request) -> list[JSONDict]:
        return self.emu.sent(self._chat_query(request))

    async def _deleted(self, request: web.Request) -> list[int]:
        chat_id = self._chat_query(request)
        if chat_id is None:
            raise ValueError("chat_id is required")
        return self.emu.deleted(chat_id)

    async def _history(self, request: web.Request) -> list[JSONDict]:
        chat_id = self._chat_query(request)
        if chat_id is None:
            raise ValueError("chat_id is required")
        return self.emu.history(chat_id)

    async def _callback_answers(self, _request: web.Request) -> list[JSONDict]:
        return self.emu.callback_answers

    async def _commands(self, request: web.Request) -> list[JSONDict]:
        scope_text = request.query.get("scope")
        scope: JSONDict | str | None = None
        if scope_text:
            scope = json.loads(scope_text) if scope_text.startswith("{") else scope_text
        return self.emu.commands(scope, request.query.get("language_code", ""))

    async def _requests(self, _request: web.Request) -> list[JSONDict]:
        return [r.__dict__ for r in self.emu.requests]

    async def _stats(self, _request: web.Request) -> JSONDict:
        return self.emu.stats.__dict__

    async def _updates(self, _request: web.Request) -> list[JSONDict]:
        return self.emu.pending_updates()

    async def _webhook(self, _request: web.Request) -> JSONDict:
        return self.emu.webhook_info()

    async def _wait(self, request: web.Request) -> JSONDict:
        chat_id = self._chat_query(request)
        needle = request.query.get("text_contains", "")
        timeout = float(request.query.get("timeout", "10"))

        def matches(message: JSONDict) -> bool:
            if chat_id is not None and message["chat"]["id"] != chat_id:
                return False
            body = str(message.get("text", message.get("caption", "")))
            return not message["deleted"] and needle in body

        return await self.emu.wait_for_async(matches, timeout)


# ---------------------------------------------------------------------------
# Standalone
# ---------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Run the emulator until SIGTERM / SIGINT; print its address once listening."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.emulators.telegram",
        description="Local Telegram Bot API emulator (127.0.0.1 only).",
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--bot-username", default=DEFAULT_BOT_USERNAME)
    parser.add_argument("--bot-name", default=DEFAULT_BOT_NAME)
    parser.add_argument("--no-rate-limits", action="store_true", help="do not answer 429")
    parser.add_argument("--no-privacy-mode", action="store_true")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def request_stop(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    emulator = TelegramEmulator(
        args.token,
        port=args.port,
        bot_username=args.bot_username,
        bot_first_name=args.bot_name,
        privacy_mode=not args.no_privacy_mode,
        rate_limits=not args.no_rate_limits,
    )
    with emulator:
        print(
            f"telegram emulator listening on {emulator.base_url} "
            f"(base_url {emulator.api_base_url}, control {emulator.base_url}/_emulator/)",
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
