"""A user's path through the real discord.py front end, end to end (emulated Discord)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bots.core.registry import COMMANDS
from bots.discord.commands import slash_path
from bots.telegram.service import run_telegram
from db.models import Bot, BotStatus, ChatIdentity, ExchangeCredential, Platform
from engine.market_data.cache import MemoryCandleCache
from engine.market_data.feed import MarketDataFeed
from engine.tick import run_tick
from robotrader.i18n import catalog
from tests.bots.discord.conftest import RunningBot, custom_id, is_ephemeral, message_text
from tests.emulators.discord_api import (
    CALLBACK_MODAL,
    DEFAULT_BOT_PERMISSIONS,
    InvocationRefused,
    Perm,
)
from tests.emulators.telegram import DEFAULT_TOKEN, TelegramEmulator


async def tick(bot: RunningBot) -> None:
    feed = MarketDataFeed(bot.app.pool, MemoryCandleCache(), mode="replay")
    await run_tick(bot.app.database, feed)


async def dca_bot(bot: RunningBot, user: int) -> None:
    """A running DCA bot on BTC/USDT (it buys on its first tick), made with the one-line form."""
    await bot.run(user, "ajuda")  # registers the user
    await bot.make_pro(user)
    record = await bot.run(
        user,
        "bot create",
        {"exchange": "binance", "pairs": "BTC/USDT", "strategy": "dca", "capital": 1000},
    )
    confirm = bot.replies(record)[-1]
    created = await bot.press(user, confirm, "Criar", until="criado")
    await bot.press(user, created, "Iniciar agora", until="iniciado")


async def test_commands_are_synced_with_portuguese_names(discord_bot: RunningBot) -> None:
    synced = {c["name"]: c for c in discord_bot.emulator.commands()}
    assert set(synced) >= {
        "bot", "exchange", "portfolio", "plan", "upgrade", "billing", "panic", "settings",
        "language", "link", "help", "community", "share",
    }  # fmt: skip
    paths = [slash_path(c.name) for c in COMMANDS.values()]
    tops = {catalog("en").get(f"discord.cmd.{p[0]}", p[0]) for p in paths if p}
    assert tops <= set(synced)  # every core command can be run on Discord
    bot = synced["bot"]
    assert bot["name_localizations"] == {"pt-BR": "robô"}
    create = next(o for o in bot["options"] if o["name"] == "create")
    assert create["name_localizations"] == {"pt-BR": "criar"}
    assert create["description_localizations"]["pt-BR"] == "Criar um robô de trade"
    strategy = next(o for o in create["options"] if o["name"] == "strategy")
    dca = next(c for c in strategy["choices"] if c["value"] == "dca")
    assert dca["name"].startswith("DCA") and dca["name_localizations"]["pt-BR"].startswith("DCA")
    community = synced["community"]
    assert community["default_member_permissions"] == str(int(Perm.MANAGE_GUILD))
    assert community["dm_permission"] is False


async def test_help_is_ephemeral_in_a_server_and_lists_the_discord_commands(
    discord_bot: RunningBot,
) -> None:
    user = discord_bot.member()
    record = await discord_bot.run(user, "ajuda")
    [reply] = discord_bot.replies(record)
    assert is_ephemeral(reply) and record.ephemeral
    assert "/robô criar — Criar um robô de trade" in message_text(reply)
    assert "/newbot" not in message_text(reply)
    # In the DM with the bot, a normal message; an English client reads English.
    record = await discord_bot.run(user, "help", in_server=False, locale="en-US")
    [reply] = discord_bot.replies(record)
    assert not is_ephemeral(reply)
    assert "/bot create — Create a trading bot" in message_text(reply)
    dm = discord_bot.emulator.dm_channel(user).id
    assert reply["channel_id"] == str(dm)


async def test_a_chosen_language_wins_over_the_client_locale(discord_bot: RunningBot) -> None:
    user = discord_bot.member(locale="en-US")
    record = await discord_bot.run(user, "language", {"language": "pt-BR"})
    assert "Idioma definido para português." in discord_bot.text(record)
    record = await discord_bot.run(user, "portfolio profit", locale="en-US")
    assert "Lucro realizado" in discord_bot.text(record)
    assert all(is_ephemeral(m) for m in discord_bot.replies(record))


async def test_exchange_connect_through_the_modal_never_shows_the_secret(
    discord_bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    user = discord_bot.member()
    key, secret = "FAKEKEYdiscord0001modalXYZ", "FAKESECRETdiscord0001modalXYZ"
    discord_bot.exchange.add_account("binance", key, secret)
    emulator = discord_bot.emulator
    opened = emulator.invoke(
        user, "corretora conectar", {"exchange": "binance"}, guild_id=discord_bot.guild.id
    )
    record = await discord_bot.answered(opened)
    assert record.callback_type == CALLBACK_MODAL and record.modal is not None
    assert record.modal["title"] == "Conectar Binance"
    submitted = emulator.submit_modal(user, opened, {"api_key": key, "secret": secret})
    done = await discord_bot.says(submitted, "Binance conectada")
    assert is_ephemeral(done)
    assert "não pode sacar (ótimo!)" in message_text(done)

    everything = [emulator.get_message(int(m["id"])) for i in emulator.interactions()
                  for m in emulator.responses(i).followups]  # fmt: skip
    for channel in emulator.guild(discord_bot.guild.id).channel_ids:
        everything += emulator.messages(channel)
    everything += emulator.dm_messages(user)
    assert everything and all(
        key not in message_text(m) and secret not in message_text(m) for m in everything
    )
    assert key not in caplog.text and secret not in caplog.text
    async with discord_bot.app.database.sessions() as session:
        credential = await session.scalar(select(ExchangeCredential))
    assert credential is not None
    assert (
        secret.encode() not in credential.secret_enc and key.encode() not in credential.api_key_enc
    )


async def test_a_key_pasted_in_a_channel_is_deleted_and_its_author_warned(
    discord_bot: RunningBot,
) -> None:
    user = discord_bot.member()
    emulator = discord_bot.emulator
    channel = discord_bot.general
    leaked = emulator.post_message(user, channel, "minha chave: Xk3pL9qR2mN8vB4tY7wZ1cD6fG0hJ5sA")
    await emulator.wait_for_async(
        lambda: [m for m in emulator.deleted(channel) if m["id"] == leaked["id"]]
    )
    [gone] = [m for m in emulator.deleted(channel) if m["id"] == leaked["id"]]
    assert gone["deleted_by"] == str(emulator.bot_user.id)
    warning = await emulator.wait_for_async(
        lambda: [m for m in emulator.messages(channel) if "Apaguei" in message_text(m)]
    )
    assert "Xk3p" not in message_text(warning[0])
    dm = await emulator.wait_for_async(lambda: emulator.dm_messages(user))
    assert "Revogue essa chave" in message_text(dm[0])
    # Ordinary chatter is left alone.
    emulator.post_message(user, channel, "alguém viu o BTC hoje?")
    await asyncio.sleep(0.3)
    assert len(emulator.deleted(channel)) == 1
    # Without Manage Messages the bot cannot delete it: it says so, and still warns by DM.
    emulator.set_bot_permissions(discord_bot.guild.id, DEFAULT_BOT_PERMISSIONS)
    kept = emulator.post_message(user, channel, "outra: Qw8eR7tY6uI5oP4aS3dF2gH1jK0lZ9xC")
    await emulator.wait_for_async(
        lambda: [m for m in emulator.messages(channel) if "Apague agora" in message_text(m)]
    )
    await emulator.wait_for_async(lambda: len(emulator.dm_messages(user)) == 2)
    assert kept["id"] not in [m["id"] for m in emulator.deleted(channel)]


async def test_bot_create_through_the_view_in_a_server(discord_bot: RunningBot) -> None:
    user = discord_bot.member()
    record = await discord_bot.run(user, "robô criar")
    step = discord_bot.replies(record)[0]
    assert "Passo 1/8" in message_text(step)
    step = await discord_bot.press(user, step, "Binance", until="Passo 2/8")
    step = await discord_bot.press(user, step, "BTC/USDT", until="Selecionados: BTC/USDT")
    step = await discord_bot.press(user, step, "Próximo", until="Passo 3/8")
    [[menu]] = [row["components"] for row in step["components"]]
    assert menu["type"] == 3  # five strategies: a select menu
    step = await discord_bot.press(user, step, "Cruzamento", until="Passo 4/8")
    step = await discord_bot.press(user, step, "Usar estes", until="Passo 5/8")
    step = await discord_bot.press(user, step, "Pular", until="Passo 6/8")
    step = await discord_bot.press(user, step, "Pular", until="Passo 7/8")
    step = await discord_bot.press(user, step, "1000 USDT", until="Passo 8/8")
    step = await discord_bot.press(user, step, "papel", until="Criar este robô?")
    created = await discord_bot.press(user, step, "Criar", until="criado")
    started = await discord_bot.press(user, created, "Iniciar agora", until="iniciado")
    assert is_ephemeral(created) and is_ephemeral(started)
    assert started["id"] != created["id"]  # a new message; the steps edited one message
    async with discord_bot.app.database.sessions() as session:
        bot = await session.scalar(select(Bot))
    assert bot is not None and bot.status == BotStatus.RUNNING and bot.strategy == "sma_crossover"
    # Nobody else saw any of it.
    assert discord_bot.emulator.messages(discord_bot.general, include_ephemeral=False) == []


@contextlib.asynccontextmanager
async def telegram_front_end(bot: RunningBot) -> AsyncIterator[TelegramEmulator]:
    """The real Telegram front end on the same account database."""
    with TelegramEmulator() as emulator:
        settings = bot.app.settings.model_copy(
            update={
                "telegram_token": SecretStr(DEFAULT_TOKEN),
                "telegram_api_url": emulator.api_base_url,
            }
        )
        app = type(bot.app).from_settings(settings, bot.app.database)
        stop = asyncio.Event()
        task = asyncio.create_task(run_telegram(app, stop))
        try:
            yield emulator
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=30)
            await app.pool.close()


async def test_linking_with_a_telegram_account_both_ways(discord_bot: RunningBot) -> None:
    async with telegram_front_end(discord_bot) as telegram:
        # A Telegram user with a bot links Discord: Discord then sees that bot.
        ana_tg = 300_001
        telegram.add_user(ana_tg, "Ana", language_code="pt-br")
        telegram.user_sends(ana_tg, "/newbot binance BTC/USDT sma_crossover 500")
        confirm = await telegram.wait_for_async(
            lambda m: m["chat"]["id"] == ana_tg and "Criar este robô?" in (m.get("text") or ""), 15
        )
        button = next(
            b["callback_data"]
            for row in confirm["reply_markup"]["inline_keyboard"]
            for b in row
            if "Criar" in b["text"]
        )
        telegram.user_presses(ana_tg, confirm, button)
        await telegram.wait_for_async(lambda m: "criado" in (m.get("text") or ""), 15)
        telegram.user_sends(ana_tg, "/link")
        code_message = await telegram.wait_for_async(
            lambda m: "/link " in (m.get("text") or ""), 15
        )
        code = re.search(r"/link (\S+)", code_message["text"])
        assert code is not None
        ana = discord_bot.member("ana")
        record = await discord_bot.run(ana, "vincular", {"code": code.group(1)})
        # Nothing is linked until the one being linked confirms, naming the account.
        ask = discord_bot.replies(record)[0]
        assert "Ana" in message_text(ask) and "Telegram" in message_text(ask)
        await discord_bot.press(ana, ask, "Entrar na conta de Ana", until="Vinculado")
        record = await discord_bot.run(ana, "robô listar")
        assert "sma_crossover" in discord_bot.text(record)

        # The other way round: a Discord user's code, redeemed on Telegram.
        bruno = discord_bot.member("bruno")
        record = await discord_bot.run(bruno, "vincular")
        code = re.search(r"/link (\S+)", discord_bot.text(record))
        assert code is not None and is_ephemeral(discord_bot.replies(record)[0])
        bruno_tg = 300_002
        telegram.add_user(bruno_tg, "Bruno", language_code="pt-br")
        telegram.user_sends(bruno_tg, f"/link {code.group(1)}")
        ask = await telegram.wait_for_async(
            lambda m: m["chat"]["id"] == bruno_tg and "Entrar" in str(m.get("reply_markup")), 15
        )
        button = next(
            b["callback_data"]
            for row in ask["reply_markup"]["inline_keyboard"]
            for b in row
            if "Entrar na conta" in b["text"]
        )
        telegram.user_presses(bruno_tg, ask, button)
        await telegram.wait_for_async(
            lambda m: m["chat"]["id"] == bruno_tg and "Vinculado" in (m.get("text") or ""), 15
        )
    async with discord_bot.app.database.sessions() as session:
        identities = (await session.scalars(select(ChatIdentity))).all()
    users = {(i.platform, i.platform_user_id): i.user_id for i in identities}
    assert users[(Platform.TELEGRAM, str(ana_tg))] == users[(Platform.DISCORD, str(ana))]
    assert users[(Platform.TELEGRAM, str(bruno_tg))] == users[(Platform.DISCORD, str(bruno))]


async def test_trade_notifications_by_dm_and_to_a_user_with_closed_dms(
    discord_bot: RunningBot,
) -> None:
    emulator = discord_bot.emulator
    open_dms = discord_bot.member("ana")
    closed_dms = discord_bot.member("carol", dms_open=False)
    await dca_bot(discord_bot, open_dms)
    await dca_bot(discord_bot, closed_dms)
    await tick(discord_bot)

    dm = await emulator.wait_for_async(
        lambda: [
            m for m in emulator.dm_messages(open_dms) if "Compra de BTC/USDT" in message_text(m)
        ]
    )
    assert "papel" in message_text(dm[0])

    async def unreachable() -> bool:
        async with discord_bot.app.database.sessions() as session:
            identity = await session.scalar(
                select(ChatIdentity).where(ChatIdentity.platform_user_id == str(closed_dms))
            )
        return identity is not None and not identity.reachable and identity.chat_id is None

    for _ in range(100):
        if await unreachable():
            break
        await asyncio.sleep(0.05)
    assert await unreachable()
    assert emulator.dm_messages(closed_dms) == []
    # Told once, in the server, only to them.
    asked = emulator.invoke(closed_dms, "carteira lucro", guild_id=discord_bot.guild.id)
    notice = await discord_bot.says(asked, "DMs estão fechadas")
    assert is_ephemeral(notice)
    await discord_bot.says(asked, "Lucro realizado")
    again = emulator.invoke(closed_dms, "carteira lucro", guild_id=discord_bot.guild.id)
    await discord_bot.says(again, "Lucro realizado")
    await asyncio.sleep(0.2)
    assert "DMs estão fechadas" not in discord_bot.text(emulator.responses(again))


async def test_community_channel_posts_shared_trades_and_the_leaderboard(
    discord_bot: RunningBot,
) -> None:
    emulator = discord_bot.emulator
    admin = discord_bot.member("admin", permissions=Perm.MANAGE_GUILD)
    trades = emulator.add_channel(discord_bot.guild.id, "trades")
    record = await discord_bot.run(admin, "comunidade canal", {"channel": trades.id})
    assert f"<#{trades.id}>" in discord_bot.text(record)

    trader, quiet = discord_bot.member("ana"), discord_bot.member("bia")
    record = await discord_bot.run(trader, "compartilhar ligar")
    assert "nunca valores" in discord_bot.text(record)
    await discord_bot.run(quiet, "share on")
    await dca_bot(discord_bot, trader)
    await tick(discord_bot)
    bought = await emulator.wait_for_async(lambda: emulator.messages(trades.id))
    assert bought[0]["content"] == f"🟢 <@{trader}> comprou BTC/USDT · 📄 papel"
    assert bought[0]["mentions"] == [] or all(m["id"] == str(trader) for m in bought[0]["mentions"])

    record = await discord_bot.run(trader, "pânico")
    panic = discord_bot.replies(record)[0]
    await discord_bot.press(trader, panic, "vender tudo", until="parado")
    sold = await emulator.wait_for_async(
        lambda: [m for m in emulator.messages(trades.id) if "vendeu" in m["content"]]
    )
    assert re.fullmatch(
        rf"[✅🔻] <@{trader}> vendeu BTC/USDT · [+-]?\d+,\d\d% · 📄 papel", sold[0]["content"]
    )

    record = await discord_bot.run(admin, "comunidade ranking", {"period": 7})
    [board] = discord_bot.replies(record)
    assert not is_ephemeral(board)  # posted for the whole server
    lines = message_text(board).splitlines()
    assert lines[0] == "🏆 Ranking — 7 dias"
    assert lines[1].startswith(f"1. <@{trader}> · ") and lines[1].endswith("1 operação(ões)")
    assert lines[2] == f"2. <@{quiet}> · — · 0 operação(ões)"


async def test_the_admin_command_is_refused_to_a_member(discord_bot: RunningBot) -> None:
    member = discord_bot.member("ana")
    emulator = discord_bot.emulator
    with pytest.raises(InvocationRefused) as refused:
        emulator.invoke(member, "community channel", {"channel": discord_bot.general},
                        guild_id=discord_bot.guild.id)  # fmt: skip
    assert refused.value.reason == "missing_permissions"
    with pytest.raises(InvocationRefused) as in_dm:
        emulator.invoke(member, "share on")
    assert in_dm.value.reason == "wrong_context"


async def test_buttons_grey_out_after_a_while_and_work_with_no_view_alive(
    discord_bot: RunningBot,
) -> None:
    emulator, client = discord_bot.emulator, discord_bot.service.client
    user = discord_bot.member(locale="en-US")
    client.view_timeout = 0.3
    record = await discord_bot.run(user, "language")
    [menu] = discord_bot.replies(record)
    await emulator.wait_for_async(
        lambda: all(
            c["disabled"]
            for row in emulator.get_message(int(menu["id"]))["components"]
            for c in row["components"]
        )
    )
    with pytest.raises(InvocationRefused) as refused:
        emulator.press(user, menu, custom_id(menu, "English")[0])
    assert refused.value.reason == "component_disabled"
    # After a restart no View is alive: the press is answered from its custom_id alone.
    client.view_timeout = 600
    record = await discord_bot.run(user, "language")
    [menu] = discord_bot.replies(record)
    for view in list(client.views.by_message.values()):
        view.stop()
    await discord_bot.press(user, menu, "Português", until="Idioma definido para português.")
