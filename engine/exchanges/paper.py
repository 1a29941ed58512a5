"""The paper exchange: fills simulated at the market price with fees and slippage.

Paper balances are per user (every bot of a user draws on the same simulated
account, as on a real exchange) and start at 10,000 USDT. Fills happen inside
the tick's own transaction, so an order, its fill, the position and the
notification are written together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_DOWN, Decimal

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Order, OrderSide, OrderStatus, PaperBalance
from db.session import upsert
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

    A tick loads the accounts of every user it places paper orders for in one
    statement (plus one for users who never traded on paper, who get the starting
    balance here). Amounts are plain Decimals changed in memory; `write` stores the
    changed ones in one UPDATE (executemany) and one INSERT, so a tick's fills cost
    the same few statements however many there are.
    """

    def __init__(self, amounts: dict[tuple[int, str], Decimal]) -> None:
        self._amounts = amounts
        self._stored = set(amounts)  # rows that exist in the database
        self._changed: set[tuple[int, str]] = set()

    @classmethod
    async def load(cls, session: AsyncSession, user_ids: Iterable[int]) -> PaperAccounts:
        users = sorted(set(user_ids))
        amounts = await cls._locked(session, users)
        opened = {user for user, _ in amounts}
        fresh = [user for user in users if user not in opened]
        if fresh:
            # A concurrent first trade of the same user waits here for the other
            # transaction, then inserts nothing; the second read locks either row.
            await session.execute(
                upsert(session, PaperBalance).on_conflict_do_nothing(
                    index_elements=["user_id", "asset"]
                ),
                [
                    {"user_id": user, "asset": asset, "amount": amount}
                    for user in fresh
                    for asset, amount in STARTING_BALANCE.items()
                ],
            )
            amounts.update(await cls._locked(session, fresh))
        return cls(amounts)

    @staticmethod
    async def _locked(session: AsyncSession, users: list[int]) -> dict[tuple[int, str], Decimal]:
        amounts: dict[tuple[int, str], Decimal] = {}
        for start in range(0, len(users), IN_CHUNK):
            rows = await session.execute(
                select(PaperBalance.user_id, PaperBalance.asset, PaperBalance.amount)
                .where(PaperBalance.user_id.in_(users[start : start + IN_CHUNK]))
                .order_by(PaperBalance.user_id, PaperBalance.asset)  # one lock order
                .with_for_update()
            )
            amounts.update(((user, asset), amount) for user, asset, amount in rows)
        return amounts

    def amount(self, user_id: int, asset: str) -> Decimal:
        return self._amounts.get((user_id, asset), Decimal(0))

    def add(self, user_id: int, asset: str, delta: Decimal) -> None:
        key = (user_id, asset)
        self._amounts[key] = self._amounts.get(key, Decimal(0)) + delta
        self._changed.add(key)

    def of(self, user_id: int) -> dict[str, Decimal]:
        """A user's non-zero balances."""
        return {
            asset: amount
            for (user, asset), amount in sorted(self._amounts.items())
            if user == user_id and amount != 0
        }

    async def write(self, session: AsyncSession) -> None:
        """Store the balances changed since the last write."""
        changed, self._changed = sorted(self._changed), set()
        rows = {
            (user, asset): {"user_id": user, "asset": asset, "amount": self._amounts[(user, asset)]}
            for user, asset in changed
        }
        updates = [row for key, row in rows.items() if key in self._stored]
        inserts = [row for key, row in rows.items() if key not in self._stored]
        if updates:  # ORM bulk UPDATE by primary key: one executemany
            await session.execute(update(PaperBalance), updates)
        if inserts:
            await session.execute(insert(PaperBalance), inserts)
            self._stored.update(rows.keys())


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
        # Accounts shared by a tick are written by the tick, once; our own, per order.
        self._writes_accounts = accounts is None

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
        if self._writes_accounts:
            await accounts.write(self.session)
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
