"""Live trading a trader can trust with money (issue 17), through real ccxt and the emulator.

One decision in flight per bot and symbol, an idempotent kill switch, history kept
when a bot is deleted, capital as a budget, the exchange's rules checked before
sending, fees taken in the coin bought, partial fills, and one cooldown per
exchange shared by every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.util import await_only

from db.models import (
    Bot,
    BotMode,
    BotResult,
    BotStatus,
    Fill,
    Notification,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    Trade,
)
from db.session import Database
from db.types import utcnow
from engine.exchanges.ccxt_gateway import CcxtGateway
from engine.exchanges.cooldowns import RedisCooldowns
from engine.exchanges.errors import OrderRejected
from engine.exchanges.gateway import OrderRequest
from engine.live_orders import LiveContext, liquidate, reconcile, settle_order, unsettled_orders
from engine.tick import run_tick
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.use_cases.bots import (
    delete_bot,
    kill_switch,
    list_bots,
    set_mode,
    show_bot,
    stop_bot,
)
from robotrader.use_cases.exchanges import connect_exchange
from robotrader.use_cases.portfolio import profit, trades
from tests.emulators.exchange import ExchangeEmulator
from tests.engine.conftest import make_user, running_bot
from tests.engine.test_live_exchange import _live_bot, calm_market, fake_key, feed_of
from tests.services import REDIS_URL

MINUTE = 60_000
# Each dialect's order endpoints: placing and looking an order up both match.
ORDER_PATHS = {"binance": "/api/v3/order", "bybit": "/v5/order/"}


def _now() -> int:
    return int(time.time() * 1000)


def slow_orders(exchange: ExchangeEmulator, venue: str, times: int = 2) -> None:
    """The next order request is processed but answered too late, and so is the lookup."""
    exchange.inject(venue, "timeout", path_contains=ORDER_PATHS[venue], times=times, delay=5)


def sharp_drop(exchange: ExchangeEmulator, venue: str, before: float, after: float) -> int:
    """Candles at ``before`` until the last closed one, which closes at ``after``; now_ms.

    A minute ahead of the clock, so the drop is a new candle to the feed (never its cache).
    """
    now = _now() + MINUTE
    last_closed = (now // MINUTE - 1) * MINUTE
    start = last_closed - 200 * MINUTE
    rows = [
        [t, *([before] * 4 if t < last_closed else [after] * 4), 1.0]
        for t in range(start, last_closed + 60 * MINUTE, MINUTE)
    ]
    exchange.set_candles(venue, "BTC/USDT", "1m", rows)
    exchange.set_price(venue, "BTC/USDT", after)
    return now


async def _orders(app: App, bot_id: int) -> list[Order]:
    async with app.database.sessions() as session:
        return list(await session.scalars(select(Order).where(Order.bot_id == bot_id)))


async def _position(app: App, bot_id: int) -> Position | None:
    async with app.database.sessions() as session:
        found: Position | None = await session.scalar(
            select(Position).where(Position.bot_id == bot_id)
        )
        return found


def _ctx(app: App) -> LiveContext:
    return app.live


@contextlib.contextmanager
def held_after(
    database: Database, *fragments: str, until: asyncio.Event, within: float = 10.0
) -> Iterator[asyncio.Event]:
    """The first statement whose SQL holds every fragment, once run, holds its session
    until ``until`` is set (``within`` seconds at most): whatever runs meanwhile
    interleaves right there. The event yielded is set when the session holds.
    """
    holding = asyncio.Event()

    def hold(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if holding.is_set() or not all(f in statement for f in fragments):
            return
        holding.set()
        with contextlib.suppress(TimeoutError):
            await_only(asyncio.wait_for(until.wait(), within))

    event.listen(database.engine.sync_engine, "after_cursor_execute", hold)
    try:
        yield holding
    finally:
        event.remove(database.engine.sync_engine, "after_cursor_execute", hold)


# ---------------------------------------------------------------------------------------
# 1. One decision in flight per bot and symbol
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("venue", ["binance", "bybit"])
async def test_an_unsettled_buy_holds_the_bot_for_candle_after_candle(
    live_app: App, exchange_emulator: ExchangeEmulator, venue: str
) -> None:
    """DCA wants a base order at every candle while flat: the slow first one is the only one."""
    _, bot_id, secrets = await _live_bot(live_app, exchange_emulator, venue)
    calm_market(exchange_emulator, venue)
    feed = feed_of(live_app)
    now = _now()
    first = await run_tick(live_app.database, feed, now_ms=now)
    assert len(first.live_orders) == 1
    slow_orders(exchange_emulator, venue)
    assert await settle_order(_ctx(live_app), first.live_orders[0]) == "unknown"

    for candle in (1, 2):  # two decision boundaries later, the condition still holds
        later = await run_tick(live_app.database, feed, now_ms=now + candle * MINUTE)
        assert later.live_orders == [] and later.waiting_for_exchange == 1
    assert len(await _orders(live_app, bot_id)) == 1

    exchange_emulator.clear_faults()
    await reconcile(_ctx(live_app))  # the exchange answers again: found, booked
    placed = exchange_emulator.orders(venue, secrets.api_key.get_secret_value())
    assert len(placed) == 1
    (order,) = await _orders(live_app, bot_id)
    assert order.status == OrderStatus.FILLED and order.exchange_order_id == placed[0].id
    position = await _position(live_app, bot_id)
    assert position is not None and position.entries == 1


@pytest.mark.parametrize("venue", ["binance", "bybit"])
async def test_a_stop_loss_that_stays_triggered_sells_once(
    live_app: App, exchange_emulator: ExchangeEmulator, venue: str
) -> None:
    _, bot_id, secrets = await _live_bot(live_app, exchange_emulator, venue)
    async with live_app.database.transaction() as session:
        await session.execute(update(Bot).where(Bot.id == bot_id).values(stop_loss_pct=3))
    calm_market(exchange_emulator, venue)
    feed = feed_of(live_app)
    bought = await run_tick(live_app.database, feed, now_ms=_now())
    assert await settle_order(_ctx(live_app), bought.live_orders[0]) == "filled"

    price = float(exchange_emulator.price(venue, "BTC/USDT"))
    now = sharp_drop(exchange_emulator, venue, price, price * 0.9)  # 10 % down: stop loss
    stop = await run_tick(live_app.database, feed, now_ms=now)
    assert len(stop.live_orders) == 1
    slow_orders(exchange_emulator, venue)
    assert await settle_order(_ctx(live_app), stop.live_orders[0]) == "unknown"
    for candle in (1, 2):
        again = await run_tick(live_app.database, feed, now_ms=now + candle * MINUTE)
        assert again.live_orders == [] and again.waiting_for_exchange == 1

    exchange_emulator.clear_faults()
    await reconcile(_ctx(live_app))
    sells = [
        o
        for o in exchange_emulator.orders(venue, secrets.api_key.get_secret_value())
        if o.side == "sell"
    ]
    assert len(sells) == 1
    assert await _position(live_app, bot_id) is None
    async with live_app.database.sessions() as session:
        closed = (await session.scalars(select(Trade).where(Trade.bot_id == bot_id))).all()
    assert [t.exit_reason for t in closed] == ["stop_loss"]


async def test_paper_bots_settle_inside_the_tick_and_never_wait(live_app: App) -> None:
    user = await make_user(live_app)
    bot_id = await running_bot(live_app, user)
    feed = feed_of(live_app)
    report = await run_tick(live_app.database, feed, now_ms=_now())
    assert report.orders_filled == 1 and report.waiting_for_exchange == 0
    assert [o.status for o in await _orders(live_app, bot_id)] == [OrderStatus.FILLED]


async def test_the_bot_card_shows_the_order_waiting_for_the_exchange(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    user, bot_id, _ = await _live_bot(live_app, exchange_emulator)
    calm_market(exchange_emulator, "binance")
    report = await run_tick(live_app.database, feed_of(live_app), now_ms=_now())
    summary = await show_bot(live_app, user, bot_id)
    assert [o.id for o in summary.in_flight] == report.live_orders
    assert summary.in_flight[0].side == "buy" and summary.in_flight[0].symbol == "BTC/USDT"


# ---------------------------------------------------------------------------------------
# 2. An idempotent kill switch
# ---------------------------------------------------------------------------------------
async def _live_position(
    app: App, exchange: ExchangeEmulator, venue: str = "binance"
) -> tuple[int, int, str]:
    user, bot_id, secrets = await _live_bot(app, exchange, venue)
    calm_market(exchange, venue)
    report = await run_tick(app.database, feed_of(app), now_ms=_now())
    assert await settle_order(_ctx(app), report.live_orders[0]) == "filled"
    return user, bot_id, secrets.api_key.get_secret_value()


def _sells(exchange: ExchangeEmulator, venue: str, key: str) -> list[object]:
    return [o for o in exchange.orders(venue, key) if o.side == "sell"]


@pytest.mark.parametrize("venue", ["binance", "bybit"])
async def test_panic_pressed_twice_while_the_sell_answer_is_slow_sells_once(
    live_app: App, exchange_emulator: ExchangeEmulator, venue: str
) -> None:
    user, bot_id, key = await _live_position(live_app, exchange_emulator, venue)
    held = exchange_emulator.balances(venue, key)["BTC"].total
    # The trader also holds a coin of their own: a second sell would not be refused for
    # lack of funds, it would sell it.
    exchange_emulator.set_balance(venue, key, "BTC", held + 1)
    slow_orders(exchange_emulator, venue)

    first = await kill_switch(live_app, user, close_positions=True)
    assert first.bots_stopped == 1 and first.positions_sold == 0 and first.waiting == 1
    second = await kill_switch(live_app, user, close_positions=True)  # the sell is found
    assert second.positions_sold == 1 and second.waiting == 0

    assert len(_sells(exchange_emulator, venue, key)) == 1
    # The bot's part sold (to the step's dust), the trader's own coin untouched.
    assert Decimal(1) <= exchange_emulator.balances(venue, key)["BTC"].total < Decimal("1.00001")
    assert held > 0
    assert await _position(live_app, bot_id) is None
    async with live_app.database.sessions() as session:
        fills = await session.scalar(
            select(func.count()).select_from(Fill).join(Order).where(Order.bot_id == bot_id)
        )
        closed = await session.scalar(
            select(func.count()).select_from(Trade).where(Trade.bot_id == bot_id)
        )
    assert (fills, closed) == (2, 1)  # the buy and the sell, each booked once
    third = await kill_switch(live_app, user, close_positions=True)  # minutes later: nothing
    assert (third.positions_sold, third.waiting) == (0, 0)
    assert len(_sells(exchange_emulator, venue, key)) == 1


async def test_panic_pressed_ten_times_at_once_sells_each_position_once(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    user, bot_id, key = await _live_position(live_app, exchange_emulator)
    held = exchange_emulator.balances("binance", key)["BTC"].total
    exchange_emulator.set_balance("binance", key, "BTC", held + 1)  # the trader's own coin
    slow_orders(exchange_emulator, "binance")
    await asyncio.gather(*(kill_switch(live_app, user, close_positions=True) for _ in range(10)))
    exchange_emulator.clear_faults()
    await reconcile(_ctx(live_app))  # the engine's next pass settles what was still waiting
    assert len(_sells(exchange_emulator, "binance", key)) == 1
    assert await _position(live_app, bot_id) is None
    async with live_app.database.sessions() as session:
        panic = (
            await session.scalars(
                select(Order)
                .where(Order.bot_id == bot_id, Order.reason == "panic")
                .order_by(Order.id)
            )
        ).all()
        bot = await session.get(Bot, bot_id)
    assert [o.status for o in panic] == [OrderStatus.FILLED]
    assert bot is not None and bot.status == BotStatus.STOPPED and bot.liquidating_since is None


def _asked(exchange: ExchangeEmulator, path: str, since: int) -> bool:
    return any(path in call.path for call in exchange.calls[since:])


async def _liquidating(app: App, bot_id: int) -> None:
    """The kill switch's first half: the bot stopped and marked to sell what it holds."""
    async with app.database.transaction() as session:
        await session.execute(
            update(Bot)
            .where(Bot.id == bot_id)
            .values(status=BotStatus.STOPPED, liquidating_since=utcnow())
        )


async def _panic_statuses(app: App, bot_id: int) -> list[OrderStatus]:
    async with app.database.sessions() as session:
        return list(
            await session.scalars(
                select(Order.status)
                .where(Order.bot_id == bot_id, Order.reason == "panic")
                .order_by(Order.id)
            )
        )


async def test_two_liquidation_passes_at_once_sell_a_position_once(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    """A pass that found nothing in flight is overtaken by another that records and sells.

    Two taps' passes (or a tap and a worker's reconciliation) whose reads interleave
    must still make one sell: the second must not count the first's sell among the
    earlier ones and sell the position again under the next id.
    """
    _, bot_id, key = await _live_position(live_app, exchange_emulator)
    held = exchange_emulator.balances("binance", key)["BTC"].total
    exchange_emulator.set_balance("binance", key, "BTC", held + 1)  # the trader's own coin
    await _liquidating(live_app, bot_id)
    other_passed = asyncio.Event()
    in_flight_read = ("SELECT orders.symbol", "orders.status IN")
    with held_after(live_app.database, *in_flight_read, until=other_passed) as holding:
        first = asyncio.create_task(liquidate(_ctx(live_app)))
        await holding.wait()  # the first pass has read what is in flight: nothing yet
        second = asyncio.create_task(liquidate(_ctx(live_app)))
        await asyncio.wait([second], timeout=2)  # done, or queued behind the first
        other_passed.set()
        await asyncio.gather(first, second)
    assert len(_sells(exchange_emulator, "binance", key)) == 1
    assert await _panic_statuses(live_app, bot_id) == [OrderStatus.FILLED]
    assert await _position(live_app, bot_id) is None


async def test_a_pass_reading_while_the_sell_is_booked_does_not_sell_again(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    """The sell in flight is booked (position closed) between a pass's reads."""
    user, bot_id, key = await _live_position(live_app, exchange_emulator)
    held = exchange_emulator.balances("binance", key)["BTC"].total
    exchange_emulator.set_balance("binance", key, "BTC", held + 1)
    slow_orders(exchange_emulator, "binance")
    assert (await kill_switch(live_app, user, close_positions=True)).waiting == 1
    exchange_emulator.clear_faults()
    (sell,) = await unsettled_orders(live_app.database, user)
    booked = asyncio.Event()
    positions_read = ("FROM positions", "WHERE positions.bot_id =")
    with held_after(live_app.database, *positions_read, until=booked) as holding:
        passing = asyncio.create_task(liquidate(_ctx(live_app)))
        await holding.wait()  # the pass has read the position, still open
        settling = asyncio.create_task(settle_order(_ctx(live_app), sell))
        await asyncio.wait([settling], timeout=2)  # found filled and booked, or queued
        booked.set()
        await asyncio.gather(passing, settling)
    assert len(_sells(exchange_emulator, "binance", key)) == 1
    assert await _panic_statuses(live_app, bot_id) == [OrderStatus.FILLED]
    assert await _position(live_app, bot_id) is None


async def test_a_settlement_whose_claim_ran_out_never_sends(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    """A process slowed past its claim (a loaded machine, a slow answer) has lost the order.

    Another process took it over once the claim ran out and sent it; the slow one
    must not send the same client order id again: Binance takes a reused id once
    the first order is filled, so the exchange would fill both.
    """
    _, bot_id, secrets = await _live_bot(live_app, exchange_emulator)
    calm_market(exchange_emulator, "binance")
    (order_id,) = (await run_tick(live_app.database, feed_of(live_app), now_ms=_now())).live_orders
    # The slow process's balance check (before it sends) is answered 2.5 s late.
    exchange_emulator.inject("binance", "timeout", path_contains="/api/v3/account", delay=2.5)
    calls = len(exchange_emulator.calls)
    slow = asyncio.create_task(settle_order(_ctx(live_app), order_id))
    async with asyncio.timeout(10):
        while not _asked(exchange_emulator, "/api/v3/account", calls):  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # the emulator's thread logs the call: no event to await
    async with live_app.database.transaction() as session:  # CLAIM_FOR has passed
        await session.execute(
            update(Order)
            .where(Order.id == order_id)
            .values(claimed_until=utcnow() - timedelta(seconds=1))
        )
    assert await settle_order(_ctx(live_app), order_id) == "filled"  # taken over and sent
    assert await slow == "busy"
    key = secrets.api_key.get_secret_value()
    assert len(exchange_emulator.orders("binance", key)) == 1
    (order,) = await _orders(live_app, bot_id)
    assert order.status == OrderStatus.FILLED and order.submit_attempts == 1


async def test_panic_cancels_a_resting_order_on_the_exchange_and_books_its_filled_part(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    """An order already sent is never marked cancelled on our word: the exchange confirms."""
    user, bot_id, key = await _partly_filled_grid_buy(live_app, exchange_emulator)
    # The market moves up, away from the resting buy; sellers are plenty again.
    exchange_emulator.set_price(
        "binance", "BTC/USDT", exchange_emulator.price("binance", "BTC/USDT") * Decimal("1.01")
    )
    exchange_emulator.set_depth("binance", "BTC/USDT", None)
    result = await kill_switch(live_app, user, close_positions=True)
    assert result.orders_canceled == 1
    (resting,) = [o for o in exchange_emulator.orders("binance", key) if o.type == "limit"]
    assert resting.status == "canceled" and resting.filled == Decimal("0.0005")
    assert len(_sells(exchange_emulator, "binance", key)) == 1  # then what it bought is sold
    assert await _position(live_app, bot_id) is None


async def test_an_order_never_sent_is_cancelled_here(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    user, bot_id, key = await _live_bot(live_app, exchange_emulator)
    calm_market(exchange_emulator, "binance")
    await run_tick(live_app.database, feed_of(live_app), now_ms=_now())
    result = await kill_switch(live_app, user, close_positions=False)
    assert result.orders_canceled == 1
    assert [o.status for o in await _orders(live_app, bot_id)] == [OrderStatus.CANCELED]
    assert exchange_emulator.orders("binance", key.api_key.get_secret_value()) == []


# ---------------------------------------------------------------------------------------
# 3. History is never lost
# ---------------------------------------------------------------------------------------
async def test_delete_is_refused_while_an_order_waits_for_the_exchange(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    user, bot_id, _ = await _live_bot(live_app, exchange_emulator)
    calm_market(exchange_emulator, "binance")
    report = await run_tick(live_app.database, feed_of(live_app), now_ms=_now())
    slow_orders(exchange_emulator, "binance")
    assert await settle_order(_ctx(live_app), report.live_orders[0]) == "unknown"
    await stop_bot(live_app, user, bot_id)
    with pytest.raises(UserError) as refused:
        await delete_bot(live_app, user, bot_id)
    assert refused.value.key == "bot_orders_in_flight"
    exchange_emulator.clear_faults()
    await reconcile(_ctx(live_app))  # settled (filled): now it holds a position
    with pytest.raises(UserError) as holding:
        await delete_bot(live_app, user, bot_id)
    assert holding.value.key == "close_positions_first"


async def test_a_deleted_bot_keeps_its_trades_in_profit_and_trades(live_app: App) -> None:
    user = await make_user(live_app)
    bot_id = await running_bot(live_app, user, name="keeper")
    await run_tick(live_app.database, feed_of(live_app), now_ms=_now())
    await kill_switch(live_app, user, close_positions=True)  # a closed paper trade
    before = {p.period: (p.pnl, p.trades) for p in await profit(live_app, user)}
    assert before["all"][1] == 1

    deleted = await delete_bot(live_app, user, bot_id)
    assert deleted.name == "keeper"
    assert await list_bots(live_app, user) == []
    after = {p.period: (p.pnl, p.trades) for p in await profit(live_app, user)}
    assert after == before
    (trade,) = await trades(live_app, user)
    assert trade.bot == "keeper" and trade.bot_deleted
    async with live_app.database.sessions() as session:
        orders = await session.scalar(
            select(func.count()).select_from(Order).where(Order.bot_id == bot_id)
        )
    assert orders == 2
    again = await running_bot(live_app, user, name="keeper")  # the name is free again
    assert again != bot_id


# ---------------------------------------------------------------------------------------
# 4. Capital is a budget
# ---------------------------------------------------------------------------------------
async def test_a_bot_that_lost_half_its_capital_buys_half_as_much(live_app: App) -> None:
    user = await make_user(live_app)
    fresh = await running_bot(live_app, user, name="fresh")
    burnt = await running_bot(live_app, user, name="burnt")
    async with live_app.database.transaction() as session:
        session.add(BotResult(bot_id=burnt, realized_pnl=Decimal(-500)))
    await run_tick(live_app.database, feed_of(live_app), now_ms=_now())
    (full,) = await _orders(live_app, fresh)
    (half,) = await _orders(live_app, burnt)
    assert half.amount == pytest.approx(full.amount / 2, rel=Decimal("1e-9"))


async def test_realised_pnl_is_kept_per_bot_as_trades_close(live_app: App) -> None:
    user = await make_user(live_app)
    bot_id = await running_bot(live_app, user)
    await run_tick(live_app.database, feed_of(live_app), now_ms=_now())
    await kill_switch(live_app, user, close_positions=True)
    async with live_app.database.sessions() as session:
        kept = await session.get(BotResult, bot_id)
        pnl = await session.scalar(select(Trade.pnl).where(Trade.bot_id == bot_id))
    assert kept is not None and pnl is not None and kept.realized_pnl == pnl < 0  # fees


# ---------------------------------------------------------------------------------------
# 5. The exchange's rules before sending
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("venue", ["binance", "bybit"])
async def test_amounts_are_rounded_to_the_step_and_minimums_checked_before_sending(
    live_app: App, exchange_emulator: ExchangeEmulator, venue: str
) -> None:
    _, _, secrets = await _live_bot(live_app, exchange_emulator, venue)
    client = await live_app.pool.private(venue, secrets)
    gateway = CcxtGateway(client)
    price = exchange_emulator.price(venue, "BTC/USDT")
    try:
        request = OrderRequest(
            "BTC/USDT", OrderSide.BUY, OrderType.MARKET, Decimal("0.00123456789"),
            f"rt{uuid.uuid4().hex[:30]}", reference_price=price,
        )  # fmt: skip
        amount, _ = gateway.rounded(request)
        assert amount == Decimal("0.00123")  # the emulator's LOT_SIZE step: 0.00001
        exchange_emulator.reset_calls()
        tiny = OrderRequest(
            "BTC/USDT", OrderSide.BUY, OrderType.MARKET, Decimal("0.00001"),
            f"rt{uuid.uuid4().hex[:30]}", reference_price=price,
        )  # fmt: skip
        if venue == "binance":  # 0.65 USDT: under Binance's 5 USDT NOTIONAL filter
            with pytest.raises(OrderRejected) as caught:
                await gateway.place_order(tiny)
            assert caught.value.reason == "below_minimum"
            assert "value 5" in caught.value.detail and "USDT" in caught.value.detail
            assert not [c for c in exchange_emulator.calls if "order" in c.path]
        huge = OrderRequest(
            "BTC/USDT", OrderSide.BUY, OrderType.MARKET, Decimal(100_000),
            f"rt{uuid.uuid4().hex[:30]}", reference_price=price,
        )  # fmt: skip
        with pytest.raises(OrderRejected) as over:
            await gateway.place_order(huge)
        assert over.value.reason == "above_maximum"
        assert not [c for c in exchange_emulator.calls if "order" in c.path]
    finally:
        await client.close()


async def test_a_symbol_the_exchange_does_not_list_cannot_be_traded_even_offline(
    app: App,
) -> None:
    """Offline (the replay feed) the shipped catalogue decides, not the symbol's shape."""
    user = await make_user(app)
    with pytest.raises(UserError) as refused:
        await running_bot(app, user, symbols=["FOO/USDT"])
    assert refused.value.key == "unknown_symbol"
    await running_bot(app, user, symbols=["ETH/BRL"], name="brl")  # Binance lists it
    with pytest.raises(UserError):
        await running_bot(app, user, exchange="bybit", symbols=["DOGE/BRL"], name="nope")


async def test_online_the_exchange_s_own_markets_decide(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    user = await make_user(live_app)
    await running_bot(live_app, user, symbols=["ADA/USDT"])  # the emulator lists it
    with pytest.raises(UserError) as refused:
        await running_bot(live_app, user, symbols=["TAO/USDT"], name="tao")  # it does not
    assert refused.value.key == "unknown_symbol"


async def test_a_rule_breaking_order_is_told_once_a_day(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    """A bot whose budget is under the minimum would be refused at every buy signal."""
    user, bot_id, key = await _live_bot(live_app, exchange_emulator)
    calm_market(exchange_emulator, "binance")
    async with live_app.database.transaction() as session:
        session.add(BotResult(bot_id=bot_id, realized_pnl=Decimal(-985)))  # 15 USDT left
    feed = feed_of(live_app)
    now = _now()
    for candle in range(3):
        report = await run_tick(live_app.database, feed, now_ms=now + candle * MINUTE)
        for order_id in report.live_orders:
            assert await settle_order(_ctx(live_app), order_id) == "rejected"
    assert exchange_emulator.orders("binance", key.api_key.get_secret_value()) == []
    async with live_app.database.sessions() as session:
        told = (
            await session.scalars(
                select(Notification.payload).where(
                    Notification.user_id == user, Notification.kind == "order_rejected"
                )
            )
        ).all()
    assert len(told) == 1 and told[0]["reason"] == "below_minimum"
    assert "5" in told[0]["limits"]


# ---------------------------------------------------------------------------------------
# 6. Fees in the base currency
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("venue", ["binance", "bybit"])
async def test_a_buy_settled_by_lookup_is_booked_net_of_its_base_fee(
    live_app: App, exchange_emulator: ExchangeEmulator, venue: str
) -> None:
    user, bot_id, secrets = await _live_bot(live_app, exchange_emulator, venue)
    key = secrets.api_key.get_secret_value()
    calm_market(exchange_emulator, venue)
    report = await run_tick(live_app.database, feed_of(live_app), now_ms=_now())
    # The order is placed and filled, its answer lost: found by lookup (Binance's GET
    # order carries no commission).
    slow_orders(exchange_emulator, venue, times=1)
    assert await settle_order(_ctx(live_app), report.live_orders[0]) == "filled"
    held = exchange_emulator.balances(venue, key)["BTC"].total
    position = await _position(live_app, bot_id)
    assert position is not None and position.amount == held
    (placed,) = exchange_emulator.orders(venue, key)
    assert held == placed.filled - placed.fee
    async with live_app.database.sessions() as session:
        told = await session.scalar(
            select(Notification.payload).where(
                Notification.user_id == user, Notification.kind == "trade_opened"
            )
        )
    assert told is not None and Decimal(told["amount"]) == held

    await kill_switch(live_app, user, close_positions=True)  # a full sell of the position
    (sell,) = _sells(exchange_emulator, venue, key)
    assert sell.amount <= held and sell.status == "filled"  # type: ignore[attr-defined]
    assert await _position(live_app, bot_id) is None


# ---------------------------------------------------------------------------------------
# 8. Partial fills
# ---------------------------------------------------------------------------------------
async def _partly_filled_grid_buy(app: App, exchange: ExchangeEmulator) -> tuple[int, int, str]:
    """A live grid bot whose limit buy met 0.0005 BTC of depth: open, partly filled."""
    user = await make_user(app, name=f"grid{uuid.uuid4().hex[:6]}")
    secrets = fake_key(exchange, "G")
    await connect_exchange(app, user, "binance", secrets)
    price = float(exchange.price("binance", "BTC/USDT"))
    # Lines 1 % apart, none near the price: closing 1 % lower crosses one line down.
    bot_id = await running_bot(
        app, user, strategy="grid",
        parameters={"lower": price * 0.953, "upper": price * 1.053, "levels": 11},
    )  # fmt: skip
    await set_mode(app, user, bot_id, BotMode.LIVE, confirmed=True)
    now = sharp_drop(exchange, "binance", price, price * 0.99)
    exchange.set_depth("binance", "BTC/USDT", "0.0005")
    report = await run_tick(app.database, feed_of(app), now_ms=now)
    assert len(report.live_orders) == 1
    assert await settle_order(app.live, report.live_orders[0]) == "open"
    return user, bot_id, secrets.api_key.get_secret_value()


async def test_a_partial_fill_is_booked_and_completed_across_a_restart(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    _, bot_id, key = await _partly_filled_grid_buy(live_app, exchange_emulator)
    (order,) = await _orders(live_app, bot_id)
    assert order.type == OrderType.LIMIT and order.status == OrderStatus.OPEN
    assert order.filled == Decimal("0.0005")
    position = await _position(live_app, bot_id)
    assert position is not None
    assert position.amount == exchange_emulator.balances("binance", key)["BTC"].total

    # The next candle: still open, so the bot waits.
    again = await run_tick(live_app.database, feed_of(live_app), now_ms=_now() + MINUTE)
    assert again.live_orders == [] and again.waiting_for_exchange == 1

    # A restart: a new process (its own clients) reconciles the rest once it fills.
    exchange_emulator.add_depth("binance", "BTC/USDT", "1")
    restarted = App.from_settings(live_app.settings, live_app.database)
    restarted.pool.timeout_ms = 3_000
    try:
        await reconcile(restarted.live)
    finally:
        await restarted.pool.close()
    (order,) = await _orders(live_app, bot_id)
    assert order.status == OrderStatus.FILLED and order.filled == order.amount
    position = await _position(live_app, bot_id)
    assert position is not None
    assert position.amount == exchange_emulator.balances("binance", key)["BTC"].total
    async with live_app.database.sessions() as session:
        fills = (await session.scalars(select(Fill.amount).where(Fill.order_id == order.id))).all()
    assert sum(fills) == order.amount and len(fills) == 2
    exchange_emulator.set_depth("binance", "BTC/USDT", None)


async def test_an_expired_partly_filled_order_is_cancelled_on_the_exchange(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    _, bot_id, key = await _partly_filled_grid_buy(live_app, exchange_emulator)
    async with live_app.database.transaction() as session:  # its candle has closed
        await session.execute(
            update(Order).where(Order.bot_id == bot_id).values(expires_at=Order.created_at)
        )
    await reconcile(live_app.live)
    (order,) = await _orders(live_app, bot_id)
    assert order.status == OrderStatus.CANCELED and order.filled == Decimal("0.0005")
    (resting,) = exchange_emulator.orders("binance", key)[-1:]
    assert resting.status == "canceled"
    position = await _position(live_app, bot_id)
    assert position is not None and position.amount > 0  # the filled part is held
    exchange_emulator.set_depth("binance", "BTC/USDT", None)


# ---------------------------------------------------------------------------------------
# 9. One exchange, one cooldown, seen by every worker
# ---------------------------------------------------------------------------------------
async def test_after_a_429_no_other_worker_calls_the_exchange_before_retry_after(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    prefix = f"rt-test-cooldown-{uuid.uuid4().hex[:8]}:"
    workers = [
        LiveContext(
            live_app.database, live_app.pool, live_app.vault, RedisCooldowns(REDIS_URL, prefix)
        )
        for _ in range(2)
    ]
    try:
        orders = []
        for _ in range(2):
            await _live_bot(live_app, exchange_emulator)
        calm_market(exchange_emulator, "binance")
        report = await run_tick(live_app.database, feed_of(live_app), now_ms=_now())
        orders = report.live_orders
        assert len(orders) >= 2
        exchange_emulator.inject("binance", "rate_limit", path_contains="/api/v3/order")
        assert await settle_order(workers[0], orders[0]) == "deferred"
        exchange_emulator.reset_calls()
        assert await settle_order(workers[1], orders[1]) == "deferred"
        assert exchange_emulator.calls == [], "the other worker waited out Retry-After"
        assert await workers[1].cooldowns.remaining(["binance"]) > 0
    finally:
        for worker in workers:
            await worker.cooldowns.close()
        exchange_emulator.reset_rate_limits("binance")


async def test_an_order_decided_before_its_bot_was_stopped_is_never_sent(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    user, bot_id, secrets = await _live_bot(live_app, exchange_emulator)
    calm_market(exchange_emulator, "binance")
    report = await run_tick(live_app.database, feed_of(live_app), now_ms=_now())
    await stop_bot(live_app, user, bot_id)
    assert await settle_order(_ctx(live_app), report.live_orders[0]) == "canceled"
    assert exchange_emulator.orders("binance", secrets.api_key.get_secret_value()) == []
    assert [o.status for o in await _orders(live_app, bot_id)] == [OrderStatus.CANCELED]
