"""/notify: notifications in a channel the user picked, back to DMs, and what happens when
the channel goes away — the real discord.py front end against the emulated Discord."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy import select

from db import outbox
from db.models import ChatIdentity, Platform
from db.notifications import PaymentFailedNotice
from robotrader.use_cases.notification_channel import NotificationTarget, notification_target
from tests.bots.discord.conftest import RunningBot, is_ephemeral, message_text
from tests.bots.discord.test_e2e import dca_bot, tick
from tests.emulators.discord_api import DiscordEmulator, EmuChannel, Perm

BOUGHT = {"pt-BR": "Compra de BTC/USDT", "en-US": "Bought BTC/USDT"}


async def delivered(bot: RunningBot) -> None:
    """Every notification handed to Discord and acknowledged."""
    database = bot.app.database
    for _ in range(200):
        if not await outbox.pending_count(database, Platform.DISCORD):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("notifications still pending")


def saying(emulator: DiscordEmulator, channel_id: int, fragment: str) -> list[str]:
    return [message_text(m) for m in emulator.messages(channel_id) if fragment in message_text(m)]


async def target(bot: RunningBot, user: int) -> NotificationTarget:
    return await notification_target(bot.app, Platform.DISCORD, str(user))


async def test_a_picked_channel_gets_the_trades_until_dm_is_asked_back(
    discord_bot: RunningBot,
) -> None:
    emulator = discord_bot.emulator
    ana = discord_bot.member("ana")
    trades = emulator.add_channel(discord_bot.guild.id, "trades")
    await dca_bot(discord_bot, ana)

    record = await discord_bot.run(ana, "notificações canal", {"channel": trades.id})
    [reply] = discord_bot.replies(record)
    assert is_ephemeral(reply)
    text = message_text(reply)
    assert f"A partir de agora suas notificações são publicadas em <#{trades.id}>." in text
    assert "Todos que podem ler" in text and "valores e preços" in text
    # Using the bot again (each interaction registers the account) keeps the choice.
    record = await discord_bot.run(ana, "carteira lucro")
    assert "Lucro realizado" in discord_bot.text(record)
    record = await discord_bot.run(ana, "notificações ver")
    assert f"Suas notificações são publicadas em <#{trades.id}>." in discord_bot.text(record)

    await tick(discord_bot)
    await emulator.wait_for_async(lambda: saying(emulator, trades.id, BOUGHT["pt-BR"]))
    await delivered(discord_bot)
    await asyncio.sleep(0.2)
    assert len(saying(emulator, trades.id, BOUGHT["pt-BR"])) == 1  # exactly once
    assert not [m for m in emulator.dm_messages(ana) if BOUGHT["pt-BR"] in message_text(m)]
    # Billing never goes to the channel: a failed payment carries a link to the user's billing.
    async with discord_bot.app.database.transaction() as session:
        identity = await session.scalar(
            select(ChatIdentity).where(ChatIdentity.platform_user_id == str(ana))
        )
        assert identity is not None
        await outbox.add_notification(
            session,
            user_id=identity.user_id,
            notice=PaymentFailedNotice(portal_url="http://127.0.0.1:9/portal/session-ana"),
            dedupe_key=f"test:payment_failed:{ana}",
        )
    await emulator.wait_for_async(
        lambda: [m for m in emulator.dm_messages(ana) if "pagamento falhou" in message_text(m)]
    )
    await delivered(discord_bot)
    assert not saying(emulator, trades.id, "pagamento falhou")
    assert not saying(emulator, trades.id, "portal")

    record = await discord_bot.run(ana, "notificações dm")
    assert "Suas notificações voltaram para a sua DM." in discord_bot.text(record)
    assert await target(discord_bot, ana) == NotificationTarget()
    record = await discord_bot.run(ana, "pânico")
    panic = discord_bot.replies(record)[0]
    await discord_bot.press(ana, panic, "vender tudo", until="parado")
    await emulator.wait_for_async(
        lambda: [m for m in emulator.dm_messages(ana) if "Venda de BTC/USDT" in message_text(m)]
    )
    await delivered(discord_bot)
    assert not saying(emulator, trades.id, "Venda de BTC/USDT")


async def test_a_channel_the_bot_or_the_user_cannot_post_in_is_refused(
    discord_bot: RunningBot,
) -> None:
    emulator, guild = discord_bot.emulator, discord_bot.guild
    bob = discord_bot.member("bob", locale="en-US")
    muted = emulator.add_channel(
        guild.id, "no-bots", permission_overwrites=[
            {"id": guild.bot_role_id, "deny": Perm.SEND_MESSAGES}
        ],
    )  # fmt: skip
    hidden = emulator.add_channel(
        guild.id, "staff", permission_overwrites=[
            {"id": guild.bot_role_id, "deny": Perm.VIEW_CHANNEL}
        ],
    )  # fmt: skip
    announcements = emulator.add_channel(
        guild.id, "announcements", permission_overwrites=[
            {"id": guild.id, "deny": Perm.SEND_MESSAGES},
            {"id": guild.bot_role_id, "allow": Perm.SEND_MESSAGES},
        ],
    )  # fmt: skip
    for channel in (muted, hidden):
        record = await discord_bot.run(bob, "notify channel", {"channel": channel.id})
        [reply] = discord_bot.replies(record)
        assert is_ephemeral(reply)
        assert "I can't post in that channel" in message_text(reply)
    record = await discord_bot.run(bob, "notify channel", {"channel": announcements.id})
    assert "where you can read and send messages" in discord_bot.text(record)
    record = await discord_bot.run(bob, "notify show")
    assert "Your notifications come to your DMs." in discord_bot.text(record)
    assert await target(discord_bot, bob) == NotificationTarget()
    for channel in (muted, hidden, announcements):
        assert emulator.messages(channel.id) == []


def _delete(emulator: DiscordEmulator, channel: EmuChannel, bot_role: int) -> None:
    emulator.delete_channel(channel.id)  # 404, 10003 Unknown Channel


def _hide(emulator: DiscordEmulator, channel: EmuChannel, bot_role: int) -> None:
    emulator.set_channel_overwrite(channel.id, bot_role, deny=Perm.VIEW_CHANNEL)  # 403, 50001


def _mute(emulator: DiscordEmulator, channel: EmuChannel, bot_role: int) -> None:
    emulator.set_channel_overwrite(channel.id, bot_role, deny=Perm.SEND_MESSAGES)  # 403, 50013


@pytest.mark.parametrize(
    ("lose", "language"),
    [(_delete, "pt-BR"), (_hide, "en"), (_mute, "pt-BR")],
    ids=["deleted", "hidden", "muted"],
)
async def test_a_channel_lost_afterwards_sends_the_trade_by_dm_and_says_so_once(
    discord_bot: RunningBot,
    lose: Callable[[DiscordEmulator, EmuChannel, int], None],
    language: str,
) -> None:
    emulator = discord_bot.emulator
    portuguese = language == "pt-BR"
    carla = discord_bot.member("carla")  # a Discord client in Portuguese
    trades = emulator.add_channel(discord_bot.guild.id, "trades")
    await dca_bot(discord_bot, carla)
    if not portuguese:
        await discord_bot.run(carla, "idioma", {"language": "en"})
    await discord_bot.run(carla, "notificações canal", {"channel": trades.id})
    assert (await target(discord_bot, carla)).channel_id == str(trades.id)
    lose(emulator, trades, discord_bot.guild.bot_role_id)

    await tick(discord_bot)
    bought = BOUGHT["pt-BR" if portuguese else "en-US"]
    notice = "Não consigo mais publicar em" if portuguese else "I can no longer post in"
    dms = await emulator.wait_for_async(
        lambda: (
            [message_text(m) for m in emulator.dm_messages(carla)]
            if any(bought in message_text(m) for m in emulator.dm_messages(carla))
            else None
        )
    )
    await delivered(discord_bot)
    told = [m for m in dms if notice in m]
    assert len(told) == 1 and f"<#{trades.id}>" in told[0]
    assert dms.index(told[0]) < next(i for i, m in enumerate(dms) if bought in m)
    assert emulator.messages(trades.id) == []
    assert await target(discord_bot, carla) == NotificationTarget()
    assert discord_bot.service.delivery.stats.channels_gone == 1

    # The next trade goes straight to the DM: nothing more to say about the channel.
    record = await discord_bot.run(carla, "pânico")
    panic = discord_bot.replies(record)[0]
    sell_all, done = ("vender tudo", "parado") if portuguese else ("sell everything", "stopped")
    await discord_bot.press(carla, panic, sell_all, until=done)
    sold = "Venda de BTC/USDT" if portuguese else "Sold BTC/USDT"
    await emulator.wait_for_async(
        lambda: [m for m in emulator.dm_messages(carla) if sold in message_text(m)]
    )
    await delivered(discord_bot)
    assert len([m for m in emulator.dm_messages(carla) if notice in message_text(m)]) == 1
    async with discord_bot.app.database.sessions() as session:
        identity = await session.scalar(
            select(ChatIdentity).where(ChatIdentity.platform_user_id == str(carla))
        )
    assert identity is not None and identity.reachable
