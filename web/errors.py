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

# Anything not listed is a validation problem of the request: 422.
STATUS_OF_ERROR: dict[str, int] = {
    "api_token_invalid": 401,
    "rest_api_not_in_plan": 403,
    "limit_reached": 403,
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
    "signal_rate_limited": 429,
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


def _is_dashboard(request: Request) -> bool:
    return request.url.path.startswith("/dashboard")


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


async def _on_user_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UserError)
    status = STATUS_OF_ERROR.get(exc.key, 422)
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
