"""Placing live orders and settling them with the exchange by client order id.

A live order is first recorded as PENDING by the tick (its client order id is
unique and comes from the decision), then settled here in steps of their own:

- One process at a time works on an order: it claims it for ``CLAIM_FOR``
  (longer than every exchange call it makes), and a crashed process's claim runs
  out. Two reconciliations, or the kill switch and a worker, never send twice:
  a process slowed past its claim (a loaded machine) has lost the order, and its
  claim's expiry is the token every write that decides a send checks first.
- Sending counts the attempt and commits BEFORE the request leaves, so whoever
  comes next knows it may have been sent. After any attempt the exchange is asked
  for the order by its client id first; only an order proven absent (the
  exchange answered, and ``RESEND_AFTER`` has passed for a delayed request to
  land) is sent again.
- An order partly filled is booked for what filled and stays OPEN until it is
  done; a resting limit order that expires, or whose bot is stopped or being
  liquidated, is cancelled on the exchange and the cancellation confirmed by a
  lookup. An order already sent is never marked cancelled here on our own word.
- A 429 / 418 holds every process off that exchange (or that key) for as long as
  the exchange asked (`engine.exchanges.cooldowns`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import IntegrityError

from db.credential_secrets import unseal
from db.models import (
    UNSETTLED_ORDER_STATUSES,
    Bot,
    BotMode,
    BotStatus,
    ExchangeCredential,
    Order,
    OrderSide,
    OrderStatus,
    User,
)
from db.session import Database
from db.types import utcnow
from db.vault import Vault, VaultError
from engine.bookkeeping import BotRef, pause_bot, record_rejection, record_report
from engine.exchanges.ccxt_gateway import CcxtGateway
from engine.exchanges.clients import ClientPool
from engine.exchanges.cooldowns import Cooldowns, MemoryCooldowns, scope_of, scopes
from engine.exchanges.errors import (
    ExchangeAuthError,
    ExchangeRateLimited,
    ExchangeUnavailable,
    OrderOutcomeUnknown,
    OrderRejected,
)
from engine.exchanges.gateway import OrderReport, OrderRequest
from engine.exchanges.paper import split_symbol
from engine.panic import liquidation_orders
from engine.sizing import within_account
from engine.tick import FILL_COST_RATE, PLAN_PRIORITY

log = logging.getLogger(__name__)

MAX_SUBMIT_ATTEMPTS = 5
# A pending order this old whose request never reached the exchange is given up:
# its decision belongs to a candle long gone.
STALE_AFTER = timedelta(minutes=5)
# How long one process has an order to itself. A settlement is cut off (outcome
# unknown) before its claim runs out; one slowed past it anyway (its claim committed
# late, its event loop starved) finds the claim gone when it counts the attempt, and
# does not send. A crashed process's claim holds its bot's symbol this long before
# the next reconciliation takes over.
CLAIM_FOR = timedelta(seconds=30)
_SETTLE_WITHIN = CLAIM_FOR.total_seconds() - 5
# A request that timed out may still reach the exchange a little later: an order
# not found sooner than this after its last attempt is not proven absent yet.
RESEND_AFTER = timedelta(seconds=20)

Outcome = Literal[
    "filled", "open", "canceled", "rejected", "unknown", "deferred", "busy", "skipped"
]


@dataclass(frozen=True)
class LiveContext:
    database: Database
    pool: ClientPool
    vault: Vault
    # Shared by every process through Redis where there is one (EngineContext.build).
    cooldowns: Cooldowns = field(default_factory=MemoryCooldowns)


@dataclass(frozen=True)
class _Claim:
    """An order this process may now work on, with what it needs to know (plain values)."""

    order_id: int
    # The claim's expiry as written: the order is still this process's while it is there.
    claimed_until: datetime
    client_order_id: str
    symbol: str
    side: OrderSide
    status: OrderStatus
    submit_attempts: int
    created_at_age: timedelta
    since_last_attempt: timedelta
    cancel_if_open: bool
    # Never sent, and its bot was stopped or paused since it decided: not sent at all
    # (a kill switch's sells are the exception: that is what it stopped the bots for).
    withdraw_if_unsent: bool
    bot: BotRef
    exchange: str
    credential: ExchangeCredential | None


async def _claim(ctx: LiveContext, order_id: int) -> _Claim | Outcome:
    """Take the order for ``CLAIM_FOR``, if it is unsettled and nobody else has it.

    One conditional UPDATE decides, so two processes can never both win, on
    PostgreSQL as on SQLite (whose driver reads outside the write transaction).
    """
    async with ctx.database.transaction() as session:
        now = utcnow()
        claimed_until = now + CLAIM_FOR
        taken = await session.execute(
            update(Order)
            .where(
                Order.id == order_id,
                Order.mode == BotMode.LIVE,
                Order.status.in_(UNSETTLED_ORDER_STATUSES),
                (Order.claimed_until.is_(None)) | (Order.claimed_until <= now),
            )
            .values(claimed_until=claimed_until)
            .execution_options(synchronize_session=False)
        )
        if not getattr(taken, "rowcount", 0):
            order = await session.get(Order, order_id)
            settled = (
                order is None
                or order.status not in UNSETTLED_ORDER_STATUSES
                or order.mode != BotMode.LIVE
            )
            return "skipped" if settled else "busy"
        order = await session.get(Order, order_id)
        assert order is not None
        bot = await session.get(Bot, order.bot_id)
        user = await session.get(User, order.user_id)
        assert bot is not None and user is not None
        if await ctx.cooldowns.remaining([bot.exchange]) > 0:
            order.claimed_until = None
            return "deferred"  # not sent, not counted: the next reconciliation sends it
        credential = (
            await session.get(ExchangeCredential, bot.credential_id) if bot.credential_id else None
        )
        expired = order.expires_at is not None and order.expires_at <= now
        return _Claim(
            order_id=order.id,
            claimed_until=claimed_until,
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=OrderSide(order.side),
            status=OrderStatus(order.status),
            submit_attempts=order.submit_attempts,
            created_at_age=now - order.created_at,
            since_last_attempt=now - (order.last_sent_at or order.created_at),
            cancel_if_open=expired
            or bot.liquidating_since is not None
            or bot.status != BotStatus.RUNNING,
            withdraw_if_unsent=bot.status != BotStatus.RUNNING and order.reason != "panic",
            bot=BotRef(bot.id, bot.user_id, bot.name, PLAN_PRIORITY.get(user.plan, 0)),
            exchange=bot.exchange,
            credential=credential,
        )


def _still_ours(claim: _Claim) -> tuple[ColumnElement[bool], ...]:
    """The order is as this claim found it: nobody took it over, nobody sent it since.

    Checked by the very write that acts on it (one conditional UPDATE, as the claim):
    a read first would run outside the write transaction on SQLite.
    """
    return (
        Order.id == claim.order_id,
        Order.claimed_until == claim.claimed_until,
        Order.submit_attempts == claim.submit_attempts,
    )


async def _release(ctx: LiveContext, claim: _Claim) -> None:
    """Give the order back, unless the claim ran out and another process holds it now."""
    async with ctx.database.transaction() as session:
        await session.execute(
            update(Order)
            .where(Order.id == claim.order_id, Order.claimed_until == claim.claimed_until)
            .values(claimed_until=None)
            .execution_options(synchronize_session=False)
        )


async def _count_attempt(ctx: LiveContext, claim: _Claim, amount: Decimal) -> bool:
    """Committed before the request leaves: after a crash, the order may have been sent.

    False if the claim ran out meanwhile: the order is another process's, not sent here.
    """
    async with ctx.database.transaction() as session:
        counted = await session.execute(
            update(Order)
            .where(*_still_ours(claim))
            .values(submit_attempts=Order.submit_attempts + 1, last_sent_at=utcnow(), amount=amount)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(counted, "rowcount", 0))


async def _withdraw(ctx: LiveContext, claim: _Claim) -> bool:
    """Cancel here an order that never left: nothing of it can exist on the exchange.

    False if the claim ran out meanwhile (another process may be sending it).
    """
    async with ctx.database.transaction() as session:
        withdrawn = await session.execute(
            update(Order)
            .where(*_still_ours(claim), Order.submit_attempts == 0)
            .values(
                status=OrderStatus.CANCELED,
                error="bot stopped before it was sent",
                claimed_until=None,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(withdrawn, "rowcount", 0))


async def _uncount_attempt(ctx: LiveContext, order_id: int) -> None:
    async with ctx.database.transaction() as session:
        order = await session.get(Order, order_id, with_for_update=True)
        assert order is not None
        order.submit_attempts -= 1
        order.last_sent_at = None


async def _book(ctx: LiveContext, order_id: int, bot: BotRef, report: OrderReport) -> None:
    async with ctx.database.transaction() as session:
        order = await session.get(Order, order_id, with_for_update=True)
        assert order is not None
        await record_report(session, order, report, bot)
        order.claimed_until = None


async def _reject(
    ctx: LiveContext, order_id: int, bot: BotRef, reason: str, detail: str = ""
) -> None:
    async with ctx.database.transaction() as session:
        order = await session.get(Order, order_id, with_for_update=True)
        assert order is not None
        await record_rejection(session, order, bot, reason, detail)
        order.claimed_until = None
        if reason == "exchange_auth":
            await pause_bot(session, bot, "exchange_auth")


async def _fit_to_account(gateway: CcxtGateway, request: OrderRequest) -> OrderRequest:
    """Never more than the account holds: a buy shrinks to the free quote, a sell to the free base.

    (A sell is also never more than the position: the tick sizes it from there.)
    """
    base, quote = split_symbol(request.symbol)
    if request.side == OrderSide.SELL:
        free = await gateway.free(base)
        return request if request.amount <= free else _with_amount(request, free)
    price = request.price or request.reference_price
    if price is None or price <= 0:
        return request
    free_quote = await gateway.free(quote)
    wanted = request.amount * price
    allowed = within_account(wanted, free_quote, FILL_COST_RATE)
    return request if allowed >= wanted else _with_amount(request, allowed / price)


def _with_amount(request: OrderRequest, amount: Decimal) -> OrderRequest:
    return OrderRequest(
        request.symbol, request.side, request.type, max(amount, Decimal(0)),
        request.client_order_id, request.price, request.reference_price,
    )  # fmt: skip


async def settle_order(ctx: LiveContext, order_id: int) -> Outcome:
    """Send, look up, cancel or book one live order, whatever state it is in. Idempotent.

    Returns what happened: filled, open (partly filled or resting), canceled,
    rejected, unknown (the exchange did not answer: settled later), deferred (the
    exchange asked us to wait), busy (another process has it), skipped (settled).
    """
    claimed = await _claim(ctx, order_id)
    if isinstance(claimed, str):
        return claimed
    try:
        async with asyncio.timeout(_SETTLE_WITHIN):
            return await _settle(ctx, claimed)
    except TimeoutError:
        log.warning("live_order.settle_timed_out order=%s", order_id)
        return "unknown"  # a request may have left: the next settlement looks it up first
    finally:
        await _release(ctx, claimed)


async def _settle(ctx: LiveContext, claim: _Claim) -> Outcome:
    order_id, bot = claim.order_id, claim.bot
    if claim.credential is None:
        await _reject(ctx, order_id, bot, "exchange_auth", "no API key connected")
        return "rejected"
    try:
        secrets = unseal(ctx.vault, claim.credential)
    except VaultError:
        log.error("live_order.vault_error order=%s credential=%s", order_id, claim.credential.id)
        await _reject(ctx, order_id, bot, "exchange_auth", "stored key unreadable")
        return "rejected"
    api_key = secrets.api_key.get_secret_value()
    if await ctx.cooldowns.remaining(scopes(claim.exchange, api_key)) > 0:
        return "deferred"
    client = await ctx.pool.private(claim.exchange, secrets)
    gateway = CcxtGateway(client)
    try:
        if claim.status == OrderStatus.OPEN or claim.submit_attempts > 0:
            found = await gateway.find_order(claim.symbol, claim.client_order_id)
            if found is not None:
                if found.status == OrderStatus.OPEN and claim.cancel_if_open:
                    await gateway.cancel_order(claim.symbol, found.exchange_order_id)
                    found = await gateway.find_order(claim.symbol, claim.client_order_id) or found
                await _book(ctx, order_id, bot, found)
                return _outcome(found)
            if claim.status == OrderStatus.OPEN:
                return "unknown"  # it was open there a moment ago: ask again later
            if claim.since_last_attempt < RESEND_AFTER:
                return "unknown"  # a delayed request may still land: not proven absent yet
        if claim.submit_attempts == 0 and claim.withdraw_if_unsent:
            return "canceled" if await _withdraw(ctx, claim) else "busy"
        if claim.submit_attempts >= MAX_SUBMIT_ATTEMPTS or claim.created_at_age > STALE_AFTER:
            detail = "not on the exchange; gave up after retries"
            await _reject(ctx, order_id, bot, "exchange_unavailable", detail)
            return "rejected"
        order = await _load_request(ctx, order_id)
        request = await _fit_to_account(gateway, order)
        # Rounded as the exchange checks it (outside its rules: refused before counting),
        # and recorded so: the order's amount is what was asked of the exchange.
        amount, _ = gateway.rounded(request)
        request = _with_amount(request, amount)
        if not await _count_attempt(ctx, claim, request.amount):
            log.warning(
                "live_order.claim_lost order=%s claimed_ago=%.1fs",
                order_id, (utcnow() - (claim.claimed_until - CLAIM_FOR)).total_seconds(),
            )  # fmt: skip
            return "busy"  # slowed past the claim: whoever holds it now sends, or found it
        try:
            report = await gateway.place_order(request)
        except ExchangeRateLimited:
            await _uncount_attempt(ctx, order_id)  # a 429 / 418 is a refusal: nothing placed
            raise
        except OrderOutcomeUnknown:
            maybe = await gateway.find_order(claim.symbol, claim.client_order_id)
            if maybe is None:
                return "unknown"
            report = maybe
        await _book(ctx, order_id, bot, report)
        return _outcome(report)
    except OrderRejected as exc:
        await _reject(ctx, order_id, bot, exc.reason, exc.detail)
        return "rejected"
    except ExchangeAuthError as exc:
        await _reject(ctx, order_id, bot, "exchange_auth", str(exc))
        return "rejected"
    except ExchangeRateLimited as exc:
        await ctx.cooldowns.hold(scope_of(claim.exchange, api_key, exc), exc.retry_after)
        log.warning(
            "live_order.rate_limited exchange=%s wait=%.0fs", claim.exchange, exc.retry_after
        )
        return "deferred"
    except ExchangeUnavailable:
        return "unknown"
    finally:
        await client.close()


async def _load_request(ctx: LiveContext, order_id: int) -> OrderRequest:
    async with ctx.database.sessions() as session:
        order = await session.get(Order, order_id)
        assert order is not None
        return OrderRequest.of(order, reference_price=order.price)


def _outcome(report: OrderReport) -> Outcome:
    if report.status == OrderStatus.FILLED:
        return "filled"
    if report.status == OrderStatus.OPEN:
        return "open"
    if report.status == OrderStatus.CANCELED:
        return "canceled"
    return "rejected"


async def unsettled_orders(database: Database, user_id: int | None = None) -> list[int]:
    """Live orders the exchange has not settled yet: pending (maybe sent) or open."""
    async with database.sessions() as session:
        query = select(Order.id).where(
            Order.status.in_(UNSETTLED_ORDER_STATUSES), Order.mode == BotMode.LIVE
        )
        if user_id is not None:
            query = query.where(Order.user_id == user_id)
        return list(await session.scalars(query.order_by(Order.id)))


async def reconcile(ctx: LiveContext, user_id: int | None = None) -> dict[str, int]:
    """Settle every pending or open live order, then sell what liquidating bots still hold.

    Runs on start and at every tick, so an order in flight is settled as soon as
    the exchange answers again.
    """
    outcomes: dict[str, int] = {}
    for order_id in await unsettled_orders(ctx.database, user_id):
        outcome = await settle_order(ctx, order_id)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    for outcome in (await liquidate(ctx, user_id)).values():
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


async def liquidate(ctx: LiveContext, user_id: int | None = None) -> dict[int, Outcome]:
    """Sell what liquidating live bots still hold (`engine.panic`), and settle those sells now.

    Two passes at once queue on the bots' row locks; where the database has none
    (SQLite), the second one's insert of the same sell fails its unique client
    order id, and that pass reads again: it finds the sell in flight.
    """
    for attempt in range(2):
        try:
            async with ctx.database.transaction() as session:
                order_ids = await liquidation_orders(session, user_id)
            break
        except IntegrityError:
            if attempt:
                raise
    return {order_id: await settle_order(ctx, order_id) for order_id in order_ids}
