"""The paper exchange: fills simulated at the market price with fees and slippage.

Paper balances are per user (every bot of a user draws on the same simulated
account, as on a real exchange) and start at 10,000 USDT. Fills happen inside
the tick's own transaction, so an order, its fill, the position and the
notification are written together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_DOWN, Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Order, OrderSide, OrderStatus, PaperBalance
from engine.exchanges.errors import OrderRejected
from engine.exchanges.gateway import FillReport, OrderReport, OrderRequest

STARTING_BALANCE = {"USDT": Decimal(10_000)}
FEE_RATE = Decimal("0.001")  # 0.1 %, a typical spot taker fee
SLIPPAGE = Decimal("0.0005")  # 0.05 % against the taker
AMOUNT_STEP = Decimal("0.00000001")
MIN_ORDER_VALUE = Decimal(1)
IN_CHUNK = 1_000  # ids per IN (...) list


def split_symbol(symbol: str) -> tuple[str, str]:
    base, _, quote = symbol.partition("/")
    return base, quote.split(":")[0]


class PaperAccounts:
    """The paper balances of some users, locked and loaded together for one transaction.

    A tick loads the accounts of every user it places paper orders for in two
    statements; a single order loads its user's. Users who never traded on paper get
    the starting balance here. Rows live in this object (not re-read per order), so
    a tick's fills are flushed together at its end.
    """

    def __init__(self, session: AsyncSession, rows: dict[tuple[int, str], PaperBalance]) -> None:
        self.session = session
        self._rows = rows

    @classmethod
    async def load(cls, session: AsyncSession, user_ids: Iterable[int]) -> PaperAccounts:
        users = sorted(set(user_ids))
        rows: dict[tuple[int, str], PaperBalance] = {}
        for start in range(0, len(users), IN_CHUNK):
            chunk = users[start : start + IN_CHUNK]
            found = await session.scalars(
                select(PaperBalance)
                .where(PaperBalance.user_id.in_(chunk))
                .order_by(PaperBalance.user_id, PaperBalance.asset)  # one lock order
                .with_for_update()
            )
            rows.update(((row.user_id, row.asset), row) for row in found)
        opened = {user for user, _ in rows}
        new = [
            PaperBalance(user_id=user, asset=asset, amount=amount)
            for user in users
            if user not in opened
            for asset, amount in STARTING_BALANCE.items()
        ]
        if new:
            session.add_all(new)
            await session.flush()
            rows.update(((row.user_id, row.asset), row) for row in new)
        return cls(session, rows)

    def amount(self, user_id: int, asset: str) -> Decimal:
        row = self._rows.get((user_id, asset))
        return row.amount if row is not None else Decimal(0)

    def add(self, user_id: int, asset: str, delta: Decimal) -> None:
        row = self._rows.get((user_id, asset))
        if row is None:
            row = PaperBalance(user_id=user_id, asset=asset, amount=Decimal(0))
            self.session.add(row)
            self._rows[(user_id, asset)] = row
        row.amount += delta

    def of(self, user_id: int) -> dict[str, Decimal]:
        """A user's non-zero balances."""
        return {
            asset: row.amount
            for (user, asset), row in sorted(self._rows.items())
            if user == user_id and row.amount != 0
        }


class PaperGateway:
    """ExchangeGateway for one user's paper account, bound to the tick's session and prices."""

    def __init__(
        self,
        session: AsyncSession,
        user_id: int,
        prices: Mapping[str, Decimal],
        accounts: PaperAccounts | None = None,
    ) -> None:
        self.session = session
        self.user_id = user_id
        self.prices = prices
        self._accounts = accounts

    async def accounts(self) -> PaperAccounts:
        if self._accounts is None:
            self._accounts = await PaperAccounts.load(self.session, [self.user_id])
        return self._accounts

    async def place_order(self, request: OrderRequest) -> OrderReport:
        """Fill at the market price with slippage and fee, or raise before changing anything."""
        market_price = self.prices.get(request.symbol)
        if market_price is None or market_price <= 0:
            raise OrderRejected("invalid_order", f"no price for {request.symbol}")
        accounts = await self.accounts()
        base, quote = split_symbol(request.symbol)
        amount = request.amount.quantize(AMOUNT_STEP, rounding=ROUND_DOWN)
        buying = request.side == OrderSide.BUY
        price = market_price * (1 + SLIPPAGE if buying else 1 - SLIPPAGE)
        value = amount * price
        if amount <= 0 or value < MIN_ORDER_VALUE:
            raise OrderRejected("below_minimum", f"order value below {MIN_ORDER_VALUE} {quote}")
        fee = value * FEE_RATE
        if buying:
            available = accounts.amount(self.user_id, quote)
            if available < value + fee:
                raise OrderRejected("insufficient_funds", f"{available} {quote} available")
            accounts.add(self.user_id, quote, -(value + fee))
            accounts.add(self.user_id, base, amount)
        else:
            available = accounts.amount(self.user_id, base)
            if available < amount:
                raise OrderRejected("insufficient_funds", f"{available} {base} available")
            accounts.add(self.user_id, base, -amount)
            accounts.add(self.user_id, quote, value - fee)
        exchange_id = f"paper-{request.client_order_id}"
        return OrderReport(
            client_order_id=request.client_order_id,
            exchange_order_id=exchange_id,
            status=OrderStatus.FILLED,
            amount=amount,
            filled=amount,
            average_price=price,
            fee=fee,
            fee_currency=quote,
            fills=(FillReport(exchange_id, amount, price, fee, quote),),
        )

    async def find_order(self, symbol: str, client_order_id: str) -> OrderReport | None:
        order = await self.session.scalar(
            select(Order).where(Order.client_order_id == client_order_id)
        )
        if order is None or order.exchange_order_id is None:
            return None
        return OrderReport(
            client_order_id=client_order_id,
            exchange_order_id=order.exchange_order_id,
            status=order.status,
            amount=order.amount,
            filled=order.filled,
            average_price=order.average_price,
            fee=order.fee,
            fee_currency=order.fee_currency,
        )

    async def balances(self) -> dict[str, Decimal]:
        return (await self.accounts()).of(self.user_id)
