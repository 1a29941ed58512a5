"""The live gateway: one user's orders on a real exchange through ccxt."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any

from db.models import OrderStatus, OrderType
from engine.exchanges.ccxt_errors import translate
from engine.exchanges.errors import (
    ExchangeRateLimited,
    ExchangeUnavailable,
    OrderOutcomeUnknown,
    OrderRejected,
)
from engine.exchanges.gateway import FillReport, OrderReport, OrderRequest

log = logging.getLogger(__name__)

_STATUS = {
    "open": OrderStatus.OPEN,
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "expired": OrderStatus.CANCELED,
    "rejected": OrderStatus.REJECTED,
}


def _dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


def parse_order(order: dict[str, Any], client_order_id: str) -> OrderReport:
    """A ccxt unified order as an OrderReport; raises OrderOutcomeUnknown if it is unusable.

    ccxt does not raise on a malformed answer: the fields simply come back None.
    """
    exchange_id = order.get("id")
    status = _STATUS.get(str(order.get("status")))
    amount = _dec(order.get("amount"))
    if not exchange_id or status is None or amount is None:
        raise OrderOutcomeUnknown("the exchange's answer about the order was incomplete")
    filled = _dec(order.get("filled")) or Decimal(0)
    fee = order.get("fee") or {}
    fills = tuple(
        FillReport(
            fill_id=str(t.get("id") or f"{exchange_id}-{i}"),
            amount=_dec(t.get("amount")) or Decimal(0),
            price=_dec(t.get("price")) or Decimal(0),
            fee=_dec((t.get("fee") or {}).get("cost")) or Decimal(0),
            fee_currency=(t.get("fee") or {}).get("currency"),
        )
        for i, t in enumerate(order.get("trades") or [])
    )
    return OrderReport(
        client_order_id=client_order_id,
        exchange_order_id=str(exchange_id),
        status=status,
        amount=amount,
        filled=filled,
        average_price=_dec(order.get("average")) or (_dec(order.get("price")) if filled else None),
        fee=_dec(fee.get("cost")) or Decimal(0),
        fee_currency=fee.get("currency"),
        fills=fills,
    )


class CcxtGateway:
    """ExchangeGateway over a private ccxt client (see ClientPool.private)."""

    def __init__(self, client: Any, *, retries: int = 3, backoff_seconds: float = 0.5) -> None:
        self.client = client
        self.retries = retries
        self.backoff_seconds = backoff_seconds

    @property
    def exchange_id(self) -> str:
        return str(self.client.id)

    async def _read(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """A read-only call, retried with exponential backoff while the exchange is unavailable."""
        for attempt in range(self.retries + 1):
            try:
                with translate(client=self.client):
                    return await call(*args, **kwargs)
            except ExchangeRateLimited:
                raise  # retrying now would get the IP banned
            except ExchangeUnavailable:
                if attempt == self.retries:
                    raise
                await asyncio.sleep(self.backoff_seconds * 2**attempt)
        raise AssertionError("unreachable")

    def _params(self, client_order_id: str) -> dict[str, Any]:
        if self.exchange_id == "bybit":
            return {"orderLinkId": client_order_id}
        return {"clientOrderId": client_order_id}

    def rounded(self, request: OrderRequest) -> tuple[Decimal, Decimal | None]:
        """Amount and price rounded with ccxt's precision helpers, minimums checked."""
        symbol = request.symbol
        market = self.client.market(symbol)
        try:
            amount = Decimal(self.client.amount_to_precision(symbol, float(request.amount)))
            price = (
                Decimal(self.client.price_to_precision(symbol, float(request.price)))
                if request.price is not None
                else None
            )
        except Exception as exc:  # ccxt raises InvalidOrder for amounts below precision
            raise OrderRejected("below_minimum", str(exc).splitlines()[0][:120]) from None
        limits = market.get("limits") or {}
        min_amount = _dec((limits.get("amount") or {}).get("min"))
        min_cost = _dec((limits.get("cost") or {}).get("min"))
        reference = price or request.reference_price
        if amount <= 0 or (min_amount is not None and amount < min_amount):
            raise OrderRejected("below_minimum", f"amount {amount} below {min_amount}")
        if min_cost is not None and reference is not None and amount * reference < min_cost:
            raise OrderRejected("below_minimum", f"value below {min_cost}")
        return amount, price

    async def place_order(self, request: OrderRequest) -> OrderReport:
        amount, price = self.rounded(request)
        with translate(placing_order=True, client=self.client):
            order = await self.client.create_order(
                request.symbol,
                str(request.type),
                str(request.side),
                float(amount),
                float(price) if price is not None and request.type == OrderType.LIMIT else None,
                self._params(request.client_order_id),
            )
        report = parse_order(order, request.client_order_id)
        if report.status == OrderStatus.OPEN and request.type == OrderType.MARKET:
            # Binance answers market orders FILLED at once; Bybit acknowledges first.
            found = await self.find_order(request.symbol, request.client_order_id)
            return found or report
        return report

    async def find_order(self, symbol: str, client_order_id: str) -> OrderReport | None:
        try:
            with translate(client=self.client):
                if self.exchange_id == "bybit":
                    # ccxt's bybit fetch_order needs the exchange's id; the realtime
                    # endpoint filtered by orderLinkId returns the order in any status.
                    found = await self.client.fetch_open_orders(
                        symbol, None, None, {"orderLinkId": client_order_id}
                    )
                    order = found[0] if found else None
                else:
                    order = await self.client.fetch_order(
                        None, symbol, self._params(client_order_id)
                    )
        except OrderRejected:
            return None  # OrderNotFound is an InvalidOrder: the exchange never got it
        if not order or not order.get("id"):
            return None
        return parse_order(order, client_order_id)

    async def balances(self) -> dict[str, Decimal]:
        balance = await self._read(self.client.fetch_balance)
        totals = balance.get("total") or {}
        return {
            asset: amount
            for asset, value in totals.items()
            if (amount := _dec(value)) is not None and amount != 0
        }
