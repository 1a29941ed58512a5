"""/optimize and /backtest compare through the real Telegram front end, in Portuguese."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from db.models import Bot
from tests.bots.telegram.conftest import RunningBot
from tests.bots.telegram.test_e2e import button, make_pro, new_user


def photos(bot: RunningBot, user: int) -> list[dict[str, Any]]:
    return [m for m in bot.emulator.sent(user) if m.get("photo")]


async def registered(bot: RunningBot) -> int:
    user = new_user(bot)  # a Portuguese client
    bot.emulator.user_sends(user, "/start")
    await bot.says(user, "Bem-vindo")
    return user


async def test_optimize_edits_its_progress_ranks_and_creates_a_bot_with_the_best_set(
    telegram_bot: RunningBot,
) -> None:
    user = await registered(telegram_bot)
    emu = telegram_bot.emulator
    emu.user_sends(user, "/optimize sma_crossover BTC/USDT 7d values=4")

    progress = await telegram_bot.says(user, "100% — pronto", timeout=60)
    assert progress["text"].startswith("🔎 Otimizando sma_crossover em BTC/USDT (7d)")
    result = await telegram_bot.says(user, "conjuntos de parâmetros testados", timeout=30)
    assert result["message_id"] > progress["message_id"]
    text = result["text"]
    assert "🔎 Cruzamento de médias móveis em BTC/USDT" in text
    for header in ("parâmetros", "retorno fora", "DD máx. fora", "trades fora", "retorno dentro"):
        assert header in text, text
    assert "julgado em" in text and "(30 %" in text  # the 70/30 split, said

    # The button opens /newbot with what was searched filled in (the timeframe too): it
    # asks the exits, the capital and the mode.
    emu.user_presses(user, result, button(result, "Criar um robô com estes parâmetros"))
    step = await telegram_bot.says(user, "Passo 6/8")
    assert "Novo robô: Cruzamento de médias móveis (fast=" in step["text"]
    assert "BTC/USDT, Binance, candles de 1m" in step["text"]
    best = step["text"].split("(", 1)[1].split(")", 1)[0]  # "fast=2, slow=5"
    assert best.split(", ")[0] in text.split("\n1 ", 1)[1].split("\n", 1)[0]  # rank 1's set
    emu.user_presses(user, step, button(step, "Pular"))
    step = await telegram_bot.says(user, "Passo 7/8")
    emu.user_presses(user, step, button(step, "500 USDT"))
    step = await telegram_bot.says(user, "Passo 8/8")
    emu.user_presses(user, step, button(step, "papel"))
    step = await telegram_bot.says(user, "Criar este robô?")
    emu.user_presses(user, step, button(step, "Criar"))
    await telegram_bot.says(user, "criado")
    async with telegram_bot.app.database.sessions() as session:
        bot = await session.scalar(select(Bot))
    assert bot is not None and bot.strategy == "sma_crossover" and bot.symbols == ["BTC/USDT"]
    assert ", ".join(f"{k}={v}" for k, v in bot.parameters.items()) == best


async def test_optimize_on_free_cuts_the_grid_and_names_the_plan_that_searches_more(
    telegram_bot: RunningBot,
) -> None:
    user = await registered(telegram_bot)
    telegram_bot.emulator.user_sends(user, "/optimize rsi ETH/USDT 7d")
    result = await telegram_bot.says(user, "conjuntos de parâmetros testados", timeout=60)
    assert "Seu plano Free testa até 20 conjuntos" in result["text"]
    assert "O Pro testa até 200: /upgrade" in result["text"]


async def test_optimize_refuses_bad_input_in_portuguese(telegram_bot: RunningBot) -> None:
    user = await registered(telegram_bot)
    emu = telegram_bot.emulator
    emu.user_sends(user, "/optimize sma_crossover BTC/USDT 7d split=99")
    await telegram_bot.says(user, "informe a porcentagem dentro da amostra, de 50 a 90")
    emu.user_sends(user, "/optimize sma_crossover BTC/USDT 7d fast=30..5")
    await telegram_bot.says(user, "30..5 não é um intervalo para fast")
    emu.user_sends(user, "/optimize sma_crossover BTC/USDT 90d")
    refused = await telegram_bot.says(user, "Seu plano Free")
    assert button(refused, "Fazer upgrade") == "v1:up"


async def test_compare_with_a_capital_beyond_what_a_backtest_counts_says_so(
    telegram_bot: RunningBot,
) -> None:
    user = await registered(telegram_bot)
    await make_pro(telegram_bot, user)
    telegram_bot.emulator.user_sends(
        user, "/backtest comparar SHIB/USDT 2d rsi sma_crossover capital=5000000"
    )
    await telegram_bot.says(user, "Esse capital compra mais dessa moeda do que um backtest")


async def test_compare_answers_a_table_and_one_chart_of_the_equity_curves(
    telegram_bot: RunningBot,
) -> None:
    user = await registered(telegram_bot)
    await make_pro(telegram_bot, user)
    emu = telegram_bot.emulator
    emu.user_sends(
        user, "/backtest comparar BTC/USDT 7d rsi sma_crossover sma_crossover:fast=5,slow=30"
    )
    result = await telegram_bot.says(user, "📊 3 estratégias em BTC/USDT, 7 dias", timeout=60)
    text = result["text"]
    for header in ("estratégia", "retorno", "DD máx.", "trades", "acertos", "fator de lucro"):
        assert header in text, text
    assert "sma_crossover:fast=5,slow=30" in text and "rsi:period=14" in text
    [photo] = photos(telegram_bot, user)
    assert photo["caption"].startswith("Patrimônio de cada estratégia em BTC/USDT; melhor: ")
    assert max(size["width"] for size in photo["photo"]) == 1280

    emu.user_sends(user, "/backtest comparar BTC/USDT 7d rsi")
    await telegram_bot.says(user, "Compare de 2 a 6 estratégias (você deu 1)")
