"""Every error as JSON with a clear message: UserError keys mapped to HTTP statuses.

The words come from the message catalog (the user's language when the caller
is known, else the Accept-Language header); the status from the key. Anything
that is not a UserError or a request the framework refused is a bug: logged
with a trace id, answered 500 with that id and nothing else.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY

from robotrader import languages
from robotrader.errors import UserError
from robotrader.i18n import Translator, error_text, translate
from web.pages import message_page

log = logging.getLogger(__name__)

# The HTTP status of every UserError key the product raises (tests/web/test_errors.py holds
# each key raised anywhere to this table and to both catalogs). 422: the request itself is
# wrong (a value, a name, a step); some keys only ever reach a chat, listed all the same.
STATUS_OF_ERROR: dict[str, int] = {
    "api_token_invalid": 401,
    "rest_api_not_in_plan": 403,
    "limit_reached": 403,
    "limit_reached_upgrade": 403,
    "strategy_not_in_plan": 403,
    "bot_over_plan": 403,
    "bot_not_found": 404,
    "signal_unknown_bot": 404,
    "bot_name_taken": 409,
    "connect_exchange_first": 409,
    "signal_bot_not_running": 409,
    "stop_bot_first": 409,
    "close_positions_first": 409,
    "bot_orders_in_flight": 409,
    "edit_needs_stop": 409,
    "bot_changed_meanwhile": 409,
    "signal_rate_limited": 429,
    # Accounts, languages, preferences and linking.
    "bad_hour": 422,
    "dashboard_link_invalid": 422,
    "link_account_has_data": 422,
    "link_code_invalid": 422,
    "link_same_platform": 422,
    "too_many_tokens": 422,
    "unknown_language": 422,
    "unknown_notification_kind": 422,
    # Exchanges and keys.
    "exchange_not_connected": 422,
    "exchange_unavailable": 422,
    "key_allows_withdrawals": 422,
    "key_permissions_unknown": 422,
    "key_refused": 422,
    "key_malformed": 422,
    "key_link_invalid": 404,  # used, expired or never issued: nothing to open
    "key_form_expired": 401,  # the form's session is over: a new link from the chat
    "passphrase_required": 422,
    "unknown_exchange": 422,
    # Bots and signals.
    "bad_bot_name": 422,
    "bad_capital": 422,
    "bad_number": 422,
    "bad_option": 422,
    "bad_parameter": 422,
    "compare_bad_contender": 422,
    "compare_contenders": 422,
    "optimize_bad_range": 422,
    "optimize_bad_split": 422,
    "optimize_bad_values": 422,
    "optimize_no_sets": 422,
    "research_amount_out_of_range": 422,
    "research_history_unavailable": 422,
    "research_no_candles": 422,
    "bad_percent": 422,
    "bad_symbol": 422,
    "bad_timeframe": 422,
    "bot_name_is_number": 422,
    "confirm_live": 422,
    "no_symbols": 422,
    "signal_bad_action": 422,
    "signal_symbol_not_traded": 422,
    "too_many_symbols": 422,
    "unknown_strategy": 422,
    "unknown_symbol": 422,
    # Backtests.
    "backtest_concurrency_limit": 422,
    "backtest_concurrency_limit_top": 422,
    "backtest_not_found": 422,
    "backtest_end_in_future": 422,
    "backtest_not_possible": 422,
    "backtest_period_limit": 422,
    "backtest_period_limit_top": 422,
    "backtest_unavailable": 422,
    "backtest_unknown_target": 422,
    "bad_backtest_period": 422,
    "missing_argument": 422,
    # Billing.
    "already_on_plan": 422,
    "billing_not_configured": 422,
    "billing_unavailable": 422,
    "no_subscription": 422,
    "unknown_plan": 422,
    # Communities and the notification channel (Discord).
    "bad_period": 422,
    "community_admin_only": 422,
    "community_only": 422,
    "notify_channel_bot_cannot_post": 422,
    "notify_channel_server_only": 422,
    "notify_channel_unknown": 422,
    "notify_channel_user_cannot_post": 422,
    # Only a chat raises these (a step of a dialog, a button, a private chat).
    "backtest_extra_argument": 422,
    "button_expired": 422,
    "dialog_expired": 422,
    "private_only": 422,
}
HTTP_ERROR_KEYS = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
    422: "invalid_request", 429: "rate_limited", 503: "unavailable",
}  # fmt: skip


class ErrorOut(BaseModel):
    """The body of every error response."""

    error: str  # stable machine-readable code
    message: str  # for people, in the caller's language
    details: list[dict[str, Any]] | None = None  # which fields were wrong (422)


class ApiError(Exception):
    """An HTTP error raised by web/ itself (not a domain rule): status, code and message key."""

    def __init__(
        self, status: int, key: str, *, headers: dict[str, str] | None = None, **args: Any
    ) -> None:
        super().__init__(key)
        self.status = status
        self.key = key
        self.headers = headers or {}
        self.args_ = args


def request_language(request: Request) -> str:
    """The known user's language (set by authentication), else Accept-Language, else English."""
    language: str | None = getattr(request.state, "language", None)
    if language:
        return language
    return languages.from_client(request.headers.get("accept-language"))


def user_error_message(language: str, exc: UserError) -> str:
    return error_text(Translator(language), exc)


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorOut(error=code, message=message, details=details)
    headers = dict(headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


# Paths whose errors are pages for people, not JSON: the dashboard and the key form.
PAGE_PREFIXES = ("/dashboard", "/connect")


def _is_dashboard(request: Request) -> bool:
    return request.url.path.startswith(PAGE_PREFIXES)


def _page(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> HTMLResponse:
    return message_page(request_language(request), status, message, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for error in exc.errors()[:20]:
        details.append(
            {
                "loc": [str(part) for part in error.get("loc", ())],
                "msg": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
        )
    return details


def status_of(exc: UserError) -> int:
    """The HTTP status of a use case's refusal: the one table above decides."""
    status = STATUS_OF_ERROR.get(exc.key)
    if status is None:  # a bug (the test of the table missed a key): still the user's error
        log.error("web.unmapped_error key=%s", exc.key)
        status = 422
    return status


async def _on_user_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UserError)
    status = status_of(exc)
    message = user_error_message(request_language(request), exc)
    if _is_dashboard(request):
        return _page(request, status, message)
    return error_response(status, exc.key, message)


async def _on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    language = request_language(request)
    message = translate(language, f"error.{exc.key}", **exc.args_)
    if _is_dashboard(request):
        return _page(request, exc.status, message, exc.headers)
    return error_response(exc.status, exc.key, message, headers=exc.headers)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    message = translate(request_language(request), "error.invalid_request")
    if _is_dashboard(request):
        return _page(request, 422, message)
    return error_response(422, "invalid_request", message, _validation_details(exc))


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # The framework's only 400 is a body it could not parse (not UTF-8): for the API
        # that is one more invalid request, answered like malformed JSON.
        message = translate(request_language(request), "error.invalid_request")
        if _is_dashboard(request):
            return _page(request, 422, message)
        return error_response(422, "invalid_request", message, [{"loc": ["body"],
                              "msg": str(exc.detail), "type": "body_unreadable"}])  # fmt: skip
    code = HTTP_ERROR_KEYS.get(exc.status_code, "http_error")
    message = str(exc.detail) if exc.detail else code.replace("_", " ")
    if exc.status_code == 413:  # the body cap of web/request_bodies.py, as it streamed in
        maximum = request.scope.get(MAX_BODY_SIZE_SCOPE_KEY, "?")
        message = translate(request_language(request), "error.body_too_large", maximum=maximum)
    if _is_dashboard(request):
        return _page(request, exc.status_code, message)
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, code, message, headers=headers)


async def _on_bug(request: Request, exc: Exception) -> Response:
    trace = uuid.uuid4().hex[:8]
    log.error(
        "web.error trace=%s method=%s path=%s",
        trace, request.method, request.url.path, exc_info=exc,
    )  # fmt: skip
    message = translate(request_language(request), "error.internal", trace=trace)
    if _is_dashboard(request):
        return _page(request, 500, message)
    return error_response(500, "internal_error", message)


def install_error_handlers(api: FastAPI) -> None:
    api.add_exception_handler(UserError, _on_user_error)
    api.add_exception_handler(ApiError, _on_api_error)
    api.add_exception_handler(RequestValidationError, _on_validation_error)
    api.add_exception_handler(StarletteHTTPException, _on_http_error)
    api.add_exception_handler(Exception, _on_bug)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting the error body for ``statuses``."""
    return {s: {"model": ErrorOut, "description": _DESCRIPTIONS[s]} for s in statuses}


_DESCRIPTIONS = {
    401: "Missing, unknown or revoked API token",
    403: "Not allowed by the plan (the REST API is Premium; plan limits)",
    404: "Not found (or not yours)",
    409: "Conflicts with the current state",
    413: "Body too large",
    422: "Invalid request",
    429: "Too many requests",
}
