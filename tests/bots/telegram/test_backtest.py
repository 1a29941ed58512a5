"""/backtest and /chart through the real Telegram front end (Bot API emulator), in Portuguese."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from db.models import Backtest, BacktestStatus, Bot, BotMode, Trade
from db.types import utcnow
from engine.backtest.summary import BacktestSummary
from engine.backtest.trade_csv import csv_filename, trades_csv
from tests.bots.telegram.conftest import RunningBot
from tests.bots.telegram.test_e2e import button, make_pro, new_user

FIGURES = ("Lucro/prejuízo", "Retorno", "Comprar e segurar", "Queda máxima", "Taxa de acerto",
           "Índice de Sharpe", "Tempo posicionado", "Trades")  # fmt: skip


def photos(bot: RunningBot, user: int) -> list[dict[str, Any]]:
    return [m for m in bot.emulator.sent(user) if m.get("photo")]


async def registered(bot: RunningBot) -> int:
    user = new_user(bot)  # a Portuguese client
    bot.emulator.user_sends(user, "/start")
    await bot.says(user, "Bem-vindo")
    return user


async def test_backtest_in_one_line_edits_its_progress_then_sends_figures_and_chart(
    telegram_bot: RunningBot,
) -> None:
    user = await registered(telegram_bot)
    emu = telegram_bot.emulator
    emu.user_sends(user, "/backtest sma_crossover BTC/USDT 7d")

    progress = await telegram_bot.says(user, "concluído ✅", timeout=30)
    headline = "⏳ Backtest: Cruzamento de médias móveis em BTC/USDT, 7 dias"
    assert progress["text"].startswith(headline)
    assert progress["edits"] >= 1  # one message, edited in place as the job moved on

    result = await telegram_bot.says(user, "📊 Backtest: Cruzamento de médias móveis em BTC/USDT")
    text = result["text"]
    assert all(label in text for label in FIGURES), text
    assert "na abertura do candle seguinte" in text  # the fill rule, in Portuguese
    assert "0,05% de slippage" in text and "0,10% de taxa" in text
    assert result["message_id"] > progress["message_id"]

    [photo] = photos(telegram_bot, user)
    assert photo["caption"].startswith("Cruzamento de médias móveis em BTC/USDT, 7 dias: ")
    assert "(comprar e segurar " in photo["caption"]
    assert max(size["width"] for size in photo["photo"]) == 1280

    # The figures shown are the job's own, in Brazilian number format.
    async with telegram_bot.app.database.sessions() as session:
        job = await session.scalar(select(Backtest))
    assert job is not None and job.status == BacktestStatus.DONE and job.summary is not None
    summary = BacktestSummary.from_json(job.summary)
    assert re.search(rf"\nTrades +{summary.trade_count}\n", text)
    assert f"{summary.total_pnl_pct:.2f}".replace(".", ",") in photo["caption"]

    # Synthetic data says so; the trades come along as a CSV document.
    assert "⚠️ Dados sintéticos" in text
    [document] = [m for m in emu.sent(user) if m.get("document")]
    assert document["document"]["file_name"] == csv_filename(summary)
    assert document["caption"] == "Todas as operações deste backtest, uma por linha (CSV)."
    data = emu.file_bytes(document["document"]["file_id"])
    assert data == trades_csv(summary).encode()
    rows = data.decode().splitlines()
    assert rows[0].startswith("entry_time,exit_time,symbol,side,amount,entry_price")
    assert len(rows) == summary.trade_count + 1 > 1


async def test_the_button_flow_turns_the_last_step_into_the_progress_message(
    telegram_bot: RunningBot,
) -> None:
    user = await registered(telegram_bot)
    emu = telegram_bot.emulator
    emu.user_sends(user, "/backtest")
    step = await telegram_bot.says(user, "O que devo testar")
    emu.user_presses(user, step, button(step, "Reversão pelo IFR"))
    step = await telegram_bot.says(user, "qual par?")
    emu.user_presses(user, step, button(step, "ETH/USDT"))
    step = await telegram_bot.says(user, "em qual período? Seu plano Free vai até 30 dias")
    assert button(step, "🔒 90 dias")  # beyond the plan, marked
    emu.user_presses(user, step, button(step, "7 dias"))

    done = await telegram_bot.says(user, "concluído ✅", timeout=30)
    assert done["message_id"] == step["message_id"]  # the pressed message became the progress
    assert not (done.get("reply_markup") or {}).get("inline_keyboard")
    await telegram_bot.says(user, "📊 Backtest: Reversão pelo IFR (RSI) em ETH/USDT")
    assert len(photos(telegram_bot, user)) == 1


async def test_plan_limits_are_explained_with_an_upgrade_button(telegram_bot: RunningBot) -> None:
    user = await registered(telegram_bot)
    emu = telegram_bot.emulator
    emu.user_sends(user, "/backtest sma_crossover BTC/USDT 31d")
    refused = await telegram_bot.says(user, "Seu plano Free faz backtests de até 30 dias")
    assert "você pediu 31" in refused["text"] and "O Pro vai até 365 dias" in refused["text"]
    assert button(refused, "Fazer upgrade")

    # One at a time on Free: a second one while the first runs is refused.
    async with telegram_bot.app.database.transaction() as session:
        from db.models import ChatIdentity

        identity = await session.scalar(
            select(ChatIdentity).where(ChatIdentity.platform_user_id == str(user))
        )
        assert identity is not None
        now = utcnow()
        session.add(
            Backtest(
                id="f" * 32, user_id=identity.user_id, spec={}, status=BacktestStatus.RUNNING,
                created_at=now, heartbeat_at=now,
            )
        )  # fmt: skip
    emu.user_sends(user, "/backtest sma_crossover BTC/USDT 7d")
    refused = await telegram_bot.says(user, "roda 1 backtest(s) por vez")
    assert button(refused, "Fazer upgrade")
    assert not photos(telegram_bot, user)


async def test_chart_of_a_bot_is_a_photo(telegram_bot: RunningBot) -> None:
    user = await registered(telegram_bot)
    await make_pro(telegram_bot, user)
    emu = telegram_bot.emulator
    emu.user_sends(user, "/newbot binance BTC/USDT sma_crossover 1000")
    confirm = await telegram_bot.says(user, "Criar este robô?")
    emu.user_presses(user, confirm, button(confirm, "Criar"))
    await telegram_bot.says(user, "criado")
    async with telegram_bot.app.database.transaction() as session:
        bot = await session.scalar(select(Bot))
        assert bot is not None
        session.add(
            Trade(
                bot_id=bot.id, user_id=bot.user_id, symbol="BTC/USDT", mode=BotMode.PAPER,
                amount=Decimal("0.01"), entry_price=Decimal(90_000), exit_price=Decimal(92_000),
                pnl=Decimal("19.5"), pnl_pct=Decimal("2.1"), fees=Decimal("0.5"),
                exit_reason="take_profit", opened_at=utcnow(), closed_at=utcnow(),
            )
        )  # fmt: skip
        name = bot.name
    emu.user_sends(user, f"/chart {name}")
    table = await telegram_bot.says(user, f"📈 {name}")
    assert "Lucro/prejuízo realizado" in table["text"] and "+19,50 USDT" in table["text"]
    [photo] = photos(telegram_bot, user)
    assert photo["caption"] == f"{name} (📄 papel): patrimônio 1.019,50 USDT, 1 trades fechados"


async def test_chart_of_a_bot_without_trades_is_a_photo_too(telegram_bot: RunningBot) -> None:
    # It used to answer "nothing to draw": a flat line from the bot's start to now says more.
    user = await registered(telegram_bot)
    emu = telegram_bot.emulator
    emu.user_sends(user, "/newbot binance BTC/USDT sma_crossover 1000")
    confirm = await telegram_bot.says(user, "Criar este robô?")
    emu.user_presses(user, confirm, button(confirm, "Criar"))
    await telegram_bot.says(user, "criado")
    async with telegram_bot.app.database.sessions() as session:
        name = await session.scalar(select(Bot.name))
    emu.user_sends(user, f"/chart {name}")
    table = await telegram_bot.says(user, f"📈 {name}")
    assert "Trades fechados" in table["text"]
    [photo] = photos(telegram_bot, user)
    largest = photo["photo"][-1]
    assert (largest["width"], largest["height"]) == (1280, 900)
    assert photo["caption"] == f"{name} (📄 papel): patrimônio 1.000,00 USDT, 0 trades fechados"
