"""/optimize and /backtest compare through the real discord.py front end (emulated Discord)."""

from __future__ import annotations

from tests.bots.discord.conftest import RunningBot, custom_id, is_ephemeral, message_text


async def test_optimize_edits_its_progress_then_ranks_and_offers_a_bot(
    discord_bot: RunningBot,
) -> None:
    user = discord_bot.member(locale="en-US")
    emulator = discord_bot.emulator
    interaction = emulator.invoke(
        user, "optimize", {"arguments": "sma_crossover BTC/USDT 7d values=4 split=60"},
        guild_id=discord_bot.guild.id, locale="en-US",
    )  # fmt: skip
    result = await discord_bot.says(interaction, "parameter sets tried", timeout=60)
    record = emulator.responses(interaction)
    progress = emulator.get_message(int(record.followups[0]["id"]))
    assert "🔎 Optimising sma_crossover on BTC/USDT (7d)" in message_text(progress)
    assert "100% — done" in message_text(progress)
    text = message_text(result)
    for header in ("parameters", "out return", "out max DD", "out trades", "in return"):
        assert header in text, text
    assert "(40 %, data the search never saw)" in text
    assert is_ephemeral(result) and is_ephemeral(progress)  # personal, in a server
    component, _ = custom_id(result, "Create a bot with these parameters")
    assert component.startswith("v1:opb:binance:BTC/USDT:sma_crossover:1m:")

    # The timeframe searched comes with the parameters: the dialog goes on with the exits.
    step = await discord_bot.press(user, result, "Create a bot", until="Step 6/8")
    assert "New bot: Moving average crossover (fast=" in message_text(step)


async def test_compare_answers_one_chart_of_the_equity_curves(discord_bot: RunningBot) -> None:
    user = discord_bot.member(locale="en-US")
    interaction = discord_bot.emulator.invoke(
        user, "backtest",
        {"bot_or_strategy": "compare", "pair": "BTC/USDT", "period": 7,
         "parameters": "rsi sma_crossover:fast=5,slow=30"},
        guild_id=discord_bot.guild.id, locale="en-US",
    )  # fmt: skip
    result = await discord_bot.says(interaction, "2 strategies on BTC/USDT, 7 days", timeout=60)
    text = message_text(result)
    assert "profit factor" in text and "sma_crossover:fast=5,slow=30" in text
    [embed] = result["embeds"]
    assert embed["footer"]["text"].startswith("Equity of each strategy on BTC/USDT; best: ")
