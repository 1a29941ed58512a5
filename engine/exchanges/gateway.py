"""The one interface the engine trades through; implemented by ccxt (live) and paper."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from db.models import Order, OrderSide, OrderStatus, OrderType


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: OrderSide
    type: OrderType
    amount: Decimal  # base asset
    client_order_id: str
    price: Decimal | None = None  # limit orders
    # The last price the decision saw: checks the minimum order value of market orders.
    reference_price: Decimal | None = None

    @classmethod
    def of(cls, order: Order, reference_price: Decimal | None) -> OrderRequest:
        """The request that places a recorded order (a limit order at its own price)."""
        return cls(
            order.symbol, order.side, order.type, order.amount, order.client_order_id,
            price=order.price if order.type == OrderType.LIMIT else None,
            reference_price=reference_price,
        )  # fmt: skip


@dataclass(frozen=True)
class FillReport:
    fill_id: str
    amount: Decimal
    price: Decimal
    fee: Decimal = Decimal(0)
    fee_currency: str | None = None


@dataclass(frozen=True)
class OrderReport:
    """What the exchange says about one of our orders."""

    client_order_id: str
    exchange_order_id: str
    status: OrderStatus
    amount: Decimal
    filled: Decimal
    average_price: Decimal | None
    fee: Decimal = Decimal(0)
    fee_currency: str | None = None
    fills: tuple[FillReport, ...] = field(default_factory=tuple)


class ExchangeGateway(Protocol):
    """Places and looks up orders for one user on one exchange."""

    async def place_order(self, request: OrderRequest) -> OrderReport:
        """Place an order; raises OrderRejected, ExchangeAuthError, ExchangeUnavailable
        or OrderOutcomeUnknown."""
        ...

    async def find_order(self, symbol: str, client_order_id: str) -> OrderReport | None:
        """The order with this client id, or None if the exchange never got it."""
        ...

    async def balances(self) -> dict[str, Decimal]:
        """Free + used per asset, non-zero only."""
        ...
