"""Numbers and dates as a reader of one Babel locale writes them: ``-1,234.56`` or ``-1.234,56``.

The chat's text (``robotrader.formatting``) and the engine's charts both print
figures through these functions, so a return reads the same, sign included, in a
reply and on the chart drawn for it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from babel.dates import format_date
from babel.numbers import format_decimal

TWO_PLACES = "#,##0.00"


def plain(value: Decimal, locale: str) -> str:
    """``1,234.56`` (two decimals, grouped), the sign as Babel writes it."""
    return format_decimal(value, format=TWO_PLACES, locale=locale)


def signed_percent(value: Decimal, locale: str) -> str:
    """``+12.50%``, ``-3.75%``, ``0.00%``: the sign always written when there is one."""
    text = plain(abs(value), locale)
    sign = "+" if value > 0 else "-" if value < 0 else ""
    return f"{sign}{text}%"


def money(value: Decimal, locale: str, currency: str) -> str:
    return f"{plain(value, locale)} {currency}"


def signed_money(value: Decimal, locale: str, currency: str) -> str:
    """``+19.50 USDT``, ``-4.00 USDT``, ``0.00 USDT``."""
    text = money(abs(value), locale, currency)
    return f"+{text}" if value > 0 else f"-{text}" if value < 0 else text


def medium_date(moment: datetime, locale: str) -> str:
    """``Mar 5, 2025`` / ``5 de mar. de 2025``."""
    return format_date(moment, format="medium", locale=locale)
