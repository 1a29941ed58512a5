"""What the user's bots hold and earned: positions, trades, profit, balances."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import delete, select

from db.credential_secrets import unseal
from db.models import Bot, ExchangeCredential, PaperBalance, Position, Trade
from db.vault import VaultError
from engine.exchanges.ccxt_gateway import CcxtGateway
from engine.exchanges.errors import ExchangeAuthError, ExchangeUnavailable
from engine.exchanges.paper import STARTING_BALANCE, PaperGateway
from engine.market_data.feed import MarketKey
from robotrader.app import App
from robotrader.errors import UserError


@dataclass(frozen=True)
class PositionView:
    bot_id: int
    bot: str
    mode: str
    symbol: str
    amount: Decimal
    average_entry: Decimal
    price: Decimal | None
    unrealized_pnl: Decimal | None
    unrealized_pct: Decimal | None
    opened_at: datetime


@dataclass(frozen=True)
class TradeView:
    bot: str
    mode: str
    symbol: str
    amount: Decimal
    entry_price: Decimal
    exit_price: Decimal
    pnl: Decimal
    pnl_pct: Decimal
    exit_reason: str
    closed_at: datetime
    bot_deleted: bool = False  # its bot was deleted (archived): the trade still counts


@dataclass(frozen=True)
class PeriodProfit:
    period: str  # today | 7d | 30d | all
    pnl: Decimal
    trades: int
    wins: int

    @property
    def win_rate(self) -> Decimal | None:
        return (Decimal(self.wins) / self.trades * 100) if self.trades else None


def unrealized(
    amount: Decimal, cost: Decimal, price: Decimal | None
) -> tuple[Decimal | None, Decimal | None]:
    """A position's PnL at ``price``, in quote and in % of what it cost (fees included)."""
    if price is None:
        return None, None
    pnl = amount * price - cost
    return pnl, (pnl / cost * 100) if cost else None


async def positions(app: App, user_id: int) -> list[PositionView]:
    """Open positions, marked to the last close of their market."""
    async with app.database.sessions() as session:
        rows = (
            await session.execute(
                select(Position, Bot.name, Bot.mode, Bot.exchange, Bot.timeframe)
                .join(Bot, Bot.id == Position.bot_id)
                .where(Position.user_id == user_id)
                .order_by(Position.opened_at)
            )
        ).all()
    keys = {MarketKey(r.exchange, r[0].symbol, r.timeframe): 2 for r in rows}
    fetched = await app.feed.fetch(keys, set(), int(time.time() * 1000)) if keys else None
    views = []
    for position, name, mode, exchange, timeframe in rows:
        snapshot = (
            fetched.snapshots.get(MarketKey(exchange, position.symbol, timeframe))
            if fetched
            else None
        )
        price = Decimal(repr(snapshot.last_close)) if snapshot else None
        pnl, pct = unrealized(position.amount, position.cost, price)
        views.append(
            PositionView(
                position.bot_id, name, str(mode), position.symbol, position.amount,
                position.average_entry, price, pnl, pct, position.opened_at,
            )
        )  # fmt: skip
    return views


async def trades(app: App, user_id: int, *, limit: int = 10) -> list[TradeView]:
    async with app.database.sessions() as session:
        rows = (
            await session.execute(
                select(Trade, Bot.name, Bot.archived_at)
                .join(Bot, Bot.id == Trade.bot_id)
                .where(Trade.user_id == user_id)
                .order_by(Trade.closed_at.desc(), Trade.id.desc())
                .limit(max(1, min(limit, 50)))
            )
        ).all()
    return [
        TradeView(name, str(t.mode), t.symbol, t.amount, t.entry_price, t.exit_price, t.pnl,
                  t.pnl_pct, t.exit_reason, t.closed_at, archived is not None)
        for t, name, archived in rows
    ]  # fmt: skip


async def profit(app: App, user_id: int) -> list[PeriodProfit]:
    """Realised PnL today (UTC), over 7 and 30 days, and in all (summed exactly, in Python)."""
    now = datetime.now(UTC)
    starts = {
        "today": now.replace(hour=0, minute=0, second=0, microsecond=0),
        "7d": now - timedelta(days=7),
        "30d": now - timedelta(days=30),
        "all": datetime.min.replace(tzinfo=UTC),
    }
    async with app.database.sessions() as session:
        rows = (
            await session.execute(
                select(Trade.pnl, Trade.closed_at).where(Trade.user_id == user_id)
            )
        ).all()
    totals: dict[str, list[Decimal]] = defaultdict(list)
    for pnl, closed_at in rows:
        for period, start in starts.items():
            if closed_at >= start:
                totals[period].append(pnl)
    return [
        PeriodProfit(
            p, sum(totals[p], Decimal(0)), len(totals[p]), sum(1 for x in totals[p] if x > 0)
        )
        for p in starts
    ]


@dataclass(frozen=True)
class AccountBalance:
    account: str  # "paper" or the exchange id
    assets: dict[str, Decimal]
    error: str | None = None  # message key when an exchange could not be read


async def balances(app: App, user_id: int) -> list[AccountBalance]:
    """The paper account, then each connected exchange (read live with the stored key).

    An exchange's answer is kept a few seconds per user (``App.answers``): asking again
    and again must not spend the request weight the server's IP shares with every user.
    """
    async with app.database.transaction() as session:
        paper = await PaperGateway(session, user_id, {}).balances()
        credentials = (
            await session.scalars(
                select(ExchangeCredential).where(ExchangeCredential.user_id == user_id)
            )
        ).all()
    result = [AccountBalance("paper", paper)]
    for credential in credentials:
        key = ("balance", user_id, credential.id, credential.validated_at)
        cached = app.answers.get(key)
        if cached is not None:
            result.append(cached)
            continue
        result.append(await _exchange_balance(app, credential))
        app.answers.put(key, result[-1])
    return result


async def _exchange_balance(app: App, credential: ExchangeCredential) -> AccountBalance:
    try:
        client = await app.pool.private(credential.exchange, unseal(app.vault, credential))
    except (VaultError, ExchangeUnavailable):
        return AccountBalance(credential.exchange, {}, "exchange_unavailable")
    try:
        assets = await CcxtGateway(client, retries=1).balances()
        return AccountBalance(credential.exchange, assets)
    except ExchangeAuthError:
        return AccountBalance(credential.exchange, {}, "key_refused")
    except ExchangeUnavailable:
        return AccountBalance(credential.exchange, {}, "exchange_unavailable")
    finally:
        await client.close()


async def reset_paper(app: App, user_id: int) -> dict[str, Decimal]:
    """Back to the starting paper balance; refused while paper positions are open."""
    async with app.database.transaction() as session:
        open_paper = await session.scalar(
            select(Position.id)
            .join(Bot, Bot.id == Position.bot_id)
            .where(Position.user_id == user_id, Bot.mode == "paper")
            .limit(1)
        )
        if open_paper is not None:
            raise UserError("close_positions_first", bot="paper")
        await session.execute(delete(PaperBalance).where(PaperBalance.user_id == user_id))
        session.add_all(
            PaperBalance(user_id=user_id, asset=a, amount=v) for a, v in STARTING_BALANCE.items()
        )
    return dict(STARTING_BALANCE)
