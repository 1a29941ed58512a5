"""The live gateway: one user's orders on a real exchange through ccxt."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
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


def _describe_limits(
    min_amount: Decimal | None,
    max_amount: Decimal | None,
    min_cost: Decimal | None,
    max_cost: Decimal | None,
    quote: str | None,
) -> str:
    """The market's limits as its owner reads them: ``amount 0.00001..9000, value 5..∞ USDT``."""
    parts: list[str] = []
    if min_amount is not None or max_amount is not None:
        low = _plain(min_amount) if min_amount is not None else "0"
        high = _plain(max_amount) if max_amount is not None else "∞"
        parts.append(f"amount {low}..{high}")
    if min_cost is not None or max_cost is not None:
        low = _plain(min_cost) if min_cost is not None else "0"
        high = _plain(max_cost) if max_cost is not None else "∞"
        parts.append(f"value {low}..{high} {quote or ''}".rstrip())
    return ", ".join(parts) or "no limits published"


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


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
        """Amount and price rounded as the exchange checks them, its limits checked before sending.

        ccxt's precision helpers truncate the amount to the market's step (a sell never
        grows past what is held) and round the price to its tick. The amount and value
        limits come from ``load_markets`` (Binance's LOT_SIZE / MARKET_LOT_SIZE and
        NOTIONAL filters, Bybit's lotSizeFilter); an order outside them never reaches
        the exchange, and the refusal names the limits.
        """
        symbol = request.symbol
        try:
            market = self.client.market(symbol)
        except Exception:  # ccxt's BadSymbol: the exchange does not list it
            raise OrderRejected("invalid_order", f"{symbol} is not listed") from None
        limits = market.get("limits") or {}
        min_amount = _dec((limits.get("amount") or {}).get("min"))
        max_amount = _dec((limits.get("amount") or {}).get("max"))
        min_cost = _dec((limits.get("cost") or {}).get("min"))
        max_cost = _dec((limits.get("cost") or {}).get("max"))
        rules = _describe_limits(min_amount, max_amount, min_cost, max_cost, market.get("quote"))
        try:
            amount = Decimal(self.client.amount_to_precision(symbol, float(request.amount)))
            price = (
                Decimal(self.client.price_to_precision(symbol, float(request.price)))
                if request.price is not None
                else None
            )
        except Exception:  # ccxt raises InvalidOrder for amounts below precision
            raise OrderRejected("below_minimum", rules) from None
        reference = price or request.reference_price
        if amount <= 0 or (min_amount is not None and amount < min_amount):
            raise OrderRejected("below_minimum", rules)
        if min_cost is not None and reference is not None and amount * reference < min_cost:
            raise OrderRejected("below_minimum", rules)
        if max_amount is not None and amount > max_amount:
            raise OrderRejected("above_maximum", rules)
        if max_cost is not None and reference is not None and amount * reference > max_cost:
            raise OrderRejected("above_maximum", rules)
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
        return await self._with_fees(request.symbol, report)

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
        return await self._with_fees(symbol, parse_order(order, client_order_id))

    async def _with_fees(self, symbol: str, report: OrderReport) -> OrderReport:
        """The report with its fee, read from the order's trades when the answer lacks it.

        Binance's GET order (how an order is settled after a timed-out request)
        carries no fills and no commission, yet on a buy the fee is taken from the
        coin bought: booked without it, the position would claim more than the
        account holds and a full sell would fail. The trades say what was paid.
        """
        if report.filled <= 0 or report.fee_currency is not None:
            return report
        trades = await self._read(self.client.fetch_order_trades, report.exchange_order_id, symbol)
        fees: dict[str, Decimal] = {}
        fills = []
        for i, trade in enumerate(trades or []):
            fee = trade.get("fee") or {}
            cost, currency = _dec(fee.get("cost")), fee.get("currency")
            if cost and currency:
                fees[currency] = fees.get(currency, Decimal(0)) + cost
            fills.append(
                FillReport(
                    fill_id=str(trade.get("id") or f"{report.exchange_order_id}-{i}"),
                    amount=_dec(trade.get("amount")) or Decimal(0),
                    price=_dec(trade.get("price")) or Decimal(0),
                    fee=cost or Decimal(0),
                    fee_currency=currency,
                )
            )
        if not fees:
            return report
        base, quote = symbol.split("/")[0], symbol.split("/")[-1].split(":")[0]
        # One currency is the rule; where several appear, the base (it changes what is
        # held), else the quote; a fee paid in a third coin (BNB) costs the bot nothing.
        currency = base if base in fees else quote if quote in fees else next(iter(fees))
        return replace(report, fee=fees[currency], fee_currency=currency, fills=tuple(fills))

    async def cancel_order(self, symbol: str, exchange_order_id: str) -> None:
        """Ask the exchange to cancel; an order it no longer has open (filled) is no error.

        The caller confirms the outcome with `find_order`: a cancel request that timed
        out may or may not have been done.
        """
        try:
            with translate(client=self.client):
                await self.client.cancel_order(exchange_order_id, symbol)
        except OrderRejected:
            return  # OrderNotFound / already closed: the lookup tells what it became

    async def free(self, asset: str) -> Decimal:
        """What the account can spend of ``asset`` now (not locked in open orders)."""
        balance = await self._read(self.client.fetch_balance)
        return _dec((balance.get("free") or {}).get(asset)) or Decimal(0)

    async def balances(self) -> dict[str, Decimal]:
        balance = await self._read(self.client.fetch_balance)
        totals = balance.get("total") or {}
        return {
            asset: amount
            for asset, value in totals.items()
            if (amount := _dec(value)) is not None and amount != 0
        }
