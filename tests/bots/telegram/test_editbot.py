"""/editbot through the real Telegram front end: one line in English, the menu in Portuguese."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from db.models import Bot
from tests.bots.telegram.conftest import RunningBot
from tests.bots.telegram.test_e2e import button, make_pro, new_user


async def _bot(
    telegram_bot: RunningBot, user: int, welcome: str, question: str, created: str
) -> None:
    emu = telegram_bot.emulator
    emu.user_sends(user, "/start")
    await telegram_bot.says(user, welcome)
    await make_pro(telegram_bot, user)
    emu.user_sends(user, "/newbot binance BTC/USDT sma_crossover 1000")
    confirm = await telegram_bot.says(user, question)
    emu.user_presses(user, confirm, button(confirm, created))


async def _stored(telegram_bot: RunningBot) -> Bot:
    async with telegram_bot.app.database.sessions() as session:
        bot = await session.scalar(select(Bot).order_by(Bot.id.desc()))
        assert bot is not None
        return bot


async def test_editbot_in_one_line_in_english(telegram_bot: RunningBot) -> None:
    user = new_user(telegram_bot, language="en", name="Bob")
    await _bot(telegram_bot, user, "Welcome", "Create this bot?", "Create")
    await telegram_bot.says(user, "created")
    emu = telegram_bot.emulator
    emu.user_sends(user, "/editbot sma_crossover-1 sl=3 trail=1.5@2 capital=750")
    done = await telegram_bot.says(user, "sma_crossover-1 changed")
    assert "Trailing stop  off → 1.5 % under the highest price, once up 2 %" in done["text"]
    assert "1000 → 750" in done["text"]
    bot = await _stored(telegram_bot)
    assert bot.stop_loss_pct == Decimal(3) and bot.capital == Decimal(750)
    emu.user_sends(user, "/editbot sma_crossover-1 sl=500")
    refused = await telegram_bot.says(user, "sl=500 is not valid")
    assert "Valid settings" in refused["text"]


async def test_the_card_edit_button_and_the_menu_in_portuguese(telegram_bot: RunningBot) -> None:
    user = new_user(telegram_bot)
    await _bot(telegram_bot, user, "Bem-vindo", "Criar este robô?", "Criar")
    created = await telegram_bot.says(user, "criado")
    emu = telegram_bot.emulator
    bot = await _stored(telegram_bot)
    emu.user_sends(user, "/bots")
    listing = await telegram_bot.says(user, "Seus robôs")
    emu.user_presses(user, listing, button(listing, "Detalhes"))
    card = await telegram_bot.reply_to(user, lambda m: "Editar" in str(m.get("reply_markup")))
    emu.user_presses(user, card, button(card, "Editar"))
    menu = await telegram_bot.says(user, "O que você quer mudar?")
    emu.user_presses(user, menu, button(menu, "Tempo gráfico"))
    step = await telegram_bot.says(user, "Escolha o tempo gráfico")
    emu.user_presses(user, step, button(step, "4h"))
    step = await telegram_bot.says(user, "1m → 4h")
    emu.user_presses(user, step, button(step, "Risco e saídas"))
    await telegram_bot.says(user, "Configurações válidas")
    emu.user_sends(user, "sl=2 dll=5")
    step = await telegram_bot.says(user, "Alterações esperando sua confirmação")
    assert "Limite de perda diária" in step["text"]
    emu.user_presses(user, step, button(step, "Confirmar"))
    await telegram_bot.says(user, "sma_crossover-1 alterado")
    stored = await _stored(telegram_bot)
    assert (stored.timeframe, stored.stop_loss_pct) == ("4h", Decimal(2))
    assert stored.daily_loss_limit_pct == Decimal(5) and stored.id == bot.id
    assert created
