"""The embedded engine loop: live orders are settled beside the tick, and soon after recovery."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime

import pytest
from sqlalchemy import select

from db.models import EngineHeartbeat, Order, OrderStatus
from engine.context import EngineContext
from engine.runner import run_engine
from robotrader.app import App
from robotrader.engine_config import engine_config
from tests.emulators.exchange import ExchangeEmulator
from tests.engine.test_live_exchange import _live_bot, calm_market

TICK_SECONDS = 0.3


@pytest.fixture
async def engine(live_app: App) -> AsyncIterator[tuple[EngineContext, asyncio.Event]]:
    config = replace(engine_config(live_app.settings), tick_seconds=TICK_SECONDS)
    context = EngineContext.build(config, live_app.database)
    context.pool.timeout_ms = 1_500
    stop = asyncio.Event()
    yield context, stop
    stop.set()
    await context.close(dispose_database=False)


async def _ticked_at(app: App) -> datetime | None:
    async with app.database.sessions() as session:
        row = await session.get(EngineHeartbeat, "embedded")
        return row.last_tick_at if row is not None else None


async def _orders(app: App) -> list[Order]:
    async with app.database.sessions() as session:
        return list(await session.scalars(select(Order).order_by(Order.id)))


async def _wait_for(check: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not within the time")


async def test_a_slow_order_answer_does_not_hold_up_the_ticks_and_settles_at_the_next(
    live_app: App,
    exchange_emulator: ExchangeEmulator,
    engine: tuple[EngineContext, asyncio.Event],
) -> None:
    """The order is placed, its answer and the lookup's held past the client's timeout."""
    context, stop = engine
    _, _, secrets = await _live_bot(live_app, exchange_emulator)
    calm_market(exchange_emulator, "binance")
    exchange_emulator.inject("binance", "timeout", path_contains="/api/v3/order", times=2, delay=4)
    loop = asyncio.create_task(run_engine(context, stop))
    try:

        async def placed() -> bool:
            return bool(exchange_emulator.orders("binance", secrets.api_key.get_secret_value()))

        await _wait_for(placed, 5)
        # The order request is being held: the tick goes on regardless.
        first = await _ticked_at(live_app)
        await asyncio.sleep(TICK_SECONDS * 4)
        later = await _ticked_at(live_app)
        assert first is not None and later is not None and later > first
        (order,) = await _orders(live_app)
        assert order.status == OrderStatus.PENDING  # in flight, outcome unknown so far

        # Both held answers time out (1.5 s each); the next reconciliation finds the order.
        async def settled() -> bool:
            return [o.status for o in await _orders(live_app)] == [OrderStatus.FILLED]

        await _wait_for(settled, 1.5 * 2 + TICK_SECONDS * 3 + 2)
        assert len(exchange_emulator.orders("binance", secrets.api_key.get_secret_value())) == 1
    finally:
        stop.set()
        await asyncio.wait_for(loop, 15)
