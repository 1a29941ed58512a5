"""The key intake form: exchange API keys typed on our own page, never in a chat message.

``/connect`` in a private chat gives a one-time link (`robotrader.use_cases.key_intake`).
Opening it spends the link and sets a form cookie (HttpOnly, SameSite=Lax, Path=/connect,
Secure behind https) for ten minutes; the form posts back with a CSRF token. The page
loads no script and nothing from another origin, is never cached or sent as a referrer,
and never shows what was typed: a refused key is answered with the chat's own message
in the user's language and empty fields. TLS comes from the deployment's proxy (README).
"""

from __future__ import annotations

import hmac
import math
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from robotrader.errors import UserError
from robotrader.i18n import translate
from robotrader.text import clean_text
from robotrader.use_cases.key_intake import (
    KEY_FORM_TTL,
    KeyFormUser,
    exchange_choices,
    key_form_user,
    open_key_form,
    submit_key_form,
)
from web.api_rate_limit import ApiRateLimit
from web.dependencies import AppDep
from web.errors import ApiError, request_language, status_of, user_error_message
from web.pages import SECURITY_HEADERS, page

router = APIRouter(prefix="/connect", include_in_schema=False)

FORM_COOKIE = "rt_key_form"
COOKIE_PATH = "/connect"
CSRF_FIELD = "csrf_token"
# Stricter than the dashboard's: this page runs no script at all and talks to no one.
PAGE_HEADERS = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}

# Each try asks the exchange with the server's IP: one user must not spend its budget.
TRIES_PER_MINUTE = 10

ExchangeQuery = Annotated[str | None, Query(max_length=32)]
# No length limits here: a key too long gets the chat's own answer (connect_exchange
# checks it); the body cap (web/request_bodies.py) bounds what is read.
FormText = Annotated[str, Form()]


def _message(language: str, status: int, message: str) -> HTMLResponse:
    return page("key_message.html", language, status=status, headers=PAGE_HEADERS,
                message=message)  # fmt: skip


def _tries(request: Request) -> ApiRateLimit:
    """This web app's limit on key tries per form session (made on first use)."""
    limiter: ApiRateLimit | None = getattr(request.app.state, "key_form_tries", None)
    if limiter is None:
        limiter = request.app.state.key_form_tries = ApiRateLimit(TRIES_PER_MINUTE)
    return limiter


def _secure_cookies(request: Request) -> bool:
    public_url: str | None = request.app.state.robotrader.settings.public_url
    return bool(public_url and public_url.lower().startswith("https://"))


def _preselected(exchange: str | None) -> str | None:
    wanted = (exchange or "").strip().lower()
    return next((c.id for c in exchange_choices() if c.id == wanted), None)


def _form_page(
    user: KeyFormUser, selected: str | None, *, error: str | None = None,
    status: int = 200,
) -> HTMLResponse:  # fmt: skip
    choices = exchange_choices()
    return page(
        "key_form.html",
        user.language,
        status=status,
        headers=PAGE_HEADERS,
        csrf_token=user.csrf_token,
        exchanges=choices,
        selected=selected or choices[0].id,
        passphrase_for=", ".join(c.title for c in choices if c.needs_passphrase),
        minutes=int(KEY_FORM_TTL.total_seconds() // 60),
        error=error,
    )


async def _form_user(request: Request, app: AppDep) -> tuple[KeyFormUser, str]:
    token = request.cookies.get(FORM_COOKIE, "")
    user = await key_form_user(app, token) if token else None
    if user is None:
        raise ApiError(401, "key_form_expired")
    request.state.language = user.language
    return user, token


@router.get("/open/{code}")
async def open_form(
    code: str, request: Request, app: AppDep, exchange: ExchangeQuery = None
) -> Response:
    """Spend the one-time link, set the form cookie, go to the form (the code leaves the URL)."""
    try:
        opened = await open_key_form(app, clean_text(code, max_length=80))
    except UserError as exc:
        language = request_language(request)
        return _message(language, status_of(exc), user_error_message(language, exc))
    selected = _preselected(exchange)
    response = RedirectResponse(
        COOKIE_PATH + (f"?exchange={selected}" if selected else ""), status_code=303
    )
    response.set_cookie(
        FORM_COOKIE,
        opened.token,
        max_age=int(KEY_FORM_TTL.total_seconds()),
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=_secure_cookies(request),
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("", response_class=HTMLResponse)
async def form(request: Request, app: AppDep, exchange: ExchangeQuery = None) -> HTMLResponse:
    user, _ = await _form_user(request, app)
    return _form_page(user, _preselected(exchange))


@router.post("", response_class=HTMLResponse)
async def submit(
    request: Request,
    app: AppDep,
    csrf_token: FormText = "",
    exchange: FormText = "",
    api_key: FormText = "",
    secret: FormText = "",
    passphrase: FormText = "",
) -> HTMLResponse:
    """Check the key with the exchange and store it, exactly as the chat does."""
    user, token = await _form_user(request, app)
    if not csrf_token or not hmac.compare_digest(
        csrf_token.encode(), user.csrf_token.encode()
    ):
        raise ApiError(403, "key_form_csrf")
    wait = _tries(request).wait(token)
    if wait > 0:
        raise ApiError(429, "rate_limited", headers={"Retry-After": str(math.ceil(wait))})
    try:
        connected = await submit_key_form(app, token, exchange, api_key, secret, passphrase)
    except UserError as exc:
        # What was typed is not sent back: the form comes again, empty, with the reason.
        del api_key, secret, passphrase
        if exc.key == "key_form_expired":
            raise
        return _form_page(
            user, _preselected(exchange), error=user_error_message(user.language, exc),
            status=status_of(exc),
        )  # fmt: skip
    response = _message(
        user.language, 200, translate(user.language, "keyform.done", exchange=connected.title)
    )
    response.delete_cookie(
        FORM_COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax",
        secure=_secure_cookies(request),
    )  # fmt: skip
    return response
