"""Numbers, money and times in the user's locale (Babel): ``1,234.56`` or ``1.234,56``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from babel.dates import format_datetime, format_timedelta
from babel.numbers import format_decimal

from engine import number_text
from robotrader import languages


def _locale(language: str) -> str:
    return languages.get(language).formats


def money(value: Decimal | None, language: str, currency: str = "USDT") -> str:
    if value is None:
        return "—"
    return number_text.money(value, _locale(language), currency)


def signed_money(value: Decimal | None, language: str, currency: str = "USDT") -> str:
    if value is None:
        return "—"
    return number_text.signed_money(value, _locale(language), currency)


def percent(value: Decimal | None, language: str) -> str:
    if value is None:
        return "—"
    return number_text.signed_percent(value, _locale(language))


def price(value: Decimal | float | None, language: str) -> str:
    """Prices keep the digits that matter: 97,432.10 but 0.00001234."""
    if value is None:
        return "—"
    number = Decimal(str(value))
    fmt = "#,##0.00" if abs(number) >= 1 else "#,##0.00######"
    return format_decimal(number, format=fmt, locale=_locale(language))


def amount(value: Decimal | None, language: str) -> str:
    if value is None:
        return "—"
    return format_decimal(value, format="#,##0.########", locale=_locale(language))


def when(moment: datetime | None, language: str) -> str:
    if moment is None:
        return "—"
    return format_datetime(moment, format="short", locale=_locale(language), tzinfo=None) + " UTC"


def age(since: datetime, language: str, now: datetime | None = None) -> str:
    """How long ago, in words: ``2 minutes``, ``2 minutos``."""
    elapsed = (now or datetime.now(UTC)) - since
    return format_timedelta(
        max(elapsed, timedelta(0)), threshold=1.5, format="long", locale=_locale(language)
    )


def share(value: Decimal | None, language: str) -> str:
    """A percentage without a sign (a win rate, a time in the market): ``55.00%``."""
    if value is None:
        return "—"
    return format_decimal(value, format="#,##0.00", locale=_locale(language)) + "%"


def number(value: Decimal | None, language: str, digits: int = 2) -> str:
    """A plain figure (a Sharpe ratio): ``1.23``, ``-0.45``."""
    if value is None:
        return "—"
    return format_decimal(value, format="#,##0." + "0" * digits, locale=_locale(language))


def day(moment: datetime | None, language: str) -> str:
    if moment is None:
        return "—"
    return number_text.medium_date(moment, _locale(language))


def relative(moment: datetime, language: str, now: datetime | None = None) -> str:
    """How far from now, and which way: ``in 3 minutes``, ``4 seconds ago``, ``há 4 segundos``."""
    return format_timedelta(
        moment - (now or datetime.now(UTC)),
        threshold=1.5,
        add_direction=True,
        format="long",
        locale=_locale(language),
    )


def figure(value: float, language: str) -> str:
    """An indicator's value off the price scale (an RSI): ``41.2``, ``41,2``."""
    return format_decimal(Decimal(repr(value)), format="#,##0.#", locale=_locale(language))
