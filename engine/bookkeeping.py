"""Turning what the exchange reported into orders, fills, positions, trades and notifications.

Shared by paper and live: the same report produces the same rows. Applying a
report twice changes nothing (only the newly filled part is booked), so a
retried placement or a reconciliation after a crash is safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import (
    Bot,
    BotStatus,
    Fill,
    Order,
    OrderSide,
    OrderStatus,
    Position,
    Trade,
)
from db.outbox import add_notification
from db.types import utcnow
from engine.exchanges.gateway import OrderReport
from engine.exchanges.paper import split_symbol

DUST = Decimal("0.00000001")
# What is left after a sell worth less than this (in the quote currency) is dust the
# exchange will not let us sell (below its minimum order): the position is closed and
# the dust stays in the account, as exchanges' own "convert dust" features assume.
DUST_VALUE = Decimal(1)


@dataclass(frozen=True)
class BotRef:
    """The few facts about a bot that bookkeeping and notifications need."""

    id: int
    user_id: int
    name: str
    priority: int = 0


def _quote_fee(report: OrderReport, symbol: str, price: Decimal) -> Decimal:
    base, _ = split_symbol(symbol)
    if report.fee_currency == base:
        return report.fee * price
    return report.fee


async def record_report(
    session: AsyncSession, order: Order, report: OrderReport, bot: BotRef
) -> None:
    """Book ``report`` onto ``order``: only the part filled since the last report moves money."""
    newly_filled = report.filled - (order.filled or Decimal(0))
    fee_delta = report.fee - (order.fee or Decimal(0))
    order.exchange_order_id = report.exchange_order_id
    order.status = report.status
    order.filled = report.filled
    order.average_price = report.average_price
    order.fee = report.fee
    order.fee_currency = report.fee_currency
    if newly_filled <= 0 or report.average_price is None:
        return
    price = report.average_price
    session.add(
        Fill(
            order_id=order.id,
            exchange_fill_id=f"{report.exchange_order_id}:{report.filled}",
            amount=newly_filled,
            price=price,
            fee=fee_delta,
            fee_currency=report.fee_currency,
        )
    )
    delta_report = OrderReport(
        client_order_id=report.client_order_id,
        exchange_order_id=report.exchange_order_id,
        status=report.status,
        amount=newly_filled,
        filled=newly_filled,
        average_price=price,
        fee=fee_delta,
        fee_currency=report.fee_currency,
    )
    fee_quote = _quote_fee(delta_report, order.symbol, price)
    base, _ = split_symbol(order.symbol)
    base_fee = fee_delta if report.fee_currency == base else Decimal(0)
    position = await session.scalar(
        select(Position)
        .where(Position.bot_id == order.bot_id, Position.symbol == order.symbol)
        .with_for_update()
    )
    if order.side == OrderSide.BUY:
        await _book_buy(session, order, bot, position, newly_filled - base_fee, price, fee_quote)
    else:
        await _book_sell(session, order, bot, position, newly_filled, price, fee_quote)


async def _book_buy(
    session: AsyncSession,
    order: Order,
    bot: BotRef,
    position: Position | None,
    amount: Decimal,
    price: Decimal,
    fee_quote: Decimal,
) -> None:
    cost = amount * price + fee_quote
    if position is None:
        position = Position(
            bot_id=order.bot_id,
            user_id=order.user_id,
            symbol=order.symbol,
            amount=amount,
            cost=cost,
            average_entry=cost / amount,
            entries=1,
        )
        session.add(position)
    else:
        position.amount += amount
        position.cost += cost
        position.average_entry = position.cost / position.amount
        position.entries += 1
    await _notify_fill(
        session,
        order,
        bot,
        "trade_opened",
        amount,
        price,
        value=str((amount * price).quantize(Decimal("0.01"))),
    )


async def _book_sell(
    session: AsyncSession,
    order: Order,
    bot: BotRef,
    position: Position | None,
    amount: Decimal,
    price: Decimal,
    fee_quote: Decimal,
) -> None:
    if position is None or position.amount <= 0:
        return  # selling what the bot never bought (manual holdings): nothing to book
    sold = min(amount, position.amount)
    cost_share = position.cost * sold / position.amount
    proceeds = sold * price - fee_quote
    pnl = proceeds - cost_share
    pnl_pct = (pnl / cost_share * 100) if cost_share else Decimal(0)
    opened_at: datetime = position.opened_at
    entry = position.average_entry
    position.amount -= sold
    position.cost -= cost_share
    closed = position.amount <= DUST or position.amount * price < DUST_VALUE

    if closed:
        await session.delete(position)
    session.add(
        Trade(
            bot_id=order.bot_id,
            user_id=order.user_id,
            symbol=order.symbol,
            mode=order.mode,
            amount=sold,
            entry_price=entry,
            exit_price=price,
            pnl=pnl,
            pnl_pct=pnl_pct,
            fees=fee_quote,
            exit_reason=order.reason,
            opened_at=opened_at,
            closed_at=utcnow(),
        )
    )
    await _notify_fill(
        session,
        order,
        bot,
        "trade_closed",
        sold,
        price,
        entry_price=str(entry),
        pnl=str(pnl.quantize(Decimal("0.01"))),
        pnl_pct=str(pnl_pct.quantize(Decimal("0.01"))),
        closed=closed,
    )


async def _notify_fill(
    session: AsyncSession,
    order: Order,
    bot: BotRef,
    kind: str,
    amount: Decimal,
    price: Decimal,
    **extra: object,
) -> None:
    """The trade message of one fill (its dedupe key makes a re-booked fill say nothing)."""
    await add_notification(
        session,
        user_id=order.user_id,
        kind=kind,
        priority=bot.priority,
        dedupe_key=f"fill:{order.client_order_id}:{order.filled}",
        payload={
            "bot_id": bot.id,
            "bot": bot.name,
            "mode": str(order.mode),
            "symbol": order.symbol,
            "side": str(order.side),
            "reason": order.reason,
            "amount": str(amount),
            "price": str(price),
            **extra,
        },
    )


async def record_rejection(
    session: AsyncSession, order: Order, bot: BotRef, reason: str, detail: str = ""
) -> None:
    """The exchange refused the order: the bot carries on, the user is told why."""
    order.status = OrderStatus.REJECTED
    order.error = (f"{reason}: {detail}" if detail else reason)[:255]
    await add_notification(
        session,
        user_id=order.user_id,
        kind="order_rejected",
        priority=bot.priority,
        dedupe_key=f"rejected:{order.client_order_id}",
        payload={
            "bot_id": bot.id,
            "bot": bot.name,
            "symbol": order.symbol,
            "side": str(order.side),
            "reason": reason,
        },
    )


async def pause_bot(session: AsyncSession, bot: BotRef, reason: str, **details: str) -> None:
    """Pause a bot and tell its owner why (auth refused, daily loss, no market data...)."""
    row = await session.get(Bot, bot.id, with_for_update=True)
    if row is None or row.status != BotStatus.RUNNING:
        return
    row.status = BotStatus.PAUSED
    row.pause_reason = reason
    await add_notification(
        session,
        user_id=bot.user_id,
        kind="bot_paused",
        priority=bot.priority,
        dedupe_key=f"paused:{bot.id}:{reason}:{utcnow().isoformat(timespec='minutes')}",
        payload={"bot_id": bot.id, "bot": bot.name, "reason": reason, **details},
    )
