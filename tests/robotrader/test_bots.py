"""robotrader.use_cases.bots on the real databases: create, run, delete, mode, kill switch."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from db.models import (
    AuditEntry,
    Bot,
    BotMode,
    BotStatus,
    Notification,
    PaperBalance,
    Plan,
    Position,
    User,
)
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.use_cases.bot_settings import BotSettings
from robotrader.use_cases.bots import (
    BotSpec,
    check_pairs_in_plan,
    check_room_for_bot,
    create_bot,
    delete_bot,
    kill_switch,
    list_bots,
    normalize_symbol,
    parse_capital,
    set_mode,
    show_bot,
    start_bot,
    stop_bot,
)
from tests.engine.conftest import make_user


def spec(**values: object) -> BotSpec:
    base: dict[str, object] = {
        "exchange": "binance", "symbols": ["BTC/USDT"], "strategy": "dca", "capital": "1000",
    }  # fmt: skip
    base.update(values)
    return BotSpec(**base)  # type: ignore[arg-type]


async def refused(call: object) -> str:
    with pytest.raises(UserError) as raised:
        await call  # type: ignore[misc]
    return raised.value.key


@pytest.mark.parametrize(
    ("raw", "symbol"), [("btc/usdt", "BTC/USDT"), ("ETH-USDT", "ETH/USDT"), ("solusdc", "SOL/USDC")]
)
def test_symbols_are_normalized(raw: str, symbol: str) -> None:
    assert normalize_symbol(raw) == symbol


def test_capital_outside_the_range_is_refused() -> None:
    assert parse_capital("1000,5") == Decimal("1000.5")
    for value in ("5", "20000000", "abc", "NaN"):
        with pytest.raises(UserError):
            parse_capital(value)


async def test_create_stores_a_stopped_paper_bot(app: App) -> None:
    user = await make_user(app)
    settings = BotSettings(stop_loss_pct=Decimal(5))
    bot = await create_bot(app, user, spec(symbols=["btcusdt", "BTC/USDT"], settings=settings))
    assert (bot.name, bot.symbols, bot.mode, bot.status) == (
        "dca-1", ["BTC/USDT"], BotMode.PAPER, BotStatus.STOPPED,
    )  # fmt: skip
    assert bot.capital == Decimal(1000) and bot.settings.stop_loss_pct == Decimal(5)
    async with app.database.sessions() as session:
        stored = await session.get(Bot, bot.id)
        audit = set(
            await session.scalars(select(AuditEntry.action).where(AuditEntry.user_id == user))
        )
    assert stored is not None and stored.user_id == user and stored.signal_secret is None
    assert "bot.create" in audit


async def test_a_signal_bot_gets_its_webhook_secret(app: App) -> None:
    user = await make_user(app)
    bot = await create_bot(app, user, spec(strategy="signal"))
    assert bot.signal_secret and len(bot.signal_secret) >= 24


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"exchange": "mtgox"}, "unknown_exchange"),
        ({"symbols": [" "]}, "no_symbols"),
        ({"symbols": ["BTC/USDT!"]}, "bad_symbol"),
        ({"symbols": [f"C{i}/USDT" for i in range(11)]}, "too_many_symbols"),
        ({"symbols": ["NOPE/USDT"]}, "unknown_symbol"),
        ({"settings": BotSettings(timeframe="7m")}, "bad_option"),
        ({"strategy": "martingale"}, "unknown_strategy"),
        ({"capital": "1"}, "bad_capital"),
        ({"name": "bad/name"}, "bad_bot_name"),
        ({"settings": BotSettings(stop_loss_pct=Decimal(150))}, "bad_option"),
    ],
)
async def test_create_refuses_what_is_wrong(app: App, values: dict[str, object], key: str) -> None:
    user = await make_user(app)
    assert await refused(create_bot(app, user, spec(**values))) == key
    assert await list_bots(app, user) == []


async def test_names_are_unique_per_user_whatever_the_case(app: App) -> None:
    alice, bob = await make_user(app, "alice"), await make_user(app, "bob")
    await create_bot(app, alice, spec(name="Alpha"))
    assert await refused(create_bot(app, alice, spec(name="alpha"))) == "bot_name_taken"
    assert (await create_bot(app, bob, spec(name="alpha"))).name == "alpha"


async def test_the_free_plan_limits_bots_and_strategies(app: App) -> None:
    user = await make_user(app, plan="free")
    assert await refused(create_bot(app, user, spec(strategy="grid"))) == "strategy_not_in_plan"
    await create_bot(app, user, spec(strategy="rsi"))
    with pytest.raises(UserError) as raised:
        await create_bot(app, user, spec(strategy="rsi", name="second"))
    assert raised.value.key == "limit_reached_upgrade"
    assert raised.value.args_ == {
        "limit": "bots", "plan": "free", "maximum": 1, "current": 1, "next_plan": "Pro",
    }  # fmt: skip


async def test_pairs_other_bots_trade_are_free_on_the_plan(app: App) -> None:
    user = await make_user(app, plan="pro")
    await create_bot(app, user, spec(symbols=["BTC/USDT", "ETH/USDT"]))
    async with app.database.transaction() as session:
        found = await session.get(User, user)
        assert found is not None
        found.plan = Plan.FREE  # 3 pairs, 1 bot: the pairs are counted, not the bots here
    await check_pairs_in_plan(app, user, [], ["BTC/USDT", "ETH/USDT", "SOL/USDT"])
    with pytest.raises(UserError) as raised:
        await check_pairs_in_plan(app, user, ["SOL/USDT"], ["ETH/USDT", "XRP/USDT"])
    assert raised.value.args_["current"] == 3 and raised.value.args_["maximum"] == 3
    with pytest.raises(UserError) as raised:
        await check_room_for_bot(app, user)
    assert raised.value.key == "limit_reached_upgrade"


async def test_start_and_stop(app: App) -> None:
    user = await make_user(app)
    bot = await create_bot(app, user, spec(name="alpha"))
    assert (await start_bot(app, user, "Alpha")).status == BotStatus.RUNNING
    assert [b.status for b in await list_bots(app, user)] == [BotStatus.RUNNING]
    assert (await stop_bot(app, user, bot.id)).status == BotStatus.STOPPED
    assert (await show_bot(app, user, bot.id)).status == BotStatus.STOPPED


async def test_another_users_bot_is_not_found(app: App) -> None:
    alice, mallory = await make_user(app, "alice"), await make_user(app, "mallory")
    bot = await create_bot(app, alice, spec(name="alpha"))
    for call in (show_bot, start_bot, stop_bot, delete_bot):
        assert await refused(call(app, mallory, bot.id)) == "bot_not_found"
        assert await refused(call(app, mallory, "alpha")) == "bot_not_found"
    assert await refused(set_mode(app, mallory, bot.id, BotMode.PAPER, confirmed=True)) == (
        "bot_not_found"
    )
    assert (await show_bot(app, alice, bot.id)).status == BotStatus.STOPPED


async def test_delete_archives_a_stopped_bot_without_positions(app: App) -> None:
    user = await make_user(app)
    bot = await create_bot(app, user, spec(strategy="signal"))
    await start_bot(app, user, bot.id)
    assert await refused(delete_bot(app, user, bot.id)) == "stop_bot_first"
    await stop_bot(app, user, bot.id)
    deleted = await delete_bot(app, user, bot.id)
    assert deleted.signal_secret is None
    assert await list_bots(app, user) == []
    assert await refused(show_bot(app, user, bot.id)) == "bot_not_found"
    async with app.database.sessions() as session:
        stored = await session.get(Bot, bot.id)
    assert stored is not None and stored.archived_at is not None  # kept, not erased


async def test_delete_and_mode_switch_refused_while_holding_positions(app: App) -> None:
    user = await make_user(app)
    bot = await create_bot(app, user, spec())
    async with app.database.transaction() as session:
        session.add(Position(user_id=user, bot_id=bot.id, symbol="BTC/USDT", amount=Decimal("0.01"),
                             cost=Decimal(900), average_entry=Decimal(90000)))  # fmt: skip
    assert await refused(delete_bot(app, user, bot.id)) == "close_positions_first"
    assert await refused(set_mode(app, user, bot.id, BotMode.LIVE, confirmed=True)) == (
        "close_positions_first"
    )


async def test_going_live_needs_confirmation_and_a_key(app: App) -> None:
    user = await make_user(app)
    bot = await create_bot(app, user, spec())
    assert await refused(set_mode(app, user, bot.id, BotMode.LIVE, confirmed=False)) == (
        "confirm_live"
    )
    assert await refused(set_mode(app, user, bot.id, BotMode.LIVE, confirmed=True)) == (
        "connect_exchange_first"
    )
    assert (await show_bot(app, user, bot.id)).mode == BotMode.PAPER
    assert (await set_mode(app, user, bot.id, BotMode.PAPER, confirmed=False)).mode == BotMode.PAPER


async def test_kill_switch_stops_every_bot_and_tells_the_chat(app: App) -> None:
    user, other = await make_user(app, "u1"), await make_user(app, "u2")
    mine = [await create_bot(app, user, spec(name=n)) for n in ("a", "b")]
    theirs = await create_bot(app, other, spec(name="a"))
    for bot in mine:
        await start_bot(app, user, bot.id)
    await start_bot(app, other, theirs.id)
    result = await kill_switch(app, user, close_positions=False)
    assert (result.bots_stopped, result.positions_sold, result.waiting) == (2, 0, 0)
    assert {b.status for b in await list_bots(app, user)} == {BotStatus.STOPPED}
    assert (await show_bot(app, other, theirs.id)).status == BotStatus.RUNNING
    again = await kill_switch(app, user, close_positions=False)
    assert again.bots_stopped == 0
    async with app.database.sessions() as session:
        notices = await session.scalar(
            select(func.count()).select_from(Notification).where(Notification.user_id == user)
        )
    assert notices == 2


async def test_a_bot_over_the_plan_after_a_downgrade_cannot_start(app: App) -> None:
    user = await make_user(app)
    kept = await create_bot(app, user, spec(strategy="rsi", name="kept"))
    over = await create_bot(app, user, spec(strategy="rsi", name="over"))
    async with app.database.transaction() as session:
        await session.execute(update(User).where(User.id == user).values(plan="free"))
    assert await refused(start_bot(app, user, over.id)) == "bot_over_plan"
    assert (await start_bot(app, user, kept.id)).status == BotStatus.RUNNING


async def test_kill_switch_can_sell_paper_positions(app: App) -> None:
    user = await make_user(app)
    bot = await create_bot(app, user, spec())
    await start_bot(app, user, bot.id)
    async with app.database.transaction() as session:
        session.add(Position(user_id=user, bot_id=bot.id, symbol="BTC/USDT", amount=Decimal("0.01"),
                             cost=Decimal(900), average_entry=Decimal(90000)))  # fmt: skip
        session.add(PaperBalance(user_id=user, asset="BTC", amount=Decimal("0.01")))
    result = await kill_switch(app, user, close_positions=True)
    assert (result.bots_stopped, result.positions_sold) == (1, 1)
    async with app.database.sessions() as session:
        assert await session.scalar(select(Position.id)) is None
