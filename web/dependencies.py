"""FastAPI dependencies as Annotated aliases (the full-stack-fastapi-template way)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from robotrader.app import App


def get_app(request: Request) -> App:
    app: App = request.app.state.robotrader
    return app


AppDep = Annotated[App, Depends(get_app)]
