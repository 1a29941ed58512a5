"""The kill switch's second half: sell every open position of a user at market."""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Bot, BotMode, Order, OrderSide, OrderType, Position, User
from engine.bookkeeping import BotRef, record_rejection, record_report
from engine.client_order_ids import client_order_id
from engine.exchanges.errors import OrderRejected
from engine.exchanges.gateway import OrderRequest
from engine.exchanges.paper import PaperGateway
from engine.tick import PLAN_PRIORITY


async def open_markets(session: AsyncSession, user_id: int) -> set[tuple[str, str, str]]:
    """(exchange, symbol, timeframe) of every open position of the user."""
    rows = await session.execute(
        select(Bot.exchange, Position.symbol, Bot.timeframe)
        .join(Bot, Bot.id == Position.bot_id)
        .where(Position.user_id == user_id)
    )
    return {(r.exchange, r.symbol, r.timeframe) for r in rows}


async def close_positions_now(
    session: AsyncSession, user_id: int, prices: Mapping[tuple[str, str], Decimal]
) -> list[tuple[int, bool]]:
    """Sell orders for every position: paper ones filled here, live ones left PENDING.

    Returns (order id, is live) for each order made; the caller places the live ones.
    """
    user = await session.get(User, user_id)
    assert user is not None
    rows = (
        await session.execute(
            select(Position, Bot)
            .join(Bot, Bot.id == Position.bot_id)
            .where(Position.user_id == user_id)
        )
    ).all()
    now_ms = int(time.time() * 1000)
    made: list[tuple[int, bool]] = []
    for position, bot in rows:
        ref = BotRef(bot.id, bot.user_id, bot.name, PLAN_PRIORITY.get(user.plan, 0))
        price = prices.get((bot.exchange, position.symbol))
        cid = client_order_id(bot.id, position.symbol, now_ms, "panic", position.entries)
        order = Order(
            bot_id=bot.id, user_id=user_id, client_order_id=cid,
            mode=bot.mode, symbol=position.symbol, side=OrderSide.SELL, type=OrderType.MARKET,
            amount=position.amount, price=price, reason="panic",
        )  # fmt: skip
        session.add(order)
        await session.flush()
        live = bot.mode == BotMode.LIVE
        made.append((order.id, live))
        if live:
            continue
        gateway = PaperGateway(session, user_id, {position.symbol: price} if price else {})
        request = OrderRequest.of(order, reference_price=price)
        try:
            async with session.begin_nested():
                report = await gateway.place_order(request)
        except OrderRejected as exc:
            await record_rejection(session, order, ref, exc.reason, exc.detail)
            continue
        await record_report(session, order, report, ref)
    return made
