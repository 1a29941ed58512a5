"""Digests through the real Telegram front end: many fills due for a chat go as one table.

The Bot API emulator enforces Telegram's limits (30/s, 1/s per chat, 4,096 characters).
"""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from db.models import BotMode, ChatIdentity, Notification, NotificationDelivery, OrderSide, Platform
from db.notifications import Notice, PaymentFailedNotice, TradeClosedNotice, TradeOpenedNotice
from db.outbox import add_notification, pending_count
from robotrader.formatting import amount, price
from tests.bots.telegram.conftest import RunningBot

_ids = itertools.count(300_001)


async def _registered(bot: RunningBot, language: str) -> tuple[int, int]:
    """A Telegram user who started the bot: (their chat id, our user id)."""
    chat = next(_ids)
    bot.emulator.add_user(chat, "Bia", language_code=language)
    bot.emulator.user_sends(chat, "/start")
    await bot.reply_to(chat, lambda m: True)
    async with bot.app.database.sessions() as session:
        user_id = await session.scalar(
            select(ChatIdentity.user_id).where(ChatIdentity.platform_user_id == str(chat))
        )
    assert user_id is not None
    return chat, user_id


def fills(count: int, start: int = 0) -> list[TradeOpenedNotice | TradeClosedNotice]:
    """Fills of two bots, each with its own amount (0.1001, 0.1002...) to find it by."""
    made: list[TradeOpenedNotice | TradeClosedNotice] = []
    for n in range(start, start + count):
        bot_id, bot = (7, "grid-eth") if n % 3 else (8, "dca-btc")
        size = Decimal("0.1") + Decimal(n + 1) / 10_000
        if n % 2 == 0:
            made.append(
                TradeOpenedNotice(
                    bot_id=bot_id,
                    bot=bot,
                    mode=BotMode.PAPER,
                    symbol="ETH/USDT",
                    side=OrderSide.BUY,
                    reason="entry",
                    amount=size,
                    price=Decimal("3000") + n,
                    value=Decimal("300.00"),
                )
            )
        else:
            made.append(
                TradeClosedNotice(
                    bot_id=bot_id,
                    bot=bot,
                    mode=BotMode.PAPER,
                    symbol="ETH/USDT",
                    side=OrderSide.SELL,
                    reason="exit",
                    amount=size,
                    price=Decimal("3100") + n,
                    entry_price=Decimal("3000"),
                    pnl=Decimal("10.00"),
                    pnl_pct=Decimal("3.33"),
                    closed=True,
                )
            )
    return made


async def _notify(bot: RunningBot, user_id: int, notices: list[Notice], tag: str) -> None:
    """All in one transaction: due together, as a tick writes them."""
    async with bot.app.database.transaction() as session:
        for n, notice in enumerate(notices):
            await add_notification(
                session, user_id=user_id, notice=notice, dedupe_key=f"{tag}:{user_id}:{n}"
            )


async def _delivered(bot: RunningBot, timeout: float = 30) -> None:  # noqa: ASYNC109
    deadline = asyncio.get_running_loop().time() + timeout
    while await pending_count(bot.app.database, Platform.TELEGRAM):
        assert asyncio.get_running_loop().time() < deadline, "deliveries still pending"
        await asyncio.sleep(0.2)


def _rows_of(text: str, notice: TradeOpenedNotice | TradeClosedNotice, language: str) -> int:
    """How many lines of ``text`` show this fill: its amount and its price on one row."""
    wanted = (amount(notice.amount, language), price(notice.price, language))
    return sum(1 for line in text.splitlines() if all(w in line.split() for w in wanted))


def _texts(bot: RunningBot, chat: int) -> list[str]:
    return [m.get("text") or "" for m in bot.emulator.sent(chat)]


async def test_fifty_fills_arrive_as_one_or_two_messages_after_the_billing_notice(
    telegram_bot: RunningBot,
) -> None:
    chat, user_id = await _registered(telegram_bot, "en")
    before = len(telegram_bot.emulator.sent(chat))
    trades = fills(50)
    billing = PaymentFailedNotice(portal_url="https://billing.example/portal")
    await _notify(telegram_bot, user_id, [*trades[:25], billing, *trades[25:]], "fifty")
    await _delivered(telegram_bot)

    messages = telegram_bot.emulator.sent(chat)[before:]
    texts = [m.get("text") or "" for m in messages]
    assert 2 <= len(messages) <= 3, texts  # the billing notice, then one or two digests
    assert "payment" in texts[0].lower() and "ETH/USDT" not in texts[0], "billing first, alone"
    digests = texts[1:]
    assert all(len(t) <= 4096 for t in digests)
    assert digests[0].startswith("🧾 50 trades")
    for notice in trades:
        assert sum(_rows_of(t, notice, "en") for t in digests) == 1, notice
    assert "grid-eth · 📄 paper" in digests[0] and "dca-btc · 📄 paper" in digests[0]
    assert telegram_bot.emulator.stats.rate_limited == 0

    async with telegram_bot.app.database.sessions() as session:
        outcomes = (
            await session.scalars(
                select(NotificationDelivery.outcome).where(NotificationDelivery.user_id == user_id)
            )
        ).all()
    assert outcomes == ["sent"] * 51


async def test_a_long_digest_is_cut_between_rows_within_telegram_limit(
    telegram_bot: RunningBot,
) -> None:
    chat, user_id = await _registered(telegram_bot, "en")
    before = len(telegram_bot.emulator.sent(chat))
    trades = fills(150)
    await _notify(telegram_bot, user_id, list(trades), "long")
    await _delivered(telegram_bot)
    texts = _texts(telegram_bot, chat)[before:]
    assert len(texts) >= 3 and all(len(t) <= 4096 for t in texts)
    assert texts[1].startswith("🧾 Trades, continued (2)")
    for notice in trades:
        assert sum(_rows_of(t, notice, "en") for t in texts) == 1, notice


async def test_a_digest_rejected_once_stays_due_and_goes_once_on_retry(
    telegram_bot: RunningBot,
) -> None:
    chat, user_id = await _registered(telegram_bot, "en")
    before = len(telegram_bot.emulator.sent(chat))
    trades = fills(12)
    telegram_bot.emulator.fail_next("sendMessage", status=500)
    await _notify(telegram_bot, user_id, list(trades), "rejected")

    async def attempts() -> list[Any]:
        return [
            r
            for r in telegram_bot.emulator.requests
            if r.method == "sendMessage" and r.chat_id == chat
        ]

    deadline = asyncio.get_running_loop().time() + 15
    while not [r for r in await attempts() if r.status == 500]:
        assert asyncio.get_running_loop().time() < deadline, "the digest was never tried"
        await asyncio.sleep(0.05)
    # The 500 is recorded when the emulator answers; the release commits a moment later.
    while True:
        async with telegram_bot.app.database.sessions() as session:
            rows = (
                await session.execute(
                    select(
                        NotificationDelivery.delivered_at, NotificationDelivery.last_error
                    ).where(NotificationDelivery.user_id == user_id)
                )
            ).all()
        if all(error for _, error in rows) or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert all(delivered is None for delivered, _ in rows), "refused: every one still due"
    assert {error for _, error in rows} == {"NetworkError"}

    await _delivered(telegram_bot)
    texts = _texts(telegram_bot, chat)[before:]
    assert len(texts) == 1
    for notice in trades:
        assert _rows_of(texts[0], notice, "en") == 1
    assert [r.status for r in await attempts()][-2:] == [500, 200]
    async with telegram_bot.app.database.sessions() as session:
        attempts_of = (
            await session.scalars(
                select(NotificationDelivery.attempts).where(NotificationDelivery.user_id == user_id)
            )
        ).all()
    assert attempts_of == [2] * 12


async def test_a_digest_in_brazilian_portuguese(telegram_bot: RunningBot) -> None:
    chat, user_id = await _registered(telegram_bot, "pt-br")
    before = len(telegram_bot.emulator.sent(chat))
    trades = fills(6)
    await _notify(telegram_bot, user_id, list(trades), "pt")
    await _delivered(telegram_bot)
    [text] = _texts(telegram_bot, chat)[before:]
    assert text.startswith("🧾 6 operações")
    assert "grid-eth · 📄 papel" in text
    assert "Lado" in text and "Preço" in text and "Resultado" in text
    assert "compra" in text and "venda" in text
    assert "+10,00 (+3,33%)" in text  # Brazilian number format
    for notice in trades:
        assert _rows_of(text, notice, "pt-BR") == 1
    async with telegram_bot.app.database.sessions() as session:
        kinds = await session.scalars(
            select(Notification.kind).where(Notification.user_id == user_id)
        )
        assert set(kinds) == {"trade_opened", "trade_closed"}
