"""The python-telegram-bot adapter: updates in, chat core, rendered replies out. No rules here."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeDefault,
    Message,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bots.core.context import ChatContext
from bots.core.core import ChatCore
from bots.core.registry import COMMANDS
from bots.core.replies import Reply
from bots.telegram.rendering import render_keyboard, render_messages
from robotrader import languages
from robotrader.enums import Platform
from robotrader.i18n import Translator

log = logging.getLogger(__name__)

CORE_KEY = "chat_core"
PUBLIC_COMMANDS = ("start", "help", "language", "link")


def _core(context: ContextTypes.DEFAULT_TYPE) -> ChatCore:
    core: ChatCore = context.application.bot_data[CORE_KEY]
    return core


class ProgressMessage:
    """One message that shows long work as it goes: sent once, then edited in place.

    After a button press it is the pressed message itself (its buttons go). Best
    effort: a refused edit is logged and the work goes on; its result still comes.
    """

    def __init__(self, bot: Bot, chat_id: int | str, pressed: Message | None = None) -> None:
        self.bot = bot
        self.chat_id = chat_id
        self.message = pressed

    async def __call__(self, reply: Reply) -> None:
        # A progress line is short; were it not, its first message is what stays shown.
        text = next(iter(render_messages(reply)), "")
        keyboard = render_keyboard(reply)
        try:
            if self.message is None:
                self.message = await self.bot.send_message(
                    self.chat_id, text, parse_mode=ParseMode.HTML, reply_markup=keyboard
                )
                return
            edited = await self.message.edit_text(
                text, parse_mode=ParseMode.HTML, reply_markup=keyboard
            )
            if isinstance(edited, Message):
                self.message = edited
        except BadRequest as exc:
            if "not modified" not in str(exc).lower():
                log.warning("telegram.progress_failed chat=%s error=%s", self.chat_id, exc)
        except TelegramError as exc:
            log.warning("telegram.progress_failed chat=%s error=%s", self.chat_id, exc)


def _chat_context(
    update: Update, context: ContextTypes.DEFAULT_TYPE, *, pressed: Message | None = None
) -> ChatContext | None:
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None or user.is_bot:
        return None
    message = update.effective_message
    bot = context.bot

    async def delete_incoming() -> bool:
        if message is None:
            return False
        try:
            return bool(await message.delete())
        except TelegramError as exc:
            log.warning("telegram.delete_failed chat=%s error=%s", chat.id, type(exc).__name__)
            return False

    def private_link(payload: str) -> str | None:
        return f"https://t.me/{bot.username}?start={payload}" if bot.username else None

    return ChatContext(
        platform=Platform.TELEGRAM,
        platform_user_id=str(user.id),
        chat_id=str(chat.id),
        is_private=chat.type == ChatType.PRIVATE,
        client_language=user.language_code,
        display_name=user.first_name,
        private_link=private_link,
        delete_incoming=delete_incoming,
        progress=ProgressMessage(bot, chat.id, pressed),
    )


async def send_replies(
    context: ContextTypes.DEFAULT_TYPE,
    ctx: ChatContext,
    replies: list[Reply],
    *,
    pressed: Message | None = None,
) -> None:
    """Render and send; ``pressed`` is the message whose button led here (for edits)."""
    bot = context.bot
    for reply in replies:
        if not reply.blocks and not reply.buttons and reply.image is None and not reply.document:
            continue
        chat_id: str | int = ctx.platform_user_id if reply.private else ctx.chat_id
        chunks = render_messages(reply)
        keyboard = render_keyboard(reply)
        try:
            if reply.image is not None:
                await bot.send_photo(
                    chat_id, reply.image.png, caption=reply.image.caption[:1024] or None
                )
            if reply.document is not None:
                await bot.send_document(
                    chat_id,
                    reply.document.data,
                    filename=reply.document.filename,
                    caption=reply.document.caption[:1024] or None,
                )
            if not chunks:
                continue
            if reply.edit and pressed is not None and len(chunks) == 1:
                try:
                    await pressed.edit_text(
                        chunks[0], parse_mode=ParseMode.HTML, reply_markup=keyboard
                    )
                    continue
                except BadRequest as exc:
                    if "not modified" in str(exc).lower():
                        continue
                    # too old or not ours any more: send it as a new message instead
            for i, chunk in enumerate(chunks):
                await bot.send_message(
                    chat_id,
                    chunk,
                    parse_mode=ParseMode.HTML,
                    reply_markup=keyboard if i == len(chunks) - 1 else None,
                    disable_web_page_preview=True,
                )
        except Forbidden:
            # The user never opened a private chat with us (a private warning from a
            # group), or blocked us: nothing to deliver to.
            log.info("telegram.reply_forbidden chat=%s", chat_id)


async def on_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = _chat_context(update, context)
    message = update.effective_message
    if ctx is None or message is None or not message.text:
        return
    replies = await _core(context).handle_text(ctx, message.text)
    await send_replies(context, ctx, replies)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    if query is None:
        return
    pressed = query.message if isinstance(query.message, Message) else None
    ctx = _chat_context(update, context, pressed=pressed)
    if ctx is None:
        return
    with contextlib.suppress(TelegramError):
        await query.answer()  # stop the button's spinner at once
    replies = await _core(context).handle_action(ctx, query.data or "")
    await send_replies(context, ctx, replies, pressed=pressed)


async def on_membership(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Added to a group: ask for the right to delete messages (to remove posted keys)."""
    change = update.my_chat_member
    if change is None or change.chat.type == ChatType.PRIVATE:
        return
    member = change.new_chat_member
    joined = member.status in (ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR)
    if joined and not getattr(member, "can_delete_messages", False):
        t = Translator(change.from_user.language_code)
        with contextlib.suppress(TelegramError):
            await context.bot.send_message(change.chat.id, t("group.need_delete_rights"))


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    log.error("telegram.handler_error", exc_info=context.error)


def register_handlers(
    application: Application[Any, Any, Any, Any, Any, Any], core: ChatCore
) -> None:
    application.bot_data[CORE_KEY] = core
    application.add_handler(MessageHandler(filters.TEXT, on_message))
    application.add_handler(CallbackQueryHandler(on_button))
    application.add_handler(ChatMemberHandler(on_membership, ChatMemberHandler.MY_CHAT_MEMBER))
    application.add_error_handler(on_error)


async def publish_commands(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """The command menu in each language: the default one, and one per Telegram language code."""
    bot = application.bot
    for language in languages.LANGUAGES:
        t = Translator(language.tag)
        private = [BotCommand(c.name, t(c.help_key)[:256]) for c in COMMANDS.values() if c.menu]
        public = [BotCommand(n, t(COMMANDS[n].help_key)[:256]) for n in PUBLIC_COMMANDS]
        code = language.telegram_code
        await bot.set_my_commands(private, scope=BotCommandScopeDefault(), language_code=code)
        await bot.set_my_commands(public, scope=BotCommandScopeAllGroupChats(), language_code=code)
