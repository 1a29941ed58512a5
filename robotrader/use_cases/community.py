"""Communities (Discord servers): members share their trades with a server, and a leaderboard.

What a community ever sees of a member is the pair, the side and the PnL % of
their trades — never amounts, prices or balances — and only once the member
opted in with that very community. Admins pick the channel the trades go to;
who counts as an admin is the platform's call (Discord: Manage Server), passed
in as ``can_manage`` and enforced here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import delete, select

from db.models import AuditEntry, CommunityChannel, CommunityMember, Platform, Trade
from robotrader.app import App
from robotrader.errors import UserError

LEADERBOARD_DAYS = (7, 30)
LEADERBOARD_SIZE = 25


@dataclass(frozen=True)
class ShareTarget:
    """Where one trade of a member is posted: a community's channel."""

    community_id: str
    channel_id: str
    platform_user_id: str


@dataclass(frozen=True)
class LeaderboardEntry:
    platform_user_id: str
    pnl_pct: Decimal | None  # None: no closed trade in the period
    trades: int


@dataclass(frozen=True)
class Leaderboard:
    days: int
    entries: list[LeaderboardEntry]


def _community_id(community_id: str) -> str:
    community_id = community_id.strip()
    if not community_id:
        raise UserError("community_only")
    return community_id[:64]


async def set_community_channel(
    app: App,
    platform: Platform,
    community_id: str,
    channel_id: str,
    *,
    user_id: int,
    can_manage: bool,
) -> None:
    """Post the trades members share in ``channel_id`` from now on (admins only)."""
    community_id = _community_id(community_id)
    if not can_manage:
        raise UserError("community_admin_only")
    async with app.database.transaction() as session:
        row = await session.scalar(
            select(CommunityChannel)
            .where(
                CommunityChannel.platform == platform,
                CommunityChannel.community_id == community_id,
            )
            .with_for_update()
        )
        if row is None:
            row = CommunityChannel(platform=platform, community_id=community_id)
            session.add(row)
        row.channel_id = channel_id[:64]
        row.set_by_user_id = user_id
        session.add(
            AuditEntry(
                user_id=user_id, platform=str(platform), action="community.channel",
                detail={"community": community_id, "channel": row.channel_id},
            )
        )  # fmt: skip


async def community_channel(app: App, platform: Platform, community_id: str) -> str | None:
    async with app.database.sessions() as session:
        return await session.scalar(
            select(CommunityChannel.channel_id).where(
                CommunityChannel.platform == platform,
                CommunityChannel.community_id == community_id,
            )
        )


async def set_sharing(
    app: App,
    user_id: int,
    platform: Platform,
    community_id: str,
    platform_user_id: str,
    *,
    share: bool,
) -> str | None:
    """Opt in to (or out of) sharing trades with one community.

    Returns the channel the trades go to, or None while the admins have picked none.
    """
    community_id = _community_id(community_id)
    async with app.database.transaction() as session:
        existing = await session.scalar(
            select(CommunityMember).where(
                CommunityMember.platform == platform,
                CommunityMember.community_id == community_id,
                CommunityMember.user_id == user_id,
            )
        )
        if share and existing is None:
            session.add(
                CommunityMember(
                    platform=platform,
                    community_id=community_id,
                    user_id=user_id,
                    platform_user_id=platform_user_id[:64],
                )
            )
        elif not share and existing is not None:
            await session.delete(existing)
        session.add(
            AuditEntry(
                user_id=user_id, platform=str(platform), platform_user_id=platform_user_id[:64],
                action="community.share" if share else "community.unshare",
                detail={"community": community_id},
            )
        )  # fmt: skip
        return await session.scalar(
            select(CommunityChannel.channel_id).where(
                CommunityChannel.platform == platform,
                CommunityChannel.community_id == community_id,
            )
        )


async def share_targets(app: App, platform: Platform, user_id: int) -> list[ShareTarget]:
    """The community channels a user's trades are posted to (opted in, channel picked)."""
    async with app.database.sessions() as session:
        rows = (
            await session.execute(
                select(
                    CommunityMember.community_id,
                    CommunityChannel.channel_id,
                    CommunityMember.platform_user_id,
                )
                .join(
                    CommunityChannel,
                    (CommunityChannel.platform == CommunityMember.platform)
                    & (CommunityChannel.community_id == CommunityMember.community_id),
                )
                .where(CommunityMember.platform == platform, CommunityMember.user_id == user_id)
                .order_by(CommunityMember.community_id)
            )
        ).all()
    return [ShareTarget(community, channel, member) for community, channel, member in rows]


async def forget_community(app: App, platform: Platform, community_id: str) -> None:
    """The bot left the server: drop its channel and every opt-in with it."""
    async with app.database.transaction() as session:
        for model in (CommunityChannel, CommunityMember):
            await session.execute(
                delete(model).where(model.platform == platform, model.community_id == community_id)
            )


async def leaderboard(
    app: App,
    platform: Platform,
    community_id: str,
    days: int,
    *,
    now: datetime | None = None,
) -> Leaderboard:
    """The members who share with this community, ranked by PnL % over ``days`` days.

    A member's PnL % is their realised PnL over the cost of the trades closed in
    the period (every bot, paper and live), so a big and a small account compare
    fairly. Members without a closed trade in the period come last, without a figure.
    """
    community_id = _community_id(community_id)
    if days not in LEADERBOARD_DAYS:
        raise UserError("bad_period", choices=", ".join(str(d) for d in LEADERBOARD_DAYS))
    since = (now or datetime.now(UTC)) - timedelta(days=days)
    async with app.database.sessions() as session:
        members = (
            await session.execute(
                select(CommunityMember.user_id, CommunityMember.platform_user_id).where(
                    CommunityMember.platform == platform,
                    CommunityMember.community_id == community_id,
                )
            )
        ).all()
        ids = [user_id for user_id, _ in members]
        rows = (
            (
                await session.execute(
                    select(Trade.user_id, Trade.pnl, Trade.amount, Trade.entry_price).where(
                        Trade.user_id.in_(ids), Trade.closed_at >= since
                    )
                )
            ).all()
            if ids
            else []
        )
    pnl: dict[int, Decimal] = defaultdict(Decimal)
    cost: dict[int, Decimal] = defaultdict(Decimal)
    count: dict[int, int] = defaultdict(int)
    for user_id, trade_pnl, amount, entry_price in rows:  # summed exactly, in Python
        pnl[user_id] += trade_pnl
        cost[user_id] += amount * entry_price
        count[user_id] += 1
    entries = [
        LeaderboardEntry(
            platform_user_id,
            (pnl[user_id] / cost[user_id] * 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
            if cost[user_id] > 0
            else None,
            count[user_id],
        )
        for user_id, platform_user_id in members
    ]
    entries.sort(key=lambda e: (e.pnl_pct is None, -(e.pnl_pct or 0), e.platform_user_id))
    return Leaderboard(days, entries[:LEADERBOARD_SIZE])
