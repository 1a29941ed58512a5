"""The Telegram emulator against the real python-telegram-bot (Application and Bot).

Every expectation here is a Bot API rule (core.telegram.org/bots/api and the
Bot FAQ) or an error text of the real server; the emulator must make PTB raise
the same exceptions Telegram would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import signal
import struct
import subprocess
import sys
import time
import warnings
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    ChatMemberAdministrator,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    ReplyParameters,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, RetryAfter
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)

from tests.emulators.telegram import (
    EntityParseError,
    TelegramEmulator,
    parse_html,
    parse_markdown_v2,
    utf16_len,
)

TOKEN = "5000000001:AAEmulatedTokenForRoboTraderTests_0123"
BOT_USERNAME = "robotrader_test_bot"
ANA = 1001  # a Brazilian user (language pt-br)
BOB = 1002
GROUP = -1001234567890  # a supergroup
ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------
@pytest.fixture
def emu() -> Iterator[TelegramEmulator]:
    with TelegramEmulator(TOKEN, bot_username=BOT_USERNAME) as emulator:
        emulator.add_user(ANA, "Ana", language_code="pt-br", username="ana_trader")
        emulator.add_user(BOB, "Bob", language_code="en")
        yield emulator


@pytest.fixture
async def bot(emu: TelegramEmulator) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=emu.api_base_url, base_file_url=emu.file_base_url) as client:
        yield client


def build_application(
    emu: TelegramEmulator, token: str = TOKEN
) -> Application[Any, Any, Any, Any, Any, Any]:
    return (
        Application.builder()
        .token(token)
        .base_url(f"{emu.base_url}/bot")
        .base_file_url(f"{emu.base_url}/file/bot")
        .build()
    )


@asynccontextmanager
async def polling(app: Application[Any, Any, Any, Any, Any, Any]) -> AsyncIterator[None]:
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


def retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the type will become timedelta
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def png(width: int, height: int) -> bytes:
    """A valid, tiny grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


# ---------------------------------------------------------------------------
# raw protocol
# ---------------------------------------------------------------------------
async def test_get_me_and_envelopes(emu: TelegramEmulator, bot: Bot) -> None:
    assert bot.username == BOT_USERNAME  # Bot.initialize() called getMe
    me = await bot.get_me()
    assert me.is_bot and me.id == 5000000001
    async with httpx.AsyncClient(base_url=emu.base_url) as http:
        ok = (await http.get(f"/bot{TOKEN}/getMe")).json()
        assert ok["ok"] is True and ok["result"]["is_bot"] is True
        assert ok["result"]["username"] == BOT_USERNAME
        # method names are case-insensitive; JSON bodies work like forms
        sent = await http.post(f"/bot{TOKEN}/SENDMESSAGE", json={"chat_id": ANA, "text": "oi"})
        message = sent.json()["result"]
        assert message["from"]["is_bot"] is True
        assert message["chat"] == {
            "id": ANA,
            "first_name": "Ana",
            "username": "ana_trader",
            "type": "private",
        }
        assert isinstance(message["date"], int) and message["text"] == "oi"
        unknown = await http.get(f"/bot{TOKEN}/sendTelepathy")
        assert unknown.status_code == 404
        assert unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        wrong = await http.get("/bot123:nope/getMe")
        assert wrong.status_code == 401
        assert wrong.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


async def test_wrong_token_raises_invalid_token(emu: TelegramEmulator) -> None:
    stranger = Bot("123456:wrong-token", base_url=emu.api_base_url)
    with pytest.raises(InvalidToken):
        await stranger.initialize()


async def test_long_polling_waits_and_offset_confirms(emu: TelegramEmulator, bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert time.monotonic() - started >= 0.9  # the timeout really waited

    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    emu.user_sends(ANA, "oi robô")
    updates = await asyncio.wait_for(poll, 3)
    assert time.monotonic() - started < 2  # answered as soon as the update arrived
    assert [u.message.text for u in updates if u.message] == ["oi robô"]
    assert updates[0].message is not None and updates[0].message.from_user is not None
    assert updates[0].message.from_user.language_code == "pt-br"

    # not confirmed yet: returned again; confirmed by a higher offset
    assert len(await bot.get_updates()) == 1
    assert await bot.get_updates(offset=updates[-1].update_id + 1) == ()
    assert emu.pending_updates() == []

    # allowed_updates is remembered: callback queries only
    await bot.get_updates(allowed_updates=["callback_query"])
    emu.user_sends(ANA, "ignored")
    assert await bot.get_updates() == ()


# ---------------------------------------------------------------------------
# the real Application, polling
# ---------------------------------------------------------------------------
async def test_application_answers_start_in_portuguese(emu: TelegramEmulator) -> None:
    app = build_application(emu)

    async def start(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_user is not None and update.effective_message is not None
        greeting = "Olá" if update.effective_user.language_code == "pt-br" else "Hello"
        await update.effective_message.reply_text(
            f"{greeting}, <b>{update.effective_user.first_name}</b>!", parse_mode=ParseMode.HTML
        )

    app.add_handler(CommandHandler("start", start))
    async with polling(app):
        sent_by_user = emu.user_sends(ANA, "/start")
        assert sent_by_user["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
        reply = await emu.wait_for_async(lambda m: m["chat"]["id"] == ANA)
    assert reply["text"] == "Olá, Ana!"
    assert reply["entities"] == [{"type": "bold", "offset": 5, "length": 3}]
    assert [r.status for r in emu.requests if r.method == "sendMessage"] == [200]
    assert emu.pending_updates() == []  # the Application confirmed what it fetched


async def test_application_command_in_group_is_addressed_to_the_bot(
    emu: TelegramEmulator,
) -> None:
    emu.add_group(GROUP, "Traders BR")
    app = build_application(emu)

    async def price(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("BTC 100000")

    app.add_handler(CommandHandler("price", price))
    async with polling(app):
        message = emu.user_sends(BOB, "/price btc", GROUP)
        assert message["text"] == f"/price@{BOT_USERNAME} btc"
        assert message["entities"][0] == {
            "type": "bot_command",
            "offset": 0,
            "length": len(f"/price@{BOT_USERNAME}"),
        }
        reply = await emu.wait_for_async(lambda m: m["chat"]["id"] == GROUP)
    assert reply["chat"]["type"] == "supergroup"
    assert reply["reply_to_message"]["message_id"] == message["message_id"]


async def test_callback_query_is_answered_once(emu: TelegramEmulator, bot: Bot) -> None:
    app = build_application(emu)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Comprar", callback_data="buy:BTC")]])

    async def on_press(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        await query.answer(f"Ordem {query.data} recebida")
        await query.edit_message_text("Ordem enviada ✅")

    app.add_handler(CallbackQueryHandler(on_press))
    async with polling(app):
        offer = await bot.send_message(ANA, "Comprar BTC?", reply_markup=keyboard)
        with pytest.raises(ValueError, match="no button"):
            emu.user_presses(ANA, offer.to_dict(), "sell:BTC")
        query_id = emu.user_presses(ANA, offer.to_dict(), "buy:BTC")
        edited = await emu.wait_for_async(lambda m: m["edits"] == 1)
    assert edited["text"] == "Ordem enviada ✅"
    assert "reply_markup" not in edited  # an edit without reply_markup removes the keyboard
    [answer] = emu.callback_answers
    assert answer["callback_query_id"] == query_id
    assert answer["text"] == "Ordem buy:BTC recebida"
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(query_id)


async def test_blocking_thread_can_wait_for_a_reply(emu: TelegramEmulator) -> None:
    app = build_application(emu)

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None
        await context.bot.send_message(update.effective_chat.id, " ".join(context.args or []))

    app.add_handler(CommandHandler("echo", echo))
    async with polling(app):
        emu.user_sends(BOB, "/echo from another thread")
        reply = await asyncio.to_thread(emu.wait_for, lambda m: m["chat"]["id"] == BOB, 10)
    assert reply["text"] == "from another thread"


# ---------------------------------------------------------------------------
# bare Bot: sending rules
# ---------------------------------------------------------------------------
async def test_message_options_and_limits(emu: TelegramEmulator, bot: Bot) -> None:
    first = await bot.send_message(ANA, "see https://example.com #btc $BTC @ana_trader")
    assert [(e.type, e.offset, e.length) for e in first.entities] == [
        ("url", 4, 19),
        ("hashtag", 24, 4),
        ("cashtag", 29, 4),
        ("mention", 34, 11),
    ]
    emu.set_limits(enabled=False)
    reply = await bot.send_message(
        ANA,
        "  trimmed  ",
        reply_parameters=ReplyParameters(first.message_id),
        link_preview_options=LinkPreviewOptions(is_disabled=True),
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("Site", url="example.com")]]),
    )
    assert reply.text == "trimmed"
    assert reply.reply_to_message is not None
    assert reply.reply_to_message.message_id == first.message_id
    assert reply.link_preview_options is not None and reply.link_preview_options.is_disabled
    assert reply.reply_markup is not None
    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await bot.send_message(ANA, "x", reply_parameters=ReplyParameters(999))
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(ANA, "a" * 4097)
    assert (await bot.send_message(ANA, "a" * 4096)).text == "a" * 4096
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(ANA, "   ")
    too_long_data = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="é" * 33)]])
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await bot.send_message(ANA, "k", reply_markup=too_long_data)
    fits = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="é" * 32)]])
    await bot.send_message(ANA, "k", reply_markup=fits)
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(424242, "x")
    emu.add_user(1003, "Carla", started=False)
    with pytest.raises(Forbidden, match="bot can't initiate conversation"):
        await bot.send_message(1003, "x")


async def test_markdown_v2_and_html_are_validated(emu: TelegramEmulator, bot: Bot) -> None:
    emu.set_limits(enabled=False)
    with pytest.raises(BadRequest) as bad:
        await bot.send_message(ANA, "PnL: +1.5%", parse_mode=ParseMode.MARKDOWN_V2)
    assert bad.value.message == (
        "Can't parse entities: character '+' is reserved and must be escaped with the "
        "preceding '\\'"
    )
    good = await bot.send_message(
        ANA, r"*PnL:* \+1\.5% [ver](https://example.com/pnl) `BTC_USDT`", parse_mode="MarkdownV2"
    )
    assert good.text == "PnL: +1.5% ver BTC_USDT"
    assert [(e.type, e.offset, e.length) for e in good.entities] == [
        ("bold", 0, 4),
        ("text_link", 11, 3),
        ("code", 15, 8),
    ]
    assert good.entities[1].url == "https://example.com/pnl"
    with pytest.raises(BadRequest, match='unsupported start tag "div" at byte offset 0'):
        await bot.send_message(ANA, "<div>x</div>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match="can't find end tag corresponding to start tag"):
        await bot.send_message(ANA, "<b>unclosed", parse_mode=ParseMode.HTML)
    html = await bot.send_message(
        ANA, "<b>5 &lt; 6</b> <tg-spoiler>🤫</tg-spoiler>", parse_mode=ParseMode.HTML
    )
    assert html.text == "5 < 6 🤫"
    assert [(e.type, e.offset, e.length) for e in html.entities] == [
        ("bold", 0, 5),
        ("spoiler", 6, 2),  # UTF-16 code units: the emoji counts twice
    ]


def test_parsers_match_tdlib_error_texts() -> None:
    """Vectors from TDLib's test/message_entities.cpp (the Bot API server's parser)."""
    expected_errors = {
        "🏟 🏟_abacaba": "Can't find end of Italic entity at byte offset 9",
        "🏟 🏟```a ": "Can't find end of PreCode entity at byte offset 9",
        "🏟 🏟__": "Can't find end of Underline entity at byte offset 9",
        "[telegram\\.org](asd": "Can't find end of a URL at byte offset 16",
        "🏟 🏟>": "Character '>' is reserved and must be escaped with the preceding '\\'",
    }
    for text, message in expected_errors.items():
        with pytest.raises(EntityParseError) as error:
            parse_markdown_v2(text)
        assert str(error.value) == message
    html_errors = {
        "🏟 🏟&lt;<abacaba": "Unclosed start tag at byte offset 13",
        "🏟 🏟&lt;<i>a</em   >": 'Unmatched end tag at byte offset 17, expected "</i>", '
        'found "</em>"',
        "🏟 🏟&lt;<i    aba  =  190azAz-.,": "Unexpected end of name token at byte offset 27",
    }
    for text, message in html_errors.items():
        with pytest.raises(EntityParseError) as error:
            parse_html(text)
        assert str(error.value) == message
    text, entities = parse_markdown_v2("🏟 🏟_🏟 *🏟*_")
    assert text == "🏟 🏟🏟 🏟"
    assert entities == [
        {"type": "italic", "offset": 5, "length": 5},
        {"type": "bold", "offset": 8, "length": 2},
    ]
    assert utf16_len("🏟") == 2


async def test_send_photo_upload_and_reuse(emu: TelegramEmulator, bot: Bot) -> None:
    emu.set_limits(enabled=False)
    image = png(640, 480)
    message = await bot.send_photo(
        ANA, photo=image, caption="<b>PnL</b> semanal", parse_mode=ParseMode.HTML
    )
    sizes = [(p.width, p.height) for p in message.photo]
    assert sizes == [(90, 68), (320, 240), (640, 480)]
    assert message.caption == "PnL semanal"
    assert [(e.type, e.offset, e.length) for e in message.caption_entities] == [("bold", 0, 3)]
    largest = message.photo[-1]
    downloaded = await (await bot.get_file(largest.file_id)).download_as_bytearray()
    assert bytes(downloaded) == image
    again = await bot.send_photo(BOB, photo=largest.file_id)
    assert again.photo[-1].file_unique_id == largest.file_unique_id
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.send_photo(ANA, photo=image, caption="x" * 1025)
    with pytest.raises(BadRequest, match="Image_process_failed"):
        await bot.send_photo(ANA, photo=b"not an image at all")
    with pytest.raises(BadRequest, match="Wrong file identifier"):
        await bot.send_photo(ANA, photo="AgACAgEAAxkBAAunknown")
    record = emu.sent(ANA)[0]
    assert record["caption"] == "PnL semanal" and record["deleted"] is False
    await bot.send_chat_action(ANA, "upload_photo")
    assert [a["action"] for a in emu.chat_actions(ANA)] == ["upload_photo"]


async def test_edit_rules(emu: TelegramEmulator, bot: Bot) -> None:
    emu.set_limits(enabled=False)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Atualizar", callback_data="r")]])
    message = await bot.send_message(ANA, "BTC 100", reply_markup=keyboard)
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("BTC 100", ANA, message.message_id, reply_markup=keyboard)
    edited = await bot.edit_message_text("BTC 101", ANA, message.message_id, reply_markup=keyboard)
    assert isinstance(edited, type(message)) and edited.edit_date is not None
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_reply_markup(ANA, message.message_id, reply_markup=keyboard)
    await bot.edit_message_reply_markup(ANA, message.message_id, reply_markup=None)
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", ANA, 9999)
    with pytest.raises(BadRequest, match="There is no caption in the message to edit"):
        await bot.edit_message_caption(ANA, message.message_id, caption="c")
    user_message = emu.user_sends(ANA, "minha mensagem")
    with pytest.raises(BadRequest, match="Message can't be edited"):
        await bot.edit_message_text("hack", ANA, user_message["message_id"])
    photo = await bot.send_photo(ANA, png(10, 10), caption="v1")
    await bot.edit_message_caption(ANA, photo.message_id, caption="v2")
    [record] = [m for m in emu.sent(ANA) if m["message_id"] == message.message_id]
    assert record["text"] == "BTC 101" and record["edits"] == 2 and "reply_markup" not in record


async def test_delete_rules_private_and_group(emu: TelegramEmulator, bot: Bot) -> None:
    emu.set_limits(enabled=False)
    incoming = emu.user_sends(ANA, "apague isto")
    assert await bot.delete_message(ANA, incoming["message_id"]) is True
    assert emu.deleted(ANA) == [incoming["message_id"]]
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(ANA, incoming["message_id"])

    emu.add_group(GROUP, "Sem direitos", bot_can_delete=False)
    from_user = emu.user_sends(BOB, "spam", GROUP)
    with pytest.raises(BadRequest, match="Message can't be deleted"):
        await bot.delete_message(GROUP, from_user["message_id"])
    own = await bot.send_message(GROUP, "aviso")  # outgoing messages can always be deleted
    assert await bot.delete_message(GROUP, own.message_id)

    emu.add_group(-1009, "Com direitos", bot_can_delete=True)
    spam = emu.user_sends(BOB, "spam", -1009)
    assert await bot.delete_message(-1009, spam["message_id"])
    assert emu.deleted(-1009) == [spam["message_id"]]
    member = await bot.get_chat_member(-1009, bot.id)
    assert isinstance(member, ChatMemberAdministrator) and member.can_delete_messages
    assert [m.user.id for m in await bot.get_chat_administrators(-1009)] == [bot.id]
    assert [m["deleted"] for m in emu.sent(GROUP)] == [True]


async def test_commands_per_scope_and_language(emu: TelegramEmulator, bot: Bot) -> None:
    english = [BotCommand("start", "Start the bot"), BotCommand("price", "Show a price")]
    portuguese = [BotCommand("start", "Iniciar o robô"), BotCommand("price", "Ver cotação")]
    assert await bot.set_my_commands(english)
    assert await bot.set_my_commands(portuguese, language_code="pt")
    assert await bot.set_my_commands(
        [BotCommand("help", "Ajuda")], scope=BotCommandScopeAllPrivateChats(), language_code="pt"
    )
    assert emu.commands() == [c.to_dict() for c in english]
    assert emu.commands(language_code="pt") == [c.to_dict() for c in portuguese]
    assert emu.commands("all_private_chats", "pt") == [{"command": "help", "description": "Ajuda"}]
    assert [c.command for c in await bot.get_my_commands(language_code="pt")] == [
        "start",
        "price",
    ]
    # what the pt-br user sees in private: the most specific scope with pt commands
    assert [c["command"] for c in emu.visible_commands(ANA)] == ["help"]
    assert [c["command"] for c in emu.visible_commands(BOB)] == ["start", "price"]
    assert await bot.delete_my_commands(language_code="pt")
    assert emu.commands(language_code="pt") == []
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Start", "upper case is not allowed")])
    with pytest.raises(BadRequest, match="Command description must be non-empty"):
        await bot.set_my_commands([("start", " ")])
    with pytest.raises(BadRequest, match="Command length must not exceed 32"):
        await bot.set_my_commands([("a" * 33, "long")])
    with pytest.raises(BadRequest, match="Bot_commands_too_much"):
        await bot.set_my_commands([(f"c{i}", "d") for i in range(101)])
    with pytest.raises(BadRequest, match="Invalid language code"):
        await bot.set_my_commands(english, language_code="pt-br")


async def test_blocked_user_answers_forbidden(emu: TelegramEmulator, bot: Bot) -> None:
    emu.block(ANA)
    with pytest.raises(Forbidden, match="bot was blocked by the user") as forbidden:
        await bot.send_message(ANA, "Seu relatório")
    assert forbidden.value.message == "Forbidden: bot was blocked by the user"
    [update] = emu.pending_updates()
    assert update["my_chat_member"]["new_chat_member"]["status"] == "kicked"
    emu.unblock(ANA)
    assert (await bot.send_message(ANA, "de volta")).text == "de volta"


# ---------------------------------------------------------------------------
# flood limits
# ---------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_per_chat_limit_answers_429_with_retry_after(emu: TelegramEmulator, bot: Bot) -> None:
    await bot.send_message(ANA, "1")
    with pytest.raises(RetryAfter) as limited:
        await bot.send_message(ANA, "2")
    assert retry_seconds(limited.value) == 1
    await bot.send_message(BOB, "another chat is fine")
    await asyncio.sleep(1.05)
    message = await bot.send_message(ANA, "own bucket for edits")
    await bot.edit_message_text("edited", ANA, message.message_id)  # send then edit is fine
    with pytest.raises(RetryAfter):
        await bot.edit_message_text("edited again", ANA, message.message_id)
    async with httpx.AsyncClient(base_url=emu.base_url) as http:
        await asyncio.sleep(1.05)
        await http.post(f"/bot{TOKEN}/sendMessage", data={"chat_id": BOB, "text": "a"})
        raw = await http.post(f"/bot{TOKEN}/sendMessage", data={"chat_id": BOB, "text": "b"})
    assert raw.status_code == 429
    assert raw.json() == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    stats = emu.stats
    assert stats.rate_limited == 3
    assert stats.messages_sent == 4 and stats.edits == 1
    assert [r.status for r in emu.requests if r.chat_id == ANA][:2] == [200, 429]


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_global_and_group_limits(emu: TelegramEmulator, bot: Bot) -> None:
    for user_id in range(2000, 2004):
        emu.add_user(user_id, f"U{user_id}")
    emu.set_limits(global_per_s=3, per_chat_per_s=1)
    for user_id in range(2000, 2003):
        await bot.send_message(user_id, "alerta")
    with pytest.raises(RetryAfter) as limited:
        await bot.send_message(2003, "alerta")
    assert retry_seconds(limited.value) == 1

    emu.add_group(GROUP, "Sinais")
    emu.set_limits(global_per_s=30, per_chat_per_s=0, group_per_min=2)
    await bot.send_message(GROUP, "1")
    await bot.send_message(GROUP, "2")
    with pytest.raises(RetryAfter) as group_limited:
        await bot.send_message(GROUP, "3")
    assert 59 <= retry_seconds(group_limited.value) <= 60
    emu.set_limits(enabled=False)
    await bot.send_message(GROUP, "3")


# ---------------------------------------------------------------------------
# webhook
# ---------------------------------------------------------------------------
@asynccontextmanager
async def webhook_receiver(status: int = 200) -> AsyncIterator[tuple[str, asyncio.Queue[Any]]]:
    received: asyncio.Queue[Any] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        await received.put((dict(request.headers), await request.json()))
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/tg-hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/tg-hook", received
    finally:
        await runner.cleanup()


async def test_webhook_delivers_with_secret_and_blocks_get_updates(
    emu: TelegramEmulator, bot: Bot
) -> None:
    app = build_application(emu)

    async def start(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("via webhook")

    app.add_handler(CommandHandler("start", start))
    async with webhook_receiver() as (url, received):
        assert await bot.set_webhook(url, secret_token="s3cr3t-Token_1")
        with pytest.raises(Conflict) as conflict:
            await bot.get_updates()
        assert conflict.value.message == (
            "Conflict: can't use getUpdates method while webhook is active; "
            "use deleteWebhook to delete the webhook first"
        )
        emu.user_sends(ANA, "/start")
        headers, body = await asyncio.wait_for(received.get(), 5)
        assert headers["X-Telegram-Bot-Api-Secret-Token"] == "s3cr3t-Token_1"
        assert body["message"]["text"] == "/start"
        await app.initialize()
        await app.start()
        try:
            await app.update_queue.put(Update.de_json(body, app.bot))
            reply = await emu.wait_for_async(lambda m: m["text"] == "via webhook")
        finally:
            await app.stop()
            await app.shutdown()
        assert reply["chat"]["id"] == ANA
        info = await bot.get_webhook_info()
        assert info.url == url and info.pending_update_count == 0
    with pytest.raises(BadRequest, match="Bad webhook"):
        await bot.set_webhook("https://example.com/hook")
    assert await bot.delete_webhook()
    assert await bot.get_updates() == ()


async def test_webhook_failure_is_reported_and_retried(emu: TelegramEmulator, bot: Bot) -> None:
    async with webhook_receiver(status=500) as (url, received):
        await bot.set_webhook(url)
        emu.user_sends(ANA, "oi")
        await asyncio.wait_for(received.get(), 5)
        await asyncio.wait_for(received.get(), 5)  # delivered again
        info = await bot.get_webhook_info()
        assert info.pending_update_count == 1
        assert (
            info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
        )
        assert await bot.delete_webhook(drop_pending_updates=True)
    assert emu.pending_updates() == []


# ---------------------------------------------------------------------------
# driving it from another process
# ---------------------------------------------------------------------------
async def test_control_api(emu: TelegramEmulator, bot: Bot) -> None:
    async with httpx.AsyncClient(base_url=f"{emu.base_url}/_emulator") as control:
        sent = await control.post("/messages", json={"user_id": ANA, "text": "/saldo"})
        assert sent.json()["result"]["entities"][0]["type"] == "bot_command"
        updates = await bot.get_updates()
        assert updates[-1].message is not None and updates[-1].message.text == "/saldo"
        reply = await bot.send_message(
            ANA,
            "Saldo: 10 USDT",
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("Detalhes", callback_data="details")]]
            ),
        )
        waited = await control.get("/wait", params={"chat_id": ANA, "text_contains": "Saldo"})
        assert waited.json()["result"]["message_id"] == reply.message_id
        pressed = await control.post(
            "/callbacks",
            json={"user_id": ANA, "message_id": reply.message_id, "callback_data": "details"},
        )
        assert pressed.json()["result"]["callback_query_id"]
        listed = (await control.get("/sent", params={"chat_id": ANA})).json()["result"]
        assert [m["text"] for m in listed] == ["Saldo: 10 USDT"]
        stats = (await control.get("/stats")).json()["result"]
        assert stats["messages_sent"] == 1
        missing = await control.post("/messages", json={"user_id": 9, "text": "x"})
        assert missing.status_code == 400


def test_standalone_process_runs_until_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.telegram", "--port", "0", "--token", TOKEN],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        base = match.group(1)
        me = httpx.get(f"{base}/bot{TOKEN}/getMe", timeout=5).json()
        assert me["result"]["username"] == BOT_USERNAME
        httpx.post(
            f"{base}/_emulator/users", json={"user_id": 7, "first_name": "Zé"}, timeout=5
        ).raise_for_status()
        sent = httpx.post(
            f"{base}/bot{TOKEN}/sendMessage", data={"chat_id": 7, "text": "olá"}, timeout=5
        ).json()
        assert sent["result"]["chat"]["first_name"] == "Zé"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
