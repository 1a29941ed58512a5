"""Turning what the exchange reported into orders, fills, positions, trades and notifications.

Shared by paper and live: the same report produces the same rows. Applying a
report twice changes nothing (only the newly filled part is booked), so a
retried placement or a reconciliation after a crash is safe.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Table, bindparam, delete, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import (
    Bot,
    BotResult,
    BotStatus,
    Fill,
    Order,
    OrderSide,
    OrderStatus,
    Position,
    Trade,
)
from db.notifications import (
    BotPausedNotice,
    OrderRejectedNotice,
    TradeClosedNotice,
    TradeOpenedNotice,
)
from db.outbox import (
    NewNotification,
    Recipient,
    add_notification,
    add_notifications,
    load_recipients,
)
from db.session import upsert
from db.types import utcnow
from engine.exchanges.gateway import OrderReport
from engine.exchanges.paper import split_symbol
from engine.risk import target_number

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


IN_CHUNK = 500  # (bot, symbol) pairs per IN (...) list


@dataclass
class OpenPosition:
    """A bot's holding in one symbol as the ledger changes it (a `Position` row's values)."""

    bot_id: int
    user_id: int
    symbol: str
    amount: Decimal
    average_entry: Decimal
    cost: Decimal
    entries: int
    opened_at: datetime
    id: int | None = None  # None until stored
    targets_hit: int = 0  # take-profit targets sold (engine.risk.ExitState)


_POSITION_COLUMNS = (
    Position.id, Position.bot_id, Position.user_id, Position.symbol, Position.amount,
    Position.average_entry, Position.cost, Position.entries, Position.opened_at,
    Position.targets_hit,
)  # fmt: skip


@dataclass
class Ledger:
    """Many fills booked in one transaction: what they need read at once, rows written at once.

    A tick books hundreds of fills: their positions (locked) and their owners'
    notification settings are loaded here in a few statements, the bookkeeping
    changes plain values in memory, and `write` stores the fills, trades,
    positions and trade messages with one statement per table. A single fill
    gets a ledger of its own.
    """

    positions: dict[tuple[int, str], OpenPosition | None]
    recipients: dict[int, Recipient]
    notifications: list[NewNotification] = field(default_factory=list)
    fills: list[tuple[Order, dict[str, object]]] = field(default_factory=list)
    trades: list[dict[str, object]] = field(default_factory=list)
    changed: set[tuple[int, str]] = field(default_factory=set)
    deleted: set[int] = field(default_factory=set)  # ids of stored positions now closed

    @classmethod
    async def load(cls, session: AsyncSession, orders: Iterable[Order]) -> Ledger:
        orders = list(orders)
        return await cls.load_for(
            session,
            {(order.bot_id, order.symbol) for order in orders},
            {order.user_id for order in orders},
        )

    @classmethod
    async def load_for(
        cls, session: AsyncSession, keys: Iterable[tuple[int, str]], user_ids: Iterable[int]
    ) -> Ledger:
        """Lock and read the positions of these (bot, symbol) pairs and these users' settings."""
        wanted = sorted(set(keys))
        positions: dict[tuple[int, str], OpenPosition | None] = dict.fromkeys(wanted)
        for start in range(0, len(wanted), IN_CHUNK):
            chunk = wanted[start : start + IN_CHUNK]
            found = await session.execute(
                select(*_POSITION_COLUMNS)
                .where(tuple_(Position.bot_id, Position.symbol).in_(chunk))
                .order_by(Position.id)  # one lock order
                .with_for_update()
            )
            for row in found:
                positions[(row.bot_id, row.symbol)] = OpenPosition(
                    row.bot_id, row.user_id, row.symbol, row.amount, row.average_entry,
                    row.cost, row.entries, row.opened_at, row.id, row.targets_hit,
                )  # fmt: skip
        recipients = await load_recipients(session, user_ids)
        return cls(positions, recipients)

    async def position(self, session: AsyncSession, order: Order) -> OpenPosition | None:
        key = (order.bot_id, order.symbol)
        if key not in self.positions:  # an order the ledger was not loaded for
            other = await Ledger.load(session, [order])
            self.positions.update(other.positions)
            self.recipients.update(other.recipients)
        return self.positions[key]

    def open(self, position: OpenPosition) -> None:
        key = (position.bot_id, position.symbol)
        self.positions[key] = position
        self.changed.add(key)

    def touch(self, position: OpenPosition) -> None:
        self.changed.add((position.bot_id, position.symbol))

    def close(self, position: OpenPosition) -> None:
        key = (position.bot_id, position.symbol)
        if position.id is not None:
            self.deleted.add(position.id)
        self.positions[key] = None
        self.changed.discard(key)

    async def write(self, session: AsyncSession) -> None:
        """Store what was booked since the last write: one statement per table at most.

        Closed positions are deleted before new ones are inserted, so a bot that sold
        and bought the same symbol in one transaction keeps one row.
        """
        now = utcnow()
        if self.deleted:
            ids = sorted(self.deleted)
            for start in range(0, len(ids), IN_CHUNK):
                await session.execute(
                    delete(Position)
                    .where(Position.id.in_(ids[start : start + IN_CHUNK]))
                    .execution_options(synchronize_session=False)
                )
            self.deleted.clear()
        changed = [p for key in sorted(self.changed) if (p := self.positions[key]) is not None]
        self.changed.clear()
        values = [
            {
                "bot_id": p.bot_id, "user_id": p.user_id, "symbol": p.symbol,
                "amount": p.amount, "average_entry": p.average_entry, "cost": p.cost,
                "entries": p.entries, "opened_at": p.opened_at, "targets_hit": p.targets_hit,
                "updated_at": now,
            }
            for p in changed
        ]  # fmt: skip
        updates = [
            {"id": p.id, **row} for p, row in zip(changed, values, strict=True) if p.id is not None
        ]
        if updates:  # ORM bulk UPDATE by primary key: one executemany
            await session.execute(update(Position), updates)
        new = [(p, row) for p, row in zip(changed, values, strict=True) if p.id is None]
        if new:
            stored = await session.scalars(
                insert(Position).returning(Position.id, sort_by_parameter_order=True),
                [row for _, row in new],
            )
            for (position, _), position_id in zip(new, stored.all(), strict=True):
                position.id = position_id
        if self.fills:
            fills, self.fills = self.fills, []
            await session.execute(
                insert(Fill), [{"order_id": order.id, **row} for order, row in fills]
            )
        if self.trades:
            trades, self.trades = self.trades, []
            await session.execute(insert(Trade), trades)
            await _add_results(session, trades)
        pending, self.notifications = self.notifications, []
        await add_notifications(session, pending, self.recipients)


@dataclass(frozen=True, order=True)
class PositionKey:
    """One position, not just its row: SQLite may give a new position a deleted one's id."""

    id: int
    opened_at: datetime


async def record_highest_prices(session: AsyncSession, highs: dict[PositionKey, Decimal]) -> None:
    """Store each position's new highest price since entry: one statement for a tick's worth.

    A position closed meanwhile is simply not found, and one opened since starts afresh
    (``opened_at`` tells it from an old one that had its id).
    """
    if not highs:
        return
    table = Position.__table__
    assert isinstance(table, Table)
    now = utcnow()
    await session.execute(
        update(table)
        .where(table.c.id == bindparam("position_id"), table.c.opened_at == bindparam("opened"))
        .values(highest_price=bindparam("highest"), updated_at=bindparam("now")),
        [
            {"position_id": key.id, "opened": key.opened_at, "highest": price, "now": now}
            for key, price in sorted(highs.items())  # one lock order, as Ledger.load_for's
        ],
    )


async def _add_results(session: AsyncSession, trades: list[dict[str, object]]) -> None:
    """Add these trades' PnL to their bots' realised totals (a bot's budget grows and shrinks).

    Summed here in Decimal (SQLite keeps Money as text, and SQL arithmetic on it
    would go through floats). The rows are locked after the positions the trades
    came from, the one order every writer of them follows.
    """
    deltas: dict[int, Decimal] = {}
    for trade in trades:
        bot_id = trade["bot_id"]
        assert isinstance(bot_id, int) and isinstance(trade["pnl"], Decimal)
        deltas[bot_id] = deltas.get(bot_id, Decimal(0)) + trade["pnl"]
    ids = sorted(deltas)
    now = utcnow()
    await session.execute(
        upsert(session, BotResult).on_conflict_do_nothing(index_elements=["bot_id"]),
        [{"bot_id": bot_id, "realized_pnl": Decimal(0), "updated_at": now} for bot_id in ids],
    )
    totals: dict[int, Decimal] = {}
    for start in range(0, len(ids), IN_CHUNK):
        rows = await session.execute(
            select(BotResult.bot_id, BotResult.realized_pnl)
            .where(BotResult.bot_id.in_(ids[start : start + IN_CHUNK]))
            .order_by(BotResult.bot_id)
            .with_for_update()
        )
        totals.update((bot_id, pnl) for bot_id, pnl in rows)
    await session.execute(
        update(BotResult),
        [
            {"bot_id": bot_id, "realized_pnl": totals[bot_id] + deltas[bot_id], "updated_at": now}
            for bot_id in ids
        ],
    )


def _quote_fee(report: OrderReport, symbol: str, price: Decimal) -> Decimal:
    base, _ = split_symbol(symbol)
    if report.fee_currency == base:
        return report.fee * price
    return report.fee


async def record_report(
    session: AsyncSession,
    order: Order,
    report: OrderReport,
    bot: BotRef,
    ledger: Ledger | None = None,
) -> None:
    """Book ``report`` onto ``order``: only the part filled since the last report moves money.

    ``ledger`` holds the positions and recipients of many orders booked together
    (`Ledger.load_for`), and their fills, trades, position changes and messages
    until `Ledger.write` (by then ``order`` must have its id: the tick inserts its
    orders, in their final state, before writing the ledger). Without one, this
    order's are read and written here.
    """
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
    own = ledger is None
    if ledger is None:
        ledger = await Ledger.load(session, [order])
    ledger.fills.append(
        (
            order,
            {
                "exchange_fill_id": f"{report.exchange_order_id}:{report.filled}",
                "amount": newly_filled,
                "price": price,
                "fee": fee_delta,
                "fee_currency": report.fee_currency,
                "filled_at": utcnow(),
            },
        )
    )
    position = await ledger.position(session, order)
    if order.side == OrderSide.BUY:
        _book_buy(ledger, order, bot, position, newly_filled - base_fee, price, fee_quote)
    else:
        _book_sell(ledger, order, bot, position, newly_filled, price, fee_quote)
    if own:
        if order.id is None:  # the order itself must exist before its fill
            await session.flush()
        await ledger.write(session)


def _book_buy(
    ledger: Ledger,
    order: Order,
    bot: BotRef,
    position: OpenPosition | None,
    amount: Decimal,
    price: Decimal,
    fee_quote: Decimal,
) -> None:
    cost = amount * price + fee_quote
    if position is None:
        ledger.open(
            OpenPosition(
                bot_id=order.bot_id,
                user_id=order.user_id,
                symbol=order.symbol,
                amount=amount,
                average_entry=cost / amount,
                cost=cost,
                entries=1,
                opened_at=utcnow(),
            )
        )
    else:
        position.amount += amount
        position.cost += cost
        position.average_entry = position.cost / position.amount
        position.entries += 1
        ledger.touch(position)
    _notify_fill(
        ledger,
        order,
        bot,
        TradeOpenedNotice(
            bot_id=bot.id,
            bot=bot.name,
            mode=order.mode,
            symbol=order.symbol,
            side=order.side,
            reason=order.reason,
            amount=amount,
            price=price,
            value=(amount * price).quantize(Decimal("0.01")),
        ),
    )


def _book_sell(
    ledger: Ledger,
    order: Order,
    bot: BotRef,
    position: OpenPosition | None,
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
        ledger.close(position)
    else:
        # A target's sale counts once booked (a refused order sells nothing); by its number,
        # so the several reports of one order, or a re-booked one, count it once.
        target = target_number(order.reason)
        if target is not None and target > position.targets_hit:
            position.targets_hit = target
        ledger.touch(position)
    ledger.trades.append(
        {
            "bot_id": order.bot_id,
            "user_id": order.user_id,
            "symbol": order.symbol,
            "mode": order.mode,
            "amount": sold,
            "entry_price": entry,
            "exit_price": price,
            "pnl": pnl,
            "pnl_pct": pnl_pct,
            "fees": fee_quote,
            "exit_reason": order.reason,
            "opened_at": opened_at,
            "closed_at": utcnow(),
        }
    )
    _notify_fill(
        ledger,
        order,
        bot,
        TradeClosedNotice(
            bot_id=bot.id,
            bot=bot.name,
            mode=order.mode,
            symbol=order.symbol,
            side=order.side,
            reason=order.reason,
            amount=sold,
            price=price,
            entry_price=entry,
            pnl=pnl.quantize(Decimal("0.01")),
            pnl_pct=pnl_pct.quantize(Decimal("0.01")),
            closed=closed,
        ),
    )


def _notify_fill(
    ledger: Ledger,
    order: Order,
    bot: BotRef,
    notice: TradeOpenedNotice | TradeClosedNotice,
) -> None:
    """The trade message of one fill (its dedupe key makes a re-booked fill say nothing)."""
    ledger.notifications.append(
        NewNotification(
            user_id=order.user_id,
            notice=notice,
            priority=bot.priority,
            dedupe_key=f"fill:{order.client_order_id}:{order.filled}",
        )
    )


# Refusals of the exchange's published rules (checked before sending): a bot whose
# orders break them would be refused at every signal, so its owner hears it once a day.
RULE_REFUSALS = frozenset({"below_minimum", "above_maximum"})


async def record_rejection(
    session: AsyncSession, order: Order, bot: BotRef, reason: str, detail: str = ""
) -> None:
    """The order was refused (by the exchange, or before sending): the bot carries on, told why."""
    order.status = OrderStatus.REJECTED
    order.error = (f"{reason}: {detail}" if detail else reason)[:255]
    limits = None
    dedupe_key = f"rejected:{order.client_order_id}"
    if reason in RULE_REFUSALS:
        limits = detail[:200]
        day = utcnow().date().isoformat()
        dedupe_key = f"rejected:{order.bot_id}:{order.symbol}:{reason}:{day}"
    await add_notification(
        session,
        user_id=order.user_id,
        notice=OrderRejectedNotice(
            bot_id=bot.id,
            bot=bot.name,
            symbol=order.symbol,
            side=order.side,
            reason=reason,
            limits=limits,
        ),
        priority=bot.priority,
        dedupe_key=dedupe_key,
    )


async def pause_bot(session: AsyncSession, bot: BotRef, reason: str) -> None:
    """Pause a bot and tell its owner why (auth refused, daily loss, no market data...)."""
    row = await session.get(Bot, bot.id, with_for_update=True)
    if row is None or row.status != BotStatus.RUNNING:
        return
    row.status = BotStatus.PAUSED
    row.pause_reason = reason
    await add_notification(
        session,
        user_id=bot.user_id,
        notice=BotPausedNotice(bot_id=bot.id, bot=bot.name, reason=reason),
        priority=bot.priority,
        dedupe_key=f"paused:{bot.id}:{reason}:{utcnow().isoformat(timespec='minutes')}",
    )
