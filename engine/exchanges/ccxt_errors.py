"""ccxt's exceptions mapped onto the engine's four (see errors.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ccxt

from engine.exchanges.errors import (
    ExchangeAuthError,
    ExchangeRateLimited,
    ExchangeUnavailable,
    OrderOutcomeUnknown,
    OrderRejected,
)


def _brief(exc: BaseException) -> str:
    # ccxt messages start with the exchange id and carry the server's JSON answer;
    # they never include keys or signatures, but keep them short anyway.
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


DEFAULT_RETRY_AFTER = 30.0


def retry_after_of(client: Any) -> float:
    """Seconds the exchange asked us to wait (its Retry-After header), else a safe default."""
    headers = getattr(client, "last_response_headers", None) or {}
    for name, value in dict(headers).items():
        if str(name).lower() == "retry-after":
            try:
                return max(1.0, float(value))
            except (TypeError, ValueError):
                break
    return DEFAULT_RETRY_AFTER


@contextmanager
def translate(*, placing_order: bool = False, client: Any = None) -> Iterator[None]:
    """Re-raise ccxt errors as engine errors.

    With ``placing_order`` a timeout or lost connection means the order may
    exist: OrderOutcomeUnknown, so the caller reconciles by client order id.
    A rate-limit answer is always a refusal: ExchangeRateLimited, with how long
    to wait (read from ``client``'s last response when given).
    """
    try:
        yield
    except ccxt.DDoSProtection as exc:  # 429 and 418 (RateLimitExceeded is a subclass)
        # Bybit's per-account limit (retCode 10006) holds one key; an IP limit, everyone.
        per_account = '"retCode":10006' in str(exc).replace(" ", "")
        raise ExchangeRateLimited(
            _brief(exc), retry_after_of(client), per_account=per_account
        ) from None
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
        if placing_order:
            raise OrderOutcomeUnknown(_brief(exc)) from None
        raise ExchangeUnavailable(_brief(exc)) from None

    except (ccxt.ExchangeNotAvailable, ccxt.BadResponse, ccxt.NullResponse) as exc:
        if placing_order:
            raise OrderOutcomeUnknown(_brief(exc)) from None
        raise ExchangeUnavailable(_brief(exc)) from None
    except (ccxt.ExchangeError, ccxt.OperationFailed) as exc:
        raise ExchangeUnavailable(_brief(exc)) from None
