"""The kill switch's second half: sell what bots hold, at most one sell per position at once.

A panic sell's client order id comes from the position it sells (and how many
panic sells that position already had), never from the clock: one tap or ten,
together or minutes apart, make the same id, so the database and the exchange
each take it once. Paper positions are sold at once, inside the caller's
transaction. A live bot being liquidated (``Bot.liquidating_since``) sells each
position that has no order in flight; a position with one waits until that order
settles (its fill booked), and the next pass sells what remains.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import (
    UNSETTLED_ORDER_STATUSES,
    Bot,
    BotMode,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    User,
)
from engine.bookkeeping import BotRef, record_rejection, record_report
from engine.client_order_ids import client_order_id
from engine.exchanges.errors import OrderRejected
from engine.exchanges.gateway import OrderRequest
from engine.exchanges.paper import PaperGateway
from engine.tick import PLAN_PRIORITY


def panic_client_order_id(bot_id: int, symbol: str, position_id: int, earlier: int) -> str:
    """The id of a position's next panic sell: ``earlier`` panic sells of it came before."""
    return client_order_id(bot_id, symbol, f"position{position_id}", "panic", earlier)


async def open_markets(session: AsyncSession, user_id: int) -> set[tuple[str, str, str]]:
    """(exchange, symbol, timeframe) of every open position of the user."""
    rows = await session.execute(
        select(Bot.exchange, Position.symbol, Bot.timeframe)
        .join(Bot, Bot.id == Position.bot_id)
        .where(Position.user_id == user_id)
    )
    return {(r.exchange, r.symbol, r.timeframe) for r in rows}


async def _earlier_panic_sells(session: AsyncSession, position: Position) -> list[OrderStatus]:
    rows = await session.scalars(
        select(Order.status).where(
            Order.bot_id == position.bot_id,
            Order.symbol == position.symbol,
            Order.reason == "panic",
            Order.created_at >= position.opened_at,
        )
    )
    return [OrderStatus(status) for status in rows]


def _panic_order(bot: Bot, position: Position, cid: str, price: Decimal | None) -> Order:
    return Order(
        bot_id=bot.id, user_id=bot.user_id, client_order_id=cid, mode=bot.mode,
        symbol=position.symbol, side=OrderSide.SELL, type=OrderType.MARKET,
        amount=position.amount, price=price, reason="panic",
    )  # fmt: skip


async def close_paper_positions(
    session: AsyncSession, user_id: int, prices: Mapping[tuple[str, str], Decimal]
) -> int:
    """Sell every paper position of the user now, at ``prices``; returns how many sold."""
    user = await session.get(User, user_id)
    assert user is not None
    rows = (
        await session.execute(
            select(Position, Bot)
            .join(Bot, Bot.id == Position.bot_id)
            .where(Position.user_id == user_id, Bot.mode == BotMode.PAPER)
            .order_by(Position.id)
        )
    ).all()
    sold = 0
    for position, bot in rows:
        ref = BotRef(bot.id, bot.user_id, bot.name, PLAN_PRIORITY.get(user.plan, 0))
        price = prices.get((bot.exchange, position.symbol))
        earlier = await _earlier_panic_sells(session, position)
        cid = panic_client_order_id(bot.id, position.symbol, position.id, len(earlier))
        order = _panic_order(bot, position, cid, price)
        session.add(order)
        await session.flush()
        gateway = PaperGateway(session, user_id, {position.symbol: price} if price else {})
        try:
            async with session.begin_nested():
                report = await gateway.place_order(OrderRequest.of(order, reference_price=price))
        except OrderRejected as exc:
            await record_rejection(session, order, ref, exc.reason, exc.detail)
            continue
        await record_report(session, order, report, ref)
        sold += 1
    return sold


async def liquidation_orders(session: AsyncSession, user_id: int | None = None) -> list[int]:
    """Record a sell for each position of a liquidating live bot with nothing in flight.

    The bots are locked first, so two passes at once (ten taps, a worker's
    reconciliation) queue here, and the second finds the first's sells in flight.
    A position whose earlier panic sell the exchange refused (dust under its
    minimum, a key without trade rights) is not tried again: its owner was told.
    A bot with nothing left to sell and nothing in flight is done liquidating.
    """
    query = select(Bot).where(Bot.liquidating_since.is_not(None), Bot.mode == BotMode.LIVE)
    if user_id is not None:
        query = query.where(Bot.user_id == user_id)
    bots = (await session.scalars(query.order_by(Bot.id).with_for_update())).all()
    if bots:
        # SQLite ignores FOR UPDATE, and its driver runs every read before a transaction's
        # first write outside that transaction: each read saw whatever had been committed
        # by then, so a pass could miss another's sell in flight and still count it among
        # the earlier ones: a second sell of the same position under the next id. Writing
        # the bots takes SQLite's one write lock (on PostgreSQL, rows already locked above)
        # and holds it to the commit: what follows reads one state that nobody changes.
        await session.execute(
            update(Bot)
            .where(Bot.id.in_([bot.id for bot in bots]))
            .values(liquidating_since=Bot.liquidating_since)
            .execution_options(synchronize_session=False)
        )
    made: list[Order] = []
    for bot in bots:
        # What is in flight is read before the positions: a fill booked in between (it
        # settles the order and shrinks the position in one commit) is then either still
        # in flight here or already out of the position, never a position sold twice.
        in_flight = set(
            await session.scalars(
                select(Order.symbol).where(
                    Order.bot_id == bot.id, Order.status.in_(UNSETTLED_ORDER_STATUSES)
                )
            )
        )
        positions = (
            await session.scalars(
                select(Position).where(Position.bot_id == bot.id).order_by(Position.id)
            )
        ).all()
        selling = False
        for position in positions:
            if position.symbol in in_flight:
                selling = True
                continue
            earlier = await _earlier_panic_sells(session, position)
            if OrderStatus.REJECTED in earlier:
                continue
            cid = panic_client_order_id(bot.id, position.symbol, position.id, len(earlier))
            order = _panic_order(bot, position, cid, None)
            session.add(order)
            made.append(order)
            selling = True
        if not selling and not in_flight:
            bot.liquidating_since = None
    await session.flush()
    return [order.id for order in made]
