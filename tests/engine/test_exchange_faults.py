"""Exchange faults through the emulator: the engine retries where safe and never double-orders."""

from __future__ import annotations

import time

import pytest

from db.models import Order, OrderStatus
from engine.exchanges.cooldowns import MemoryCooldowns
from engine.live_orders import RESEND_AFTER, LiveContext, reconcile, settle_order
from engine.tick import run_tick
from robotrader.app import App
from tests.emulators.exchange import ExchangeEmulator
from tests.engine.test_live_exchange import _live_bot, calm_market, feed_of


async def _pending_live_order(app: App, exchange: ExchangeEmulator) -> tuple[int, str, LiveContext]:
    _, _, secrets = await _live_bot(app, exchange)
    calm_market(exchange, "binance")
    report = await run_tick(app.database, feed_of(app), now_ms=int(time.time() * 1000))
    assert len(report.live_orders) == 1
    return (
        report.live_orders[0],
        secrets.api_key.get_secret_value(),
        LiveContext(app.database, app.pool, app.vault),
    )


async def resend_window_passes(app: App, order_id: int) -> None:
    """RESEND_AFTER later: a request lost on the way could no longer land unseen."""
    async with app.database.transaction() as session:
        order = await session.get(Order, order_id)
        assert order is not None and order.last_sent_at is not None
        order.last_sent_at -= RESEND_AFTER


async def _status(app: App, order_id: int) -> OrderStatus:
    async with app.database.sessions() as session:
        order = await session.get(Order, order_id)
        assert order is not None
        return OrderStatus(order.status)


@pytest.mark.parametrize("fault", ["http_500", "http_503", "disconnect"])
async def test_refused_request_is_sent_again_once(
    live_app: App, exchange_emulator: ExchangeEmulator, fault: str
) -> None:
    order_id, key, ctx = await _pending_live_order(live_app, exchange_emulator)
    exchange_emulator.inject("binance", fault, path_contains="/api/v3/order", times=1)  # type: ignore[arg-type]
    assert await settle_order(ctx, order_id) == "unknown"
    assert exchange_emulator.orders("binance", key) == []
    await reconcile(ctx)  # too soon to prove it absent: a lost request may still land
    assert exchange_emulator.orders("binance", key) == []
    await resend_window_passes(live_app, order_id)
    await reconcile(ctx)  # looks the order up first, finds nothing, sends it
    assert len(exchange_emulator.orders("binance", key)) == 1
    assert await _status(live_app, order_id) == OrderStatus.FILLED


async def test_malformed_answer_to_an_accepted_order_is_reconciled(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    order_id, key, ctx = await _pending_live_order(live_app, exchange_emulator)
    exchange_emulator.inject("binance", "malformed_json", path_contains="/api/v3/order", times=1)
    await settle_order(ctx, order_id)
    await reconcile(ctx)
    assert len(exchange_emulator.orders("binance", key)) == 1
    assert await _status(live_app, order_id) == OrderStatus.FILLED


async def test_rate_limit_is_waited_out_without_getting_banned(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    order_id, key, ctx = await _pending_live_order(live_app, exchange_emulator)
    exchange_emulator.inject("binance", "rate_limit", path_contains="/api/v3/order", times=1)
    assert await settle_order(ctx, order_id) == "deferred"
    assert await ctx.cooldowns.remaining(["binance"]) > 0
    exchange_emulator.reset_calls()
    await reconcile(ctx)  # within Retry-After: the exchange is not called at all
    assert exchange_emulator.calls == []
    assert await _status(live_app, order_id) == OrderStatus.PENDING
    assert isinstance(ctx.cooldowns, MemoryCooldowns)
    ctx.cooldowns.clear()  # ...Retry-After seconds later, on both sides
    exchange_emulator.reset_rate_limits("binance")

    await reconcile(ctx)
    assert len(exchange_emulator.orders("binance", key)) == 1
    assert all(call.status != 418 for call in exchange_emulator.calls), "never banned"
    assert await _status(live_app, order_id) == OrderStatus.FILLED
