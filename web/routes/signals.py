"""POST /signals/{bot_secret}: TradingView-style alerts for bots on the signal strategy.

TradingView posts the alert's message as the raw body, as ``text/plain`` unless
the message is valid JSON; both are read as JSON here, whatever the header says.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, status
from pydantic import ValidationError

from robotrader.use_cases.signals import MAX_SECRET_LENGTH, SignalAlert, receive_signal
from web.dependencies import AppDep
from web.errors import ApiError, error_responses
from web.request_bodies import SIGNAL_MAX_BODY, BadJson, decode_json
from web.schemas import SignalIn, SignalOut

router = APIRouter(tags=["signals"])

_ALERT_SCHEMA = SignalIn.model_json_schema()
_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The alert: JSON, sent as application/json or text/plain.",
        "content": {
            "application/json": {"schema": _ALERT_SCHEMA},
            "text/plain": {"schema": {"type": "string"}},
        },
    }
}


def _alert(body: bytes) -> SignalIn:
    try:
        data = decode_json(body)
    except BadJson:
        raise ApiError(422, "signal_not_json") from None
    if not isinstance(data, dict):
        raise ApiError(422, "signal_not_json")
    try:
        return SignalIn.model_validate(data)
    except ValidationError as exc:
        fields = ", ".join(sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]}))
        raise ApiError(422, "signal_bad_fields", fields=fields or "action") from None


@router.post(
    "/signals/{bot_secret}",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Receive an alert for a signal bot (the next tick acts on it)",
    openapi_extra=_BODY_DOC,
    responses=error_responses(404, 409, 413, 422, 429),
    max_body_size=SIGNAL_MAX_BODY,
)
async def receive(
    bot_secret: Annotated[
        str, Path(min_length=1, max_length=MAX_SECRET_LENGTH, description="The bot's secret")
    ],
    request: Request,
    app: AppDep,
) -> SignalOut:
    alert = _alert(await request.body())
    receipt = await receive_signal(
        app,
        bot_secret,
        SignalAlert(alert.action, alert.symbol, alert.price, alert.amount),
    )
    return SignalOut.of(receipt)
