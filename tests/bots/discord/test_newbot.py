"""/bot create on the real discord.py front end: the timeframe and exits steps through its
components, and the one-line form's settings through the ``options`` option."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from db.models import Bot
from tests.bots.discord.conftest import RunningBot, message_text


async def test_timeframe_and_exits_steps_through_the_components(discord_bot: RunningBot) -> None:
    user = discord_bot.member()
    record = await discord_bot.run(user, "robô criar")
    step = discord_bot.replies(record)[0]
    step = await discord_bot.press(user, step, "Binance", until="Passo 2/8")
    step = await discord_bot.press(user, step, "BTC/USDT", until="Selecionados: BTC/USDT")
    step = await discord_bot.press(user, step, "Próximo", until="Passo 3/8")
    step = await discord_bot.press(user, step, "RSI", until="Passo 4/8")
    assert "oversold" in message_text(step) and "1–50" in message_text(step)
    step = await discord_bot.press(user, step, "Usar estes", until="Passo 5/8")
    step = await discord_bot.press(user, step, "4h", until="Passo 6/8")
    assert "Agora: sem stops" in message_text(step)
    step = await discord_bot.press(user, step, "Alvos 50 %", until="Passo 7/8")
    step = await discord_bot.press(user, step, "1000 USDT", until="Passo 8/8")
    step = await discord_bot.press(user, step, "papel", until="Criar este robô?")
    assert "/newbot binance BTC/USDT rsi 1000 tf=4h tp=2:50,4:50 be=1" in message_text(step)
    await discord_bot.press(user, step, "Criar", until="criado")
    async with discord_bot.app.database.sessions() as session:
        made = await session.scalar(select(Bot))
    assert made is not None and made.timeframe == "4h" and made.breakeven_after_target
    assert made.take_profit_targets == [["2", "50"], ["4", "50"]]


async def test_options_of_bot_create_are_the_one_line_settings(discord_bot: RunningBot) -> None:
    user = discord_bot.member(locale="en-US")
    options = {
        "exchange": "binance", "pairs": "BTC/USDT", "strategy": "rsi", "capital": 500,
        "options": "tf=15m sl=2 period=7",
    }  # fmt: skip
    record = await discord_bot.run(
        user, "bot create", {**options, "options": "tf=2h"}, locale="en-US"
    )
    assert "tf=2h is not valid" in discord_bot.text(record)
    record = await discord_bot.run(user, "bot create", options, locale="en-US")
    confirm = discord_bot.replies(record)[-1]
    assert "tf=15m sl=2" in message_text(confirm) and "period=7" in message_text(confirm)
    await discord_bot.press(user, confirm, "Create", until="created")
    async with discord_bot.app.database.sessions() as session:
        made = await session.scalar(select(Bot))
    assert made is not None and made.parameters["period"] == 7
    assert (made.timeframe, made.stop_loss_pct) == ("15m", Decimal(2))


async def test_help_topic_newbot_in_portuguese(discord_bot: RunningBot) -> None:
    user = discord_bot.member()
    record = await discord_bot.run(user, "ajuda", {"topic": "newbot"})
    text = discord_bot.text(record)
    assert "/newbot numa linha só" in text and "trail=0.1-50 %" in text
