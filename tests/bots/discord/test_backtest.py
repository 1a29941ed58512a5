"""/backtest through the real discord.py front end (emulated Discord): progress edited, result."""

from __future__ import annotations

from tests.bots.discord.conftest import RunningBot, custom_id, is_ephemeral, message_text


async def test_backtest_edits_its_progress_then_answers_with_figures_and_chart(
    discord_bot: RunningBot,
) -> None:
    user = discord_bot.member()  # a Portuguese client
    emulator = discord_bot.emulator
    interaction = emulator.invoke(
        user,
        "backtest",
        {
            "bot_or_strategy": "sma_crossover",
            "pair": "BTC/USDT",
            "period": 7,
            "parameters": "fast=5 slow=20",
        },
        guild_id=discord_bot.guild.id,
    )
    result = await discord_bot.says(interaction, "Taxa de acerto", timeout=30)
    record = emulator.responses(interaction)

    progress = emulator.get_message(int(record.followups[0]["id"]))
    assert "⏳ Backtest: Cruzamento de médias móveis em BTC/USDT, 7 dias" in message_text(progress)
    assert "concluído ✅" in message_text(progress)
    assert [e["message_id"] for e in record.edits] == [progress["id"]] * len(record.edits)
    assert record.edits  # the same message, edited in place

    text = message_text(result)
    assert "📊 Backtest: Cruzamento de médias móveis em BTC/USDT" in text
    assert "(fast=5, slow=20)" in text and "Queda máxima" in text
    assert "na abertura do candle seguinte" in text
    [embed] = result["embeds"]
    assert embed["image"]["url"].endswith("chart.png")
    assert embed["footer"]["text"].startswith("Cruzamento de médias móveis em BTC/USDT, 7 dias: ")
    chart, document = result["attachments"]
    assert chart["filename"] == "chart.png"
    # The trades, as a CSV file attached to the same message.
    assert document["filename"].startswith("backtest-sma_crossover-BTC-USDT-")
    assert document["filename"].endswith(".csv")
    rows = emulator.attachment_bytes(int(document["id"])).decode().splitlines()
    assert rows[0] == (
        "entry_time,exit_time,symbol,side,amount,entry_price,exit_price,fees,pnl,pnl_pct,exit_reason"
    )
    assert len(rows) > 1 and all(",BTC/USDT,long," in row for row in rows[1:])
    assert "Dados sintéticos" in text
    assert is_ephemeral(result) and is_ephemeral(progress)  # personal, in a server


async def test_backtest_guided_with_buttons_and_refused_beyond_the_plan(
    discord_bot: RunningBot,
) -> None:
    user = discord_bot.member(locale="en-US")
    record = await discord_bot.run(user, "backtest", in_server=False)
    [ask] = discord_bot.replies(record)
    assert "What should I test on past prices?" in message_text(ask)
    step = await discord_bot.press(user, ask, "Moving average crossover", until="which pair?")
    step = await discord_bot.press(user, step, "SOL/USDT", until="over which period?")
    component, _ = custom_id(step, "90 days")
    assert component.startswith("v1:btp:")
    refused = await discord_bot.press(user, step, "90 days", until="Your Free plan backtests")
    assert "up to 30 days; you asked for 90" in message_text(refused)
    assert custom_id(refused, "Upgrade")
