"""FastAPI dependencies as Annotated aliases (the full-stack-fastapi-template way)."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from robotrader.app import App
from robotrader.use_cases.web_access import ApiUser, authenticate_api_token
from web.api_rate_limit import ApiRateLimit
from web.errors import ApiError


def get_app(request: Request) -> App:
    app: App = request.app.state.robotrader
    return app


AppDep = Annotated[App, Depends(get_app)]


def api_rate_limit(request: Request, app: App) -> ApiRateLimit:
    """This web app's limiter (made on first use, from API_RATE_LIMIT)."""
    limiter: ApiRateLimit | None = getattr(request.app.state, "api_rate_limit", None)
    if limiter is None:
        limiter = request.app.state.api_rate_limit = ApiRateLimit(app.settings.api_rate_limit)
    return limiter


bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiToken",
    description="A personal API token: send /token in a private chat with the bot (Premium).",
)


async def get_api_user(
    request: Request,
    app: AppDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ApiUser:
    """The owner of the request's Bearer token (401 without a valid one, 403 below Premium)."""
    if credentials is None:
        raise ApiError(401, "api_token_missing")
    wait = api_rate_limit(request, app).wait(credentials.credentials)
    if wait > 0:
        raise ApiError(429, "api_rate_limited", headers={"Retry-After": str(math.ceil(wait))})
    user = await authenticate_api_token(app, credentials.credentials)
    request.state.language = user.language
    return user


ApiUserDep = Annotated[ApiUser, Depends(get_api_user)]
