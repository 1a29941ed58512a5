"""What can go wrong talking to an exchange, in the terms the engine acts on.

ccxt's exception tree is mapped onto these four so the tick's rules stay short:
retry (ExchangeUnavailable), pause and tell the user (ExchangeAuthError),
reject the order and carry on (OrderRejected), reconcile before deciding again
(OrderOutcomeUnknown). Messages never carry request URLs, keys or signatures.
"""

from __future__ import annotations


class ExchangeError(Exception):
    """Base class; ``message_key`` names the text users read."""

    message_key = "exchange_error"


class ExchangeUnavailable(ExchangeError):
    """Network trouble, timeouts, 5xx, rate limits, unparseable answers: safe to retry later."""

    message_key = "exchange_unavailable"


class ExchangeRateLimited(ExchangeUnavailable):
    """The exchange said "too many requests" (HTTP 429/418): the request was refused.

    Calling again before ``retry_after`` seconds gets the IP banned (Binance
    answers 418 and bans for minutes), so callers wait that long.
    """

    def __init__(self, message: str, retry_after: float, *, per_account: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        # Bybit also limits each account (retCode 10006): then only that key waits.
        self.per_account = per_account


class ExchangeAuthError(ExchangeError):
    """The key was refused or lacks a permission: the bot pauses and the user is told."""

    message_key = "exchange_auth"


class KeyAllowsWithdrawals(ExchangeError):
    """A key that can withdraw funds is refused: we only ever need trade permission."""

    message_key = "key_allows_withdrawals"


class KeyPermissionsUnknown(ExchangeError):
    """The exchange's answer does not say whether the key may withdraw: refused (fail closed)."""

    message_key = "key_permissions_unknown"


class OrderRejected(ExchangeError):
    """The exchange refused this order (funds, filters, minimum); the bot carries on."""

    message_key = "order_rejected"

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason  # insufficient_funds | below_minimum | invalid_order
        self.detail = detail


class OrderOutcomeUnknown(ExchangeError):
    """The order request may or may not have reached the exchange (timeout, lost answer).

    Never retry blindly: look the order up by its client order id first.
    """

    message_key = "exchange_unavailable"
