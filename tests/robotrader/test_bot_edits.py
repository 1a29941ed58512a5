"""robotrader.use_cases.bot_edits on the real databases: what may change when, audit, next tick."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from db.models import AuditEntry, Bot, BotStatus, Order, Position, Trade
from engine.market_data.cache import MemoryCandleCache
from engine.market_data.feed import MarketDataFeed
from engine.risk import RiskSettings
from engine.sizing import buy_quote
from engine.tick import load_bots, run_tick
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.use_cases.bot_edits import BotEdit, Change, edit_bot
from robotrader.use_cases.bots import BotSpec, create_bot, delete_bot, start_bot, stop_bot
from tests.engine.conftest import make_user, running_bot

NOW = 1_764_000_000_000  # a fixed moment: replay candles are deterministic for it
MINUTE = 60_000


async def refused(call: object) -> UserError:
    with pytest.raises(UserError) as raised:
        await call  # type: ignore[misc]
    return raised.value


async def stopped_bot(app: App, user: int, **values: object) -> int:
    base: dict[str, object] = {
        "exchange": "binance", "symbols": ["BTC/USDT"], "strategy": "sma_crossover",
        "capital": "1000",
    }  # fmt: skip
    base.update(values)
    return (await create_bot(app, user, BotSpec(**base))).id  # type: ignore[arg-type]


async def audit(app: App, user: int) -> list[AuditEntry]:
    async with app.database.sessions() as session:
        return list(
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.user_id == user, AuditEntry.action == "bot.edit")
                .order_by(AuditEntry.id)
            )
        )


async def row(app: App, bot_id: int) -> Bot:
    async with app.database.sessions() as session:
        bot = await session.get(Bot, bot_id)
        assert bot is not None
        return bot


async def test_a_stopped_bot_changes_everything_and_the_audit_says_before_and_after(
    app: App,
) -> None:
    user = await make_user(app)
    bot_id = await stopped_bot(app, user)
    edit = BotEdit(
        options=("tf=1h", "sl=3", "tp=2:50,4:50", "be=1", "fast=7", "capital=500"),
        symbols=["eth/usdt", "BTC/USDT"],
    )
    result = await edit_bot(app, user, bot_id, edit, platform="telegram")
    assert result.applied and not result.from_next_tick
    labels = [c.label for c in result.changes]
    assert labels == [
        "field.symbols", "field.parameters", "field.capital",
        "bot_setting.tf", "bot_setting.sl", "bot_setting.tp", "bot_setting.be",
    ]  # fmt: skip
    assert Change("bot_setting.sl", None, "3") in result.changes
    assert Change("field.capital", "1000", "500") in result.changes
    assert result.settings["tp"] == "2:50,4:50" and result.settings["tf"] == "1h"
    stored = await row(app, bot_id)
    assert stored.symbols == ["ETH/USDT", "BTC/USDT"] and stored.parameters["fast"] == 7
    assert stored.capital == Decimal(500) and stored.timeframe == "1h"
    assert stored.stop_loss_pct == Decimal(3) and stored.breakeven_after_target
    [entry] = await audit(app, user)
    assert entry.platform == "telegram" and entry.detail["bot_id"] == bot_id
    assert {"label": "bot_setting.sl", "before": None, "after": "3"} in entry.detail["changes"]

    # Switching settings off, and a change to nothing at all.
    off = await edit_bot(app, user, bot_id, BotEdit(options=("tp=off", "be=0", "sl=off")))
    assert [(c.label, c.after) for c in off.changes] == [
        ("bot_setting.sl", None), ("bot_setting.tp", None), ("bot_setting.be", None),
    ]  # fmt: skip
    same = await edit_bot(app, user, bot_id, BotEdit(options=("tf=1h",), capital="500.0"))
    assert same.changes == [] and not same.applied
    assert len(await audit(app, user)) == 2  # nothing changed: nothing written


async def test_a_preview_checks_everything_and_writes_nothing(app: App) -> None:
    user = await make_user(app)
    bot_id = await stopped_bot(app, user)
    preview = await edit_bot(app, user, bot_id, BotEdit(options=("sl=2",)), apply=False)
    assert preview.changes == [Change("bot_setting.sl", None, "2")] and not preview.applied
    assert (await row(app, bot_id)).stop_loss_pct is None and await audit(app, user) == []


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (BotEdit(options=("sl=200",)), "bad_option"),
        (BotEdit(options=("nonsense=1",)), "bad_option"),
        (BotEdit(options=("be=1",)), "bad_option"),  # breakeven needs targets
        (BotEdit(options=("tf=off",)), "bad_option"),  # a timeframe cannot be off
        (BotEdit(options=("fast=0",)), "bad_parameter"),
        (BotEdit(capital="5"), "bad_capital"),
        (BotEdit(strategy="martingale"), "unknown_strategy"),
        (BotEdit(exchange="mtgox"), "unknown_exchange"),
        (BotEdit(symbols=["NOPE/USDT"]), "unknown_symbol"),
        (BotEdit(symbols=[" "]), "no_symbols"),
    ],
)
async def test_edits_are_validated_like_creation(app: App, edit: BotEdit, key: str) -> None:
    user = await make_user(app)
    bot_id = await stopped_bot(app, user)
    assert (await refused(edit_bot(app, user, bot_id, edit))).key == key
    assert await audit(app, user) == []


async def test_the_plan_limits_strategies_and_symbols(app: App) -> None:
    user = await make_user(app, plan="free")
    bot_id = await stopped_bot(app, user, strategy="rsi", symbols=["BTC/USDT", "ETH/USDT"])
    assert (await refused(edit_bot(app, user, bot_id, BotEdit(strategy="grid")))).key == (
        "strategy_not_in_plan"
    )
    four = BotEdit(symbols=["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT"])
    error = await refused(edit_bot(app, user, bot_id, four))
    assert error.key == "limit_reached_upgrade" and error.args_["limit"] == "symbols"
    three = await edit_bot(app, user, bot_id, BotEdit(symbols=["SOL/USDT", "BNB/USDT", "XRP/USDT"]))
    assert three.bot.symbols == ["SOL/USDT", "BNB/USDT", "XRP/USDT"]


async def test_a_running_bot_takes_risk_and_capital_but_not_what_it_trades(app: App) -> None:
    user = await make_user(app)
    bot_id = await running_bot(app, user)
    result = await edit_bot(app, user, bot_id, BotEdit(options=("sl=2", "dll=5"), capital=800))
    assert result.from_next_tick and result.bot.status == BotStatus.RUNNING
    for edit, what in [
        (BotEdit(options=("tf=1h",)), "timeframe"),
        (BotEdit(strategy="rsi"), "strategy"),
        (BotEdit(options=("base_order_pct=30",)), "parameters"),
        (BotEdit(exchange="bybit"), "exchange"),
        (BotEdit(symbols=["ETH/USDT"]), "symbols"),
    ]:
        error = await refused(edit_bot(app, user, bot_id, edit))
        assert (error.key, error.args_["what"]) == ("edit_needs_stop", what)
    assert (await row(app, bot_id)).timeframe == "1m"
    # Stopped, the same edit goes through.
    await stop_bot(app, user, bot_id)
    assert (await edit_bot(app, user, bot_id, BotEdit(options=("tf=1h",)))).applied


async def test_an_archived_or_someone_elses_bot_cannot_be_edited(app: App) -> None:
    user, other = await make_user(app, "u1"), await make_user(app, "u2")
    bot_id = await stopped_bot(app, user)
    assert (await refused(edit_bot(app, other, bot_id, BotEdit(options=("sl=2",))))).key == (
        "bot_not_found"
    )
    await delete_bot(app, user, bot_id)
    assert (await refused(edit_bot(app, user, bot_id, BotEdit(options=("sl=2",))))).key == (
        "bot_not_found"
    )


async def test_symbols_held_stay_and_a_bot_holding_positions_keeps_its_exchange(app: App) -> None:
    user = await make_user(app)
    bot_id = await running_bot(app, user, strategy="dca")
    feed = MarketDataFeed(app.pool, MemoryCandleCache(), mode="replay")
    await run_tick(app.database, feed, now_ms=NOW)  # the DCA bot buys BTC/USDT
    await stop_bot(app, user, bot_id)
    for edit in (BotEdit(symbols=["ETH/USDT"]), BotEdit(exchange="bybit")):
        assert (await refused(edit_bot(app, user, bot_id, edit))).key == "close_positions_first"
    more = await edit_bot(app, user, bot_id, BotEdit(symbols=["BTC/USDT", "ETH/USDT"]))
    assert more.bot.symbols == ["BTC/USDT", "ETH/USDT"]


async def test_a_stop_loss_added_to_a_running_bot_acts_on_the_next_tick(app: App) -> None:
    user = await make_user(app)
    bot_id = await running_bot(app, user, strategy="dca")
    feed = MarketDataFeed(app.pool, MemoryCandleCache(), mode="replay")
    await run_tick(app.database, feed, now_ms=NOW)
    # The entry far above the market: 50 % under water, and no stop loss to act on it.
    async with app.database.transaction() as session:
        position = await session.scalar(select(Position).where(Position.bot_id == bot_id))
        assert position is not None
        position.average_entry *= 2
        position.cost *= 2
    await run_tick(app.database, feed, now_ms=NOW + MINUTE)
    async with app.database.sessions() as session:
        assert await session.scalar(select(Trade).where(Trade.bot_id == bot_id)) is None

    result = await edit_bot(app, user, bot_id, BotEdit(options=("sl=5",)))
    assert result.from_next_tick
    await run_tick(app.database, feed, now_ms=NOW + 2 * MINUTE)
    async with app.database.sessions() as session:
        trade = await session.scalar(select(Trade).where(Trade.bot_id == bot_id))
        held = await session.scalar(select(Position).where(Position.bot_id == bot_id))
    assert trade is not None and trade.exit_reason == "stop_loss" and held is None


async def test_capital_lowered_below_what_the_bot_holds_buys_nothing_more(app: App) -> None:
    user = await make_user(app)
    bot_id = await running_bot(app, user, strategy="dca", capital="1000")
    feed = MarketDataFeed(app.pool, MemoryCandleCache(), mode="replay")
    await run_tick(app.database, feed, now_ms=NOW)  # a base order of 20 %: ~200 USDT held
    await edit_bot(app, user, bot_id, BotEdit(capital="10"))
    async with app.database.sessions() as session:
        [state] = await load_bots(session)
    assert state.capital == Decimal(10) and state.budget.committed > Decimal(190)
    assert state.budget.free == 0
    quote = buy_quote(
        state.budget, symbols=1, fraction=Decimal("0.5"), position_value=Decimal(200),
        risk=RiskSettings(), cost_rate=Decimal("0.0015"),
    )  # fmt: skip
    assert quote == 0
    # Ticks go on (the price moves with the replay) and the bot never buys again.
    for minute in range(1, 30):
        report = await run_tick(app.database, feed, now_ms=NOW + minute * MINUTE)
        assert report.orders_rejected == 0
    async with app.database.sessions() as session:
        buys = list(
            await session.scalars(select(Order).where(Order.bot_id == bot_id, Order.side == "buy"))
        )
    assert len(buys) == 1
    # Restarted after a stop, the bot is the same.
    await stop_bot(app, user, bot_id)
    await start_bot(app, user, bot_id)


async def test_an_edit_of_nothing_finds_nothing_on_every_database(app: App) -> None:
    """PostgreSQL's JSONB reorders a DCA's parameters: still the same parameters."""
    user = await make_user(app)
    bot_id = await running_bot(app, user, strategy="dca")
    assert (await edit_bot(app, user, bot_id, BotEdit(), apply=False)).changes == []
    await stop_bot(app, user, bot_id)
    result = await edit_bot(app, user, bot_id, BotEdit(options=("safety_orders=2",)))
    [change] = result.changes
    assert change.label == "field.parameters" and change.before is not None
    assert change.before.split()[0].startswith("base_order_pct=")  # the strategy's order
    assert "safety_orders=2" in (change.after or "")
