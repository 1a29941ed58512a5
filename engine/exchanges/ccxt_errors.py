"""ccxt's exceptions mapped onto the engine's four (see errors.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import ccxt

from engine.exchanges.errors import (
    ExchangeAuthError,
    ExchangeUnavailable,
    OrderOutcomeUnknown,
    OrderRejected,
)


def _brief(exc: BaseException) -> str:
    # ccxt messages start with the exchange id and carry the server's JSON answer;
    # they never include keys or signatures, but keep them short anyway.
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


@contextmanager
def translate(*, placing_order: bool = False) -> Iterator[None]:
    """Re-raise ccxt errors as engine errors.

    With ``placing_order`` a timeout or lost connection means the order may
    exist: OrderOutcomeUnknown, so the caller reconciles by client order id.
    """
    try:
        yield
    except (ccxt.AuthenticationError, ccxt.AccountNotEnabled) as exc:
        # PermissionDenied and AccountSuspended are AuthenticationError subclasses.
        raise ExchangeAuthError(_brief(exc)) from None
    except ccxt.InsufficientFunds as exc:
        raise OrderRejected("insufficient_funds", _brief(exc)) from None
    except (ccxt.InvalidOrder, ccxt.BadSymbol, ccxt.BadRequest) as exc:
        # Binance's minimum-notional failure (-1013) arrives as BadRequest.
        text = str(exc).lower()
        reason = "below_minimum" if "notional" in text or "too small" in text else "invalid_order"
        raise OrderRejected(reason, _brief(exc)) from None
    except (ccxt.RequestTimeout, ccxt.NetworkError) as exc:
        if placing_order and not isinstance(exc, ccxt.DDoSProtection):
            # A rate-limit answer (DDoSProtection) proves the order was refused;
            # any other network failure leaves its fate unknown.
            raise OrderOutcomeUnknown(_brief(exc)) from None
        raise ExchangeUnavailable(_brief(exc)) from None
    except (ccxt.ExchangeNotAvailable, ccxt.BadResponse, ccxt.NullResponse) as exc:
        if placing_order:
            raise OrderOutcomeUnknown(_brief(exc)) from None
        raise ExchangeUnavailable(_brief(exc)) from None
    except (ccxt.ExchangeError, ccxt.OperationFailed) as exc:
        raise ExchangeUnavailable(_brief(exc)) from None
