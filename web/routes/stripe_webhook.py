"""POST /stripe/webhook: signed events from Stripe, applied once each."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from robotrader.stripe_webhook_errors import BillingUnavailable, InvalidSignature
from robotrader.use_cases.billing import handle_stripe_webhook
from web.dependencies import AppDep
from web.request_bodies import STRIPE_MAX_BODY

log = logging.getLogger(__name__)
router = APIRouter(tags=["billing"])


@router.post("/stripe/webhook", include_in_schema=False, max_body_size=STRIPE_MAX_BODY)
async def stripe_webhook(
    request: Request,
    app: AppDep,
    stripe_signature: str = Header(default=""),
) -> JSONResponse:
    payload = await request.body()
    try:
        outcome = await handle_stripe_webhook(app, payload, stripe_signature)
    except InvalidSignature:
        return JSONResponse({"error": "invalid signature"}, status_code=400)
    except BillingUnavailable as exc:
        # Nothing was stored: Stripe delivers the event again later.
        log.warning("stripe.webhook_deferred reason=%s", exc)
        return JSONResponse({"error": "temporarily unavailable"}, status_code=503)
    return JSONResponse({"status": outcome})
