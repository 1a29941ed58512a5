"""POST /telegram/webhook: updates from Telegram in webhook mode (PUBLIC_URL set).

Telegram sends the secret given to ``setWebhook`` in ``X-Telegram-Bot-Api-Secret-Token``;
anything else is refused. The update goes to the Telegram front end running in
this process (registered on ``App.update_receivers``): web/ never imports it.
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from robotrader.update_receivers import InvalidUpdate
from web.dependencies import AppDep
from web.errors import ApiError
from web.request_bodies import TELEGRAM_MAX_BODY, BadJson, decode_json

log = logging.getLogger(__name__)
router = APIRouter(tags=["telegram"])


@router.post("/telegram/webhook", include_in_schema=False, max_body_size=TELEGRAM_MAX_BODY)
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
    try:
        update = decode_json(await request.body())
    except BadJson:
        update = None
    if not isinstance(update, dict):
        raise ApiError(400, "webhook_bad_update")
    try:
        await receiver(update)
    except InvalidUpdate:
        log.warning("telegram.webhook_bad_update")
        raise ApiError(400, "webhook_bad_update") from None
    return JSONResponse({"ok": True})
