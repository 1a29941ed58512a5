"""/bot edit through the real discord.py front end: one line, then the menu's buttons."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from db.models import Bot
from tests.bots.discord.conftest import RunningBot, is_ephemeral, message_text
from tests.bots.discord.test_e2e import dca_bot


async def test_bot_edit_in_one_line_then_through_the_components(discord_bot: RunningBot) -> None:
    user = discord_bot.member()
    await dca_bot(discord_bot, user)
    record = await discord_bot.run(user, "robô editar", {"bot": "dca-1", "changes": "sl=3 dll=5"})
    done = "\n".join(message_text(m) for m in discord_bot.replies(record))
    assert "dca-1 alterado" in done and "desligado → 3" in done and "próximo tick" in done
    async with discord_bot.app.database.sessions() as session:
        bot = await session.scalar(select(Bot))
    assert bot is not None and bot.stop_loss_pct == Decimal(3)

    record = await discord_bot.run(user, "robô editar", {"bot": "dca-1"})
    [menu] = discord_bot.replies(record)
    assert "O que você quer mudar?" in message_text(menu) and is_ephemeral(menu)
    step = await discord_bot.press(user, menu, "Tempo gráfico", until="Escolha o tempo gráfico")
    # The bot runs: a new timeframe is refused at once, in words.
    await discord_bot.press(user, step, "4h", until="só pode mudar com o robô parado")
    record = await discord_bot.run(user, "robô editar", {"bot": "dca-1"})
    [menu] = discord_bot.replies(record)
    await discord_bot.press(user, menu, "Concluir", until="Nada mudou")
