"""Server-rendered pages: one Jinja2 environment, the words from the message catalog."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from robotrader import formatting, languages
from robotrader.i18n import translate

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")

environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

# Pages hold personal data and forms: never framed, cached or leaked through Referer, and
# only our own script (htmx, served from /static) may run.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _html_language(language: str) -> str:
    return languages.get(language).tag


def helpers(language: str) -> dict[str, Callable[..., str]]:
    """``t`` and the number formatters, bound to the reader's language."""

    def t(key: str, /, **args: Any) -> str:
        return translate(language, key, **args)

    def signed_percent(value: Decimal | None) -> str:
        return formatting.percent(value, language)

    def rate(value: Decimal | None) -> str:
        return "—" if value is None else f"{value:.0f}%"

    return {
        "t": t,
        "money": partial(formatting.money, language=language),
        "signed_money": partial(formatting.signed_money, language=language),
        "percent": signed_percent,
        "rate": rate,
        "price": partial(formatting.price, language=language),
        "amount": partial(formatting.amount, language=language),
        "when": partial(formatting.when, language=language),
    }


def render(template: str, language: str, **context: Any) -> str:
    return environment.get_template(template).render(
        lang=_html_language(language), **helpers(language), **context
    )


def page(
    template: str,
    language: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    return HTMLResponse(
        render(template, language, **context),
        status_code=status,
        headers={**SECURITY_HEADERS, **(headers or {})},
    )


def message_page(
    language: str, status: int, message: str, *, headers: dict[str, str] | None = None
) -> HTMLResponse:
    """A short page saying one thing (login needed, link expired, an error)."""
    return page("message.html", language, status=status, headers=headers, message=message)
