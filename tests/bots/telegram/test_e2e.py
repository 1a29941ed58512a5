"""A user's path through the real Telegram front end, end to end (Bot API emulator on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from sqlalchemy import select

from db.models import (
    Bot,
    BotStatus,
    ChatIdentity,
    ExchangeCredential,
    Plan,
    Platform,
    Position,
    User,
)
from db.notifications import DataFallbackNotice
from db.outbox import add_notification, pending_count
from engine.market_data.cache import MemoryCandleCache
from engine.market_data.feed import MarketDataFeed
from engine.tick import run_tick
from tests.bots.telegram.conftest import RunningBot

_ids = itertools.count(100_001)


def new_user(bot: RunningBot, language: str = "pt-br", name: str = "Ana") -> int:
    user_id = next(_ids)
    bot.emulator.add_user(user_id, name, language_code=language)
    return user_id


async def make_pro(bot: RunningBot, telegram_user: int) -> None:
    """As if the user had paid for Pro (billing has its own tests)."""
    async with bot.app.database.transaction() as session:
        identity = await session.scalar(
            select(ChatIdentity).where(ChatIdentity.platform_user_id == str(telegram_user))
        )
        assert identity is not None
        user = await session.get(User, identity.user_id)
        assert user is not None
        user.plan = Plan.PRO


def button(message: dict[str, Any], label_fragment: str) -> str:
    for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
        for b in row:
            if label_fragment in b["text"] and "callback_data" in b:
                return str(b["callback_data"])
    raise AssertionError(f"no button with {label_fragment!r} in {message.get('reply_markup')}")


async def test_first_start_in_portuguese_and_command_menus(telegram_bot: RunningBot) -> None:
    user = new_user(telegram_bot)
    telegram_bot.emulator.user_sends(user, "/start")
    welcome = await telegram_bot.says(user, "Bem-vindo ao RoboTrader, Ana")
    assert "papel" in welcome["text"]
    assert button(welcome, "Novo robô")
    english = [c["command"] for c in telegram_bot.emulator.commands("default", "")]
    portuguese = telegram_bot.emulator.commands("default", "pt")
    assert "newbot" in english and "panic" in english
    assert any("Criar um robô" in c["description"] for c in portuguese)


async def test_connect_in_private_deletes_every_secret_message(telegram_bot: RunningBot) -> None:
    user = new_user(telegram_bot)
    key, secret = "FAKEKEYtelegram0001connectXYZ", "FAKESECRETtelegram0001connectXYZ"
    telegram_bot.exchange.add_account("binance", key, secret)
    emu = telegram_bot.emulator
    emu.user_sends(user, "/connect binance")
    await telegram_bot.says(user, "API key")
    key_message = emu.user_sends(user, key)
    await telegram_bot.says(user, "API secret")
    secret_message = emu.user_sends(user, secret)
    await telegram_bot.says(user, "Binance conectada")
    assert {key_message["message_id"], secret_message["message_id"]} <= set(emu.deleted(user))
    assert all(
        key not in (m.get("text") or "") and secret not in (m.get("text") or "") for m in emu.sent()
    )
    async with telegram_bot.app.database.sessions() as session:
        credential = await session.scalar(select(ExchangeCredential))
    assert credential is not None and secret.encode() not in credential.secret_enc


async def test_connect_refused_in_a_group_and_key_posted_there_is_deleted(
    telegram_bot: RunningBot,
) -> None:
    user = new_user(telegram_bot, language="en", name="Bob")
    emu = telegram_bot.emulator
    group = -1_000_000_000_000 - next(_ids)
    emu.add_group(group, "Traders BR", bot_can_delete=True)
    emu.user_sends(user, "/connect binance", chat_id=group)
    await telegram_bot.says(group, "private chat")
    leaked = emu.user_sends(user, "my key is Xk3pL9qR2mN8vB4tY7wZ1cD6fG0hJ5sA", chat_id=group)
    await telegram_bot.says(group, "deleted a message that looked like an API key")
    await telegram_bot.says(user, "Revoke that key")
    assert leaked["message_id"] in emu.deleted(group)
    # The same key as a command's argument: deleted too, not left for the group to read.
    command = emu.user_sends(
        user, "/connect binance Xk3pL9qR2mN8vB4tY7wZ1cD6fG0hJ5sA QwEr4Ty7Ui1Op5", chat_id=group
    )
    for _ in range(100):
        if command["message_id"] in emu.deleted(group):
            break
        await asyncio.sleep(0.05)
    assert command["message_id"] in emu.deleted(group)


async def test_newbot_through_the_buttons_then_a_paper_trade_is_notified(
    telegram_bot: RunningBot,
) -> None:
    user = new_user(telegram_bot)
    emu = telegram_bot.emulator
    emu.user_sends(user, "/start")
    await telegram_bot.says(user, "Bem-vindo")
    await make_pro(telegram_bot, user)
    emu.user_sends(user, "/newbot")
    step = await telegram_bot.says(user, "Passo 1/8")
    emu.user_presses(user, step, button(step, "Binance"))
    step = await telegram_bot.says(user, "Passo 2/8")
    emu.user_presses(user, step, button(step, "BTC/USDT"))
    step = await telegram_bot.says(user, "Selecionados: BTC/USDT")
    emu.user_presses(user, step, button(step, "Próximo"))
    step = await telegram_bot.says(user, "Passo 3/8")
    emu.user_presses(user, step, button(step, "DCA"))
    await telegram_bot.says(user, "Passo 4/8")
    step = emu.sent(user)[-1]
    emu.user_presses(user, step, button(step, "Usar estes"))
    step = await telegram_bot.says(user, "Passo 5/8")
    emu.user_presses(user, step, button(step, "Pular"))
    step = await telegram_bot.says(user, "Passo 6/8")
    emu.user_presses(user, step, button(step, "Pular"))
    step = await telegram_bot.says(user, "Passo 7/8")
    emu.user_presses(user, step, button(step, "1000 USDT"))
    step = await telegram_bot.says(user, "Passo 8/8")
    emu.user_presses(user, step, button(step, "papel"))
    step = await telegram_bot.says(user, "Criar este robô?")
    emu.user_presses(user, step, button(step, "Criar"))
    created = await telegram_bot.says(user, "criado")
    emu.user_presses(user, created, button(created, "Iniciar agora"))
    await telegram_bot.says(user, "iniciado")

    async with telegram_bot.app.database.sessions() as session:
        bot = await session.scalar(select(Bot))
    assert bot is not None and bot.status == BotStatus.RUNNING and bot.strategy == "dca"

    feed = MarketDataFeed(telegram_bot.app.pool, MemoryCandleCache(), mode="replay")
    report = await run_tick(telegram_bot.app.database, feed)
    assert report.orders_filled == 1
    await telegram_bot.says(user, "Compra de BTC/USDT", timeout=20)


async def test_panic_stops_everything_and_sells(telegram_bot: RunningBot) -> None:
    user = new_user(telegram_bot)
    emu = telegram_bot.emulator
    emu.user_sends(user, "/start")
    await telegram_bot.says(user, "Bem-vindo")
    await make_pro(telegram_bot, user)
    emu.user_sends(user, "/newbot binance BTC/USDT dca 1000")
    confirm = await telegram_bot.says(user, "Criar este robô?")
    emu.user_presses(user, confirm, button(confirm, "Criar"))
    created = await telegram_bot.says(user, "criado")
    emu.user_presses(user, created, button(created, "Iniciar agora"))
    await telegram_bot.says(user, "iniciado")
    feed = MarketDataFeed(telegram_bot.app.pool, MemoryCandleCache(), mode="replay")
    await run_tick(telegram_bot.app.database, feed)

    emu.user_sends(user, "/panic")
    panic = await telegram_bot.says(user, "Botão de pânico")
    emu.user_presses(user, panic, button(panic, "vender tudo"))
    await telegram_bot.says(user, "1 robô(s) parado(s)")
    async with telegram_bot.app.database.sessions() as session:
        bot = await session.scalar(select(Bot))
        held = await session.scalar(select(Position))
    assert bot is not None and bot.status == BotStatus.STOPPED
    assert held is None
    await telegram_bot.says(user, "Venda de BTC/USDT", timeout=20)


async def test_blocked_user_is_marked_unreachable_and_not_retried(telegram_bot: RunningBot) -> None:
    user = new_user(telegram_bot)
    emu = telegram_bot.emulator
    emu.user_sends(user, "/start")
    await telegram_bot.says(user, "Bem-vindo")
    emu.block(user)
    async with telegram_bot.app.database.transaction() as session:
        identity = await session.scalar(
            select(ChatIdentity).where(ChatIdentity.platform_user_id == str(user))
        )
        assert identity is not None
        for n in range(3):
            await add_notification(
                session,
                user_id=identity.user_id,
                notice=DataFallbackNotice(bot_id=1, bot="b"),
                dedupe_key=f"blocked-{user}-{n}",
            )
    deadline = asyncio.get_running_loop().time() + 20
    while await pending_count(telegram_bot.app.database, Platform.TELEGRAM):
        assert asyncio.get_running_loop().time() < deadline, "deliveries still pending"
        await asyncio.sleep(0.2)
    async with telegram_bot.app.database.sessions() as session:
        identity = await session.scalar(
            select(ChatIdentity).where(ChatIdentity.platform_user_id == str(user))
        )
    assert identity is not None and identity.reachable is False
    forbidden = [r for r in emu.requests if r.chat_id == user and r.status == 403]
    assert len(forbidden) == 1, "one refusal, then no more attempts"

    # Unblocked, the user writes again: from then on the notifications reach them again.
    emu.unblock(user)
    emu.user_sends(user, "/plan")
    await telegram_bot.says(user, "Seu plano")
    async with telegram_bot.app.database.transaction() as session:
        await add_notification(
            session,
            user_id=identity.user_id,
            notice=DataFallbackNotice(bot_id=1, bot="de-volta"),
            dedupe_key=f"unblocked-{user}",
        )
    await telegram_bot.says(user, "de-volta")
