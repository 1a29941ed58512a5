"""/status and a bot's card show it is alive: last evaluation, next decision, its values.

Through the real python-telegram-bot against the Bot API emulator, in Portuguese and
English. The numbers expected are the strategy's own over the feed's candles.
"""

from __future__ import annotations

import time

from sqlalchemy import select

from db.models import Bot
from engine.market_data.feed import MarketKey
from engine.strategies.indicators import rsi
from engine.tick import run_tick
from robotrader import formatting
from tests.bots.telegram.conftest import RunningBot
from tests.bots.telegram.test_e2e import button, make_pro, new_user

# The words of the steps to a running bot, per language: welcome, confirm, create, created,
# start, started.
STEPS = {
    "pt-br": ("Bem-vindo", "Criar este robô?", "Criar", "criado", "Iniciar agora", "iniciado"),
    "en": ("Welcome", "Create this bot?", "Create", "created", "Start now", "started"),
}


async def _running_bot(telegram_bot: RunningBot, user: int, line: str, language: str) -> None:
    welcome, confirm_text, create, created_text, start, started = STEPS[language]
    emu = telegram_bot.emulator
    emu.user_sends(user, "/start")
    await telegram_bot.says(user, welcome)
    await make_pro(telegram_bot, user)
    emu.user_sends(user, line)
    confirm = await telegram_bot.says(user, confirm_text)
    emu.user_presses(user, confirm, button(confirm, create))
    created = await telegram_bot.says(user, created_text)
    emu.user_presses(user, created, button(created, start))
    await telegram_bot.says(user, started)


async def _rsi_now(telegram_bot: RunningBot) -> float:
    """RSI 14 at the last closed candle of the candles the tick decided on (the feed's cache)."""
    app = telegram_bot.app
    key = MarketKey("binance", "BTC/USDT", "1m")
    fetched = await app.feed.fetch({key: 16}, set(), int(time.time() * 1000))
    return float(rsi(fetched.snapshots[key].candles.close, 14)[-1])


async def test_status_in_portuguese_shows_evaluation_next_decision_and_rsi(
    telegram_bot: RunningBot,
) -> None:
    user = new_user(telegram_bot)
    await _running_bot(telegram_bot, user, "/newbot binance BTC/USDT rsi 1000", "pt-br")
    await run_tick(telegram_bot.app.database, telegram_bot.app.feed)
    expected = formatting.figure(await _rsi_now(telegram_bot), "pt-BR")

    telegram_bot.emulator.user_sends(user, "/status")
    status = await telegram_bot.says(user, "próxima decisão em")
    text = status["text"]
    assert "avaliado há" in text
    assert (
        f"IFR 14: {expected} (compra ao cruzar 30 para cima, vende ao cruzar 70 para baixo)" in text
    )
    assert "BTC/USDT a " in text and "dados sintéticos" in text


async def test_the_card_in_english_shows_the_position_and_dca_prices(
    telegram_bot: RunningBot,
) -> None:
    user = new_user(telegram_bot, language="en", name="Bob")
    await _running_bot(telegram_bot, user, "/newbot binance BTC/USDT dca 1000", "en")
    report = await run_tick(telegram_bot.app.database, telegram_bot.app.feed)
    assert report.orders_filled >= 1

    emu = telegram_bot.emulator
    emu.user_sends(user, "/bots")
    listed = await telegram_bot.reply_to(user, lambda m: "Details" in str(m.get("reply_markup")))
    emu.user_presses(user, listed, button(listed, "Details"))
    card = await telegram_bot.says(user, "Last evaluated")
    text = card["text"]
    assert "Next decision" in text and "seconds ago" in text and "in " in text
    assert "next safety order 1 at " in text and "take profit at " in text
    assert "holds " in text and " USDT (" in text
    async with telegram_bot.app.database.sessions() as session:
        bot = await session.scalar(select(Bot).where(Bot.name == "dca-1"))
    assert bot is not None
