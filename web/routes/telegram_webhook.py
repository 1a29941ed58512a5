"""POST /telegram/webhook: updates from Telegram in webhook mode (PUBLIC_URL set).

Telegram sends the secret given to ``setWebhook`` in ``X-Telegram-Bot-Api-Secret-Token``;
anything else is refused. The update goes to the Telegram front end running in
this process (registered on ``App.update_receivers``): web/ never imports it.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from robotrader.update_receivers import InvalidUpdate
from web.dependencies import AppDep
from web.errors import ApiError

log = logging.getLogger(__name__)
router = APIRouter(tags=["telegram"])

MAX_UPDATE = 1024 * 1024


@router.post("/telegram/webhook", include_in_schema=False)
async def telegram_webhook(
    request: Request,
    app: AppDep,
    secret: Annotated[str, Header(alias="X-Telegram-Bot-Api-Secret-Token")] = "",
) -> JSONResponse:
    expected = app.settings.telegram_webhook_secret
    if expected is None or not hmac.compare_digest(
        secret.encode(), expected.get_secret_value().encode()
    ):
        raise ApiError(403, "webhook_forbidden")
    receiver = app.update_receivers.get("telegram")
    if receiver is None:
        # Not running here (yet): Telegram keeps the update and delivers it again.
        raise ApiError(503, "webhook_unavailable", headers={"Retry-After": "5"})
    body = await request.body()
    try:
        update = json.loads(body) if len(body) <= MAX_UPDATE else None
    except ValueError:
        update = None
    if not isinstance(update, dict):
        raise ApiError(400, "webhook_bad_update")
    try:
        await receiver(update)
    except InvalidUpdate:
        log.warning("telegram.webhook_bad_update")
        raise ApiError(400, "webhook_bad_update") from None
    return JSONResponse({"ok": True})
