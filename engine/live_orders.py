"""Placing live orders and reconciling them with the exchange by client order id.

A live order is first recorded as PENDING by the tick (its client order id is
unique), then placed here in a transaction of its own. Before any re-send, and
on start, the exchange is asked for the order by its client id: a timed-out
request whose order did reach the exchange is booked, never sent twice.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select

from db.credential_secrets import unseal
from db.models import Bot, ExchangeCredential, Order, OrderStatus, User
from db.session import Database
from db.types import utcnow
from db.vault import Vault, VaultError
from engine.bookkeeping import BotRef, pause_bot, record_rejection, record_report
from engine.exchanges.ccxt_gateway import CcxtGateway
from engine.exchanges.clients import ClientPool
from engine.exchanges.errors import (
    ExchangeAuthError,
    ExchangeRateLimited,
    ExchangeUnavailable,
    OrderOutcomeUnknown,
    OrderRejected,
)
from engine.exchanges.gateway import OrderReport, OrderRequest
from engine.tick import PLAN_PRIORITY

log = logging.getLogger(__name__)

MAX_SUBMIT_ATTEMPTS = 5
# A pending order this old whose request never reached the exchange is given up:
# its decision belongs to a candle long gone.
STALE_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class LiveContext:
    database: Database
    pool: ClientPool
    vault: Vault
    # exchange id -> monotonic time before which we must not call it (it rate-limited us).
    cooldown: dict[str, float] = field(default_factory=dict)

    def cooling_down(self, exchange: str) -> bool:
        return self.cooldown.get(exchange, 0.0) > time.monotonic()


async def _load(
    ctx: LiveContext, order_id: int
) -> tuple[Order, BotRef, ExchangeCredential | None, str] | str | None:
    async with ctx.database.transaction() as session:
        order = await session.get(Order, order_id, with_for_update=True)
        if order is None or order.status not in (OrderStatus.PENDING, OrderStatus.OPEN):
            return None
        bot = await session.get(Bot, order.bot_id)
        user = await session.get(User, order.user_id)
        assert bot is not None and user is not None
        if ctx.cooling_down(bot.exchange):
            return "deferred"  # not sent, not counted: the next reconciliation sends it
        credential = (
            await session.get(ExchangeCredential, bot.credential_id) if bot.credential_id else None
        )
        if order.status == OrderStatus.PENDING:
            order.submit_attempts += 1
        ref = BotRef(bot.id, bot.user_id, bot.name, PLAN_PRIORITY.get(user.plan, 0))
        return order, ref, credential, bot.exchange


async def _book(ctx: LiveContext, order_id: int, bot: BotRef, report: OrderReport) -> None:
    async with ctx.database.transaction() as session:
        order = await session.get(Order, order_id, with_for_update=True)
        assert order is not None
        await record_report(session, order, report, bot)


async def _reject(
    ctx: LiveContext, order_id: int, bot: BotRef, reason: str, detail: str = ""
) -> None:
    async with ctx.database.transaction() as session:
        order = await session.get(Order, order_id, with_for_update=True)
        assert order is not None
        await record_rejection(session, order, bot, reason, detail)
        if reason == "exchange_auth":
            await pause_bot(session, bot, "exchange_auth")


async def place_live_order(ctx: LiveContext, order_id: int) -> str:
    """Send (or reconcile) one live order. Idempotent: safe to run again after any crash.

    Returns what happened: filled, open, rejected, unknown (to be reconciled), skipped.
    """
    loaded = await _load(ctx, order_id)
    if loaded is None:
        return "skipped"
    if isinstance(loaded, str):
        return loaded
    order, bot, credential, exchange = loaded

    if credential is None:
        await _reject(ctx, order_id, bot, "exchange_auth", "no API key connected")
        return "rejected"
    try:
        secrets = unseal(ctx.vault, credential)
    except VaultError:
        log.error("live_order.vault_error order=%s credential=%s", order_id, credential.id)
        await _reject(ctx, order_id, bot, "exchange_auth", "stored key unreadable")
        return "rejected"
    client = await ctx.pool.private(exchange, secrets)
    gateway = CcxtGateway(client)
    try:
        if order.status == OrderStatus.OPEN or order.submit_attempts > 1:
            found = await gateway.find_order(order.symbol, order.client_order_id)
            if found is not None:
                await _book(ctx, order_id, bot, found)
                return str(found.status)
            if order.status == OrderStatus.OPEN:
                return "unknown"
        if order.submit_attempts > MAX_SUBMIT_ATTEMPTS or utcnow() - order.created_at > STALE_AFTER:
            await _reject(ctx, order_id, bot, "exchange_unavailable", "gave up after retries")
            return "rejected"
        request = OrderRequest.of(order, reference_price=order.price)
        try:
            report = await gateway.place_order(request)
        except OrderOutcomeUnknown:
            found = await gateway.find_order(order.symbol, order.client_order_id)
            if found is None:
                return "unknown"
            report = found
        await _book(ctx, order_id, bot, report)
        return str(report.status)
    except OrderRejected as exc:
        await _reject(ctx, order_id, bot, exc.reason, exc.detail)
        return "rejected"
    except ExchangeAuthError as exc:
        await _reject(ctx, order_id, bot, "exchange_auth", str(exc))
        return "rejected"
    except ExchangeRateLimited as exc:
        ctx.cooldown[exchange] = time.monotonic() + exc.retry_after
        log.warning("live_order.rate_limited exchange=%s wait=%.0fs", exchange, exc.retry_after)
        return "deferred"
    except ExchangeUnavailable:
        return "unknown"
    finally:
        await client.close()


async def unsettled_orders(database: Database) -> list[int]:
    """Live orders the exchange has not settled yet: pending (maybe sent) or open."""
    async with database.sessions() as session:
        ids = await session.scalars(
            select(Order.id)
            .where(Order.status.in_([OrderStatus.PENDING, OrderStatus.OPEN]), Order.mode == "live")
            .order_by(Order.id)
        )
        return list(ids)


async def reconcile(ctx: LiveContext) -> dict[str, int]:
    """Settle every pending or open live order (on start, and every few ticks)."""
    outcomes: dict[str, int] = {}
    for order_id in await unsettled_orders(ctx.database):
        outcome = await place_live_order(ctx, order_id)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes
