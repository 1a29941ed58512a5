"""/status on Discord shows a bot alive: last evaluation, next decision, DCA prices, position."""

from __future__ import annotations

from engine.tick import run_tick
from tests.bots.discord.conftest import RunningBot, is_ephemeral
from tests.bots.discord.test_e2e import dca_bot


async def test_status_shows_a_holding_dca_bot_alive_in_portuguese(
    discord_bot: RunningBot,
) -> None:
    user = discord_bot.member()
    await dca_bot(discord_bot, user)
    report = await run_tick(discord_bot.app.database, discord_bot.app.feed)
    assert report.orders_filled == 1

    record = await discord_bot.run(user, "portfolio status")
    (reply,) = discord_bot.replies(record)
    text = discord_bot.text(record)
    assert is_ephemeral(reply)
    assert "avaliado há" in text and "próxima decisão em" in text
    assert "próxima ordem de segurança 1 em" in text and "realização de lucro em" in text
    assert "posição de" in text and "USDT (" in text
