"""The paper exchange: fills simulated at the market price with fees and slippage.

Paper balances are per user (every bot of a user draws on the same simulated
account, as on a real exchange) and start at 10,000 USDT. Fills happen inside
the tick's own transaction, so an order, its fill, the position and the
notification are written together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def split_symbol(symbol: str) -> tuple[str, str]:
    base, _, quote = symbol.partition("/")
    return base, quote.split(":")[0]


async def ensure_paper_account(session: AsyncSession, user_id: int) -> None:
    """Give a user the starting balance the first time they trade on paper."""
    has_any = await session.scalar(
        select(PaperBalance.asset).where(PaperBalance.user_id == user_id).limit(1)
    )
    if has_any is None:
        session.add_all(
            PaperBalance(user_id=user_id, asset=asset, amount=amount)
            for asset, amount in STARTING_BALANCE.items()
        )
        await session.flush()


class PaperGateway:
    """ExchangeGateway for one user's paper account, bound to the tick's session and prices."""

    def __init__(self, session: AsyncSession, user_id: int, prices: Mapping[str, Decimal]) -> None:
        self.session = session
        self.user_id = user_id
        self.prices = prices

    async def _balance_row(self, asset: str) -> PaperBalance:
        row = await self.session.get(PaperBalance, (self.user_id, asset), with_for_update=True)
        if row is None:
            row = PaperBalance(user_id=self.user_id, asset=asset, amount=Decimal(0))
            self.session.add(row)
        return row

    async def place_order(self, request: OrderRequest) -> OrderReport:
        market_price = self.prices.get(request.symbol)
        if market_price is None or market_price <= 0:
            raise OrderRejected("invalid_order", f"no price for {request.symbol}")
        await ensure_paper_account(self.session, self.user_id)
        base, quote = split_symbol(request.symbol)
        amount = request.amount.quantize(AMOUNT_STEP, rounding=ROUND_DOWN)
        buying = request.side == OrderSide.BUY
        price = market_price * (1 + SLIPPAGE if buying else 1 - SLIPPAGE)
        value = amount * price
        if amount <= 0 or value < MIN_ORDER_VALUE:
            raise OrderRejected("below_minimum", f"order value below {MIN_ORDER_VALUE} {quote}")
        fee = value * FEE_RATE
        quote_row = await self._balance_row(quote)
        base_row = await self._balance_row(base)
        if buying:
            if quote_row.amount < value + fee:
                raise OrderRejected("insufficient_funds", f"{quote_row.amount} {quote} available")
            quote_row.amount -= value + fee
            base_row.amount += amount
        else:
            if base_row.amount < amount:
                raise OrderRejected("insufficient_funds", f"{base_row.amount} {base} available")
            base_row.amount -= amount
            quote_row.amount += value - fee
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
        await ensure_paper_account(self.session, self.user_id)
        rows = await self.session.scalars(
            select(PaperBalance).where(PaperBalance.user_id == self.user_id)
        )
        return {row.asset: row.amount for row in rows if row.amount != 0}
