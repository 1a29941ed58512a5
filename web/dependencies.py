"""FastAPI dependencies as Annotated aliases (the full-stack-fastapi-template way)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from robotrader.app import App
from robotrader.use_cases.web_access import ApiUser, authenticate_api_token
from web.errors import ApiError


def get_app(request: Request) -> App:
    app: App = request.app.state.robotrader
    return app


AppDep = Annotated[App, Depends(get_app)]

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
    user = await authenticate_api_token(app, credentials.credentials)
    request.state.language = user.language
    return user


ApiUserDep = Annotated[ApiUser, Depends(get_api_user)]
