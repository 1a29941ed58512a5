"""robotrader.use_cases.community: opt-in per server, admins only, PnL % over 7 or 30 days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from db.models import Bot, BotMode, ChatIdentity, Platform, Trade, User
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.use_cases.community import (
    community_channel,
    forget_community,
    leaderboard,
    set_community_channel,
    set_sharing,
    share_targets,
)

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
GUILD, OTHER_GUILD = "900", "901"


async def _trader(app: App, discord_id: str, trades: list[tuple[str, str, int]]) -> int:
    """A user with closed trades: (pnl, cost, days ago) each."""
    async with app.database.transaction() as session:
        user = User()
        session.add(user)
        await session.flush()
        session.add(
            ChatIdentity(user_id=user.id, platform=Platform.DISCORD, platform_user_id=discord_id)
        )
        bot = Bot(user_id=user.id, name="b", exchange="binance", symbols=["BTC/USDT"],
                  strategy="dca", capital=Decimal(1000))  # fmt: skip
        session.add(bot)
        await session.flush()
        for pnl, cost, days in trades:
            session.add(
                Trade(
                    bot_id=bot.id, user_id=user.id, symbol="BTC/USDT", mode=BotMode.PAPER,
                    amount=Decimal(cost) / 100, entry_price=Decimal(100), exit_price=Decimal(100),
                    pnl=Decimal(pnl), pnl_pct=Decimal(0), fees=Decimal(0), exit_reason="exit",
                    opened_at=NOW - timedelta(days=days, hours=1),
                    closed_at=NOW - timedelta(days=days),
                )
            )  # fmt: skip
        return user.id


async def test_sharing_is_per_server_and_needs_an_admin_picked_channel(app: App) -> None:
    ana = await _trader(app, "11", [])
    assert await set_sharing(app, ana, Platform.DISCORD, GUILD, "11", share=True) is None
    assert await share_targets(app, Platform.DISCORD, ana) == []  # no channel yet
    with pytest.raises(UserError) as refused:
        await set_community_channel(
            app, Platform.DISCORD, GUILD, "55", user_id=ana, can_manage=False
        )
    assert refused.value.key == "community_admin_only"
    await set_community_channel(app, Platform.DISCORD, GUILD, "55", user_id=ana, can_manage=True)
    await set_community_channel(
        app, Platform.DISCORD, OTHER_GUILD, "66", user_id=ana, can_manage=True
    )
    [target] = await share_targets(app, Platform.DISCORD, ana)  # not the other server
    assert (target.community_id, target.channel_id, target.platform_user_id) == (GUILD, "55", "11")
    # Sharing twice is sharing once; switching off removes it.
    await set_sharing(app, ana, Platform.DISCORD, GUILD, "11", share=True)
    assert len(await share_targets(app, Platform.DISCORD, ana)) == 1
    await set_sharing(app, ana, Platform.DISCORD, GUILD, "11", share=False)
    assert await share_targets(app, Platform.DISCORD, ana) == []
    with pytest.raises(UserError) as outside:
        await set_sharing(app, ana, Platform.DISCORD, " ", "11", share=True)
    assert outside.value.key == "community_only"


async def test_leaderboard_ranks_pnl_over_cost_in_the_period(app: App) -> None:
    # ana: +30 on 1000 this week (3%), plus an old loss outside 7 days but inside 30.
    ana = await _trader(app, "21", [("30", "1000", 1), ("-100", "1000", 20)])
    # bia: +10 on 200 (5%) this week.
    bia = await _trader(app, "22", [("10", "200", 2)])
    # caio shares but has not traded; dani trades but does not share.
    caio = await _trader(app, "23", [])
    await _trader(app, "24", [("500", "500", 1)])
    for user, discord_id in ((ana, "21"), (bia, "22"), (caio, "23")):
        await set_sharing(app, user, Platform.DISCORD, GUILD, discord_id, share=True)

    week = await leaderboard(app, Platform.DISCORD, GUILD, 7, now=NOW)
    assert [(e.platform_user_id, e.pnl_pct, e.trades) for e in week.entries] == [
        ("22", Decimal("5.00"), 1),
        ("21", Decimal("3.00"), 1),
        ("23", None, 0),
    ]
    month = await leaderboard(app, Platform.DISCORD, GUILD, 30, now=NOW)
    assert [(e.platform_user_id, e.pnl_pct) for e in month.entries][:2] == [
        ("22", Decimal("5.00")),
        ("21", Decimal("-3.50")),  # (30 - 100) / 2000
    ]
    with pytest.raises(UserError) as bad:
        await leaderboard(app, Platform.DISCORD, GUILD, 90, now=NOW)
    assert bad.value.key == "bad_period"
    assert (await leaderboard(app, Platform.DISCORD, OTHER_GUILD, 7, now=NOW)).entries == []

    await forget_community(app, Platform.DISCORD, GUILD)
    assert (await leaderboard(app, Platform.DISCORD, GUILD, 7, now=NOW)).entries == []


async def test_an_admin_moves_the_channel_and_sharers_learn_where(app: App) -> None:
    ana = await _trader(app, "31", [])
    assert await community_channel(app, Platform.DISCORD, GUILD) is None
    await set_community_channel(app, Platform.DISCORD, GUILD, "55", user_id=ana, can_manage=True)
    await set_community_channel(app, Platform.DISCORD, GUILD, "77", user_id=ana, can_manage=True)
    assert await community_channel(app, Platform.DISCORD, GUILD) == "77"
    assert await set_sharing(app, ana, Platform.DISCORD, GUILD, "31", share=True) == "77"
