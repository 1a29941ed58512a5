"""Communities on Discord: /community and /share as chat-core handlers, and the trade posts.

The rules (who may pick the channel, what a member shares, how the leaderboard
ranks) live in robotrader.use_cases.community; these handlers run inside
ChatCore.run, so they get the account, the rate limit and errors in the user's
language like any command, and only turn results into replies. Everything
posted for the community shows a member as a mention (which pings nobody: the
client sends no allowed mentions) and never an amount or a balance.
"""

from __future__ import annotations

from typing import Any

from discord.utils import escape_markdown

from bots.core.invocation import Invocation
from bots.core.replies import Paragraph, Reply, Title
from robotrader.enums import Platform
from robotrader.formatting import percent
from robotrader.i18n import Translator
from robotrader.notifications import TradeClosedNotice, TradeOpenedNotice, read_notice
from robotrader.use_cases.community import leaderboard, set_community_channel, set_sharing


def mention(platform_user_id: str) -> str:
    return (
        f"<@{platform_user_id}>"
        if platform_user_id.isdigit()
        else escape_markdown(platform_user_id)
    )


def channel_mention(channel_id: str) -> str:
    return f"<#{channel_id}>"


async def set_channel(
    inv: Invocation, *, community_id: str, channel_id: str, can_manage: bool
) -> Reply:
    await set_community_channel(
        inv.app,
        Platform.DISCORD,
        community_id,
        channel_id,
        user_id=inv.user_id,
        can_manage=can_manage,
    )
    return Reply.text(inv.t("community.channel_set", channel=channel_mention(channel_id)))


async def share(inv: Invocation, *, community_id: str, platform_user_id: str, on: bool) -> Reply:
    channel = await set_sharing(
        inv.app, inv.user_id, Platform.DISCORD, community_id, platform_user_id, share=on
    )
    if not on:
        return Reply.text(inv.t("community.unshared"))
    if channel is None:
        return Reply.text(inv.t("community.shared_no_channel"))
    return Reply.text(inv.t("community.shared", channel=channel_mention(channel)))


async def show_leaderboard(
    inv: Invocation, *, community_id: str, days: int, language: str
) -> Reply:
    """Posted for the whole server, so in the server's language rather than the caller's."""
    board = await leaderboard(inv.app, Platform.DISCORD, community_id, days)
    t = Translator(language)
    title = Title(t("community.leaderboard_title", period=t(f"period.{board.days}d")))
    if not board.entries:
        return Reply(blocks=[title, Paragraph(t("community.leaderboard_empty"))], personal=False)
    lines = [
        t(
            "community.leaderboard_line",
            rank=rank,
            member=mention(entry.platform_user_id),
            pnl=percent(entry.pnl_pct, t.language),
            trades=entry.trades,
        )
        for rank, entry in enumerate(board.entries, start=1)
    ]
    return Reply(blocks=[title, Paragraph("\n".join(lines))], personal=False)


def trade_post(
    kind: str, payload: dict[str, Any], platform_user_id: str, language: str
) -> str | None:
    """One line for the community channel: who, pair, side, PnL % — nothing about money.

    None for notifications that are not trades.
    """
    notice = read_notice(kind, payload)
    if not isinstance(notice, TradeOpenedNotice | TradeClosedNotice):
        return None
    t = Translator(language)
    symbol = escape_markdown(notice.symbol)[:32]
    mode = t(f"mode.{notice.mode}")
    member = mention(platform_user_id)
    if isinstance(notice, TradeOpenedNotice):
        return t("community.post_bought", member=member, symbol=symbol, mode=mode)
    key = "community.post_sold_loss" if notice.pnl_pct < 0 else "community.post_sold_win"
    return t(
        key, member=member, symbol=symbol, mode=mode, pnl_pct=percent(notice.pnl_pct, t.language)
    )
