"""robotrader.use_cases.portfolio on the real databases: positions, trades, profit, balances."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from db.models import BotMode, PaperBalance, Position, Trade
from db.types import utcnow
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.use_cases.bots import BotSpec, create_bot, delete_bot
from robotrader.use_cases.exchanges import connect_exchange
from robotrader.use_cases.portfolio import balances, positions, profit, reset_paper, trades
from tests.emulators.exchange import ExchangeEmulator
from tests.engine.conftest import make_user
from tests.engine.test_live_exchange import fake_key


async def _bot(app: App, user: int, name: str = "alpha") -> int:
    spec = BotSpec(exchange="binance", symbols=["BTC/USDT"], strategy="dca", capital="1000",
                   name=name)  # fmt: skip
    return (await create_bot(app, user, spec)).id


async def _trade(app: App, user: int, bot: int, pnl: str, days_ago: int = 0) -> None:
    closed = utcnow() - timedelta(days=days_ago)
    async with app.database.transaction() as session:
        session.add(
            Trade(
                bot_id=bot, user_id=user, symbol="BTC/USDT", mode=BotMode.PAPER,
                amount=Decimal("0.01"), entry_price=Decimal(90000), exit_price=Decimal(91000),
                pnl=Decimal(pnl), pnl_pct=Decimal(1), fees=Decimal(0), exit_reason="signal",
                opened_at=closed - timedelta(hours=1), closed_at=closed,
            )
        )  # fmt: skip


async def _position(app: App, user: int, bot: int) -> None:
    async with app.database.transaction() as session:
        session.add(Position(user_id=user, bot_id=bot, symbol="BTC/USDT", amount=Decimal("0.01"),
                             cost=Decimal(900), average_entry=Decimal(90000)))  # fmt: skip


async def test_positions_are_the_users_own_and_marked_to_market(app: App) -> None:
    user, other = await make_user(app, "u1"), await make_user(app, "u2")
    await _position(app, user, await _bot(app, user))
    await _position(app, other, await _bot(app, other))
    [view] = await positions(app, user)
    assert (view.bot, view.symbol, view.amount, view.mode) == (
        "alpha", "BTC/USDT", Decimal("0.01"), "paper",
    )  # fmt: skip
    assert view.price is not None and view.price > 0  # the replay's last close
    assert view.unrealized_pnl == view.amount * view.price - Decimal(900)


async def test_trades_newest_first_and_those_of_deleted_bots_kept(app: App) -> None:
    user, other = await make_user(app, "u1"), await make_user(app, "u2")
    bot = await _bot(app, user)
    await _trade(app, user, bot, "5", days_ago=2)
    await _trade(app, user, bot, "-3")
    await _trade(app, other, await _bot(app, other), "100")
    await delete_bot(app, user, bot)
    listed = await trades(app, user)
    assert [t.pnl for t in listed] == [Decimal(-3), Decimal(5)]
    assert all(t.bot_deleted for t in listed)
    assert len(await trades(app, user, limit=1)) == 1


async def test_profit_per_period_is_exact(app: App) -> None:
    user = await make_user(app)
    bot = await _bot(app, user)
    await _trade(app, user, bot, "0.1")
    await _trade(app, user, bot, "0.2")
    await _trade(app, user, bot, "-1", days_ago=10)
    await _trade(app, user, bot, "7", days_ago=60)
    by_period = {p.period: p for p in await profit(app, user)}
    assert by_period["today"].pnl == Decimal("0.3")  # not 0.30000000000000004
    assert (by_period["30d"].pnl, by_period["30d"].trades, by_period["30d"].wins) == (
        Decimal("-0.7"), 3, 2,
    )  # fmt: skip
    assert by_period["all"].pnl == Decimal("6.3")
    assert by_period["today"].win_rate == Decimal(100)


async def test_a_new_user_has_no_profit(app: App) -> None:
    user = await make_user(app)
    assert all(p.pnl == 0 and p.trades == 0 and p.win_rate is None for p in await profit(app, user))


async def test_balances_read_paper_and_each_connected_exchange(
    live_app: App, exchange_emulator: ExchangeEmulator
) -> None:
    user = await make_user(live_app)
    key = fake_key(exchange_emulator, "UC", balances={"USDT": 1234, "BTC": "0.5"})
    await connect_exchange(live_app, user, "binance", key)
    paper, binance = await balances(live_app, user)
    assert (paper.account, paper.assets["USDT"]) == ("paper", Decimal(10_000))
    assert binance.account == "binance" and binance.error is None
    assert binance.assets["USDT"] == Decimal(1234) and binance.assets["BTC"] == Decimal("0.5")


async def test_reset_paper_restores_the_starting_balance(app: App) -> None:
    user = await make_user(app)
    async with app.database.transaction() as session:
        session.add(PaperBalance(user_id=user, asset="ETH", amount=Decimal(3)))
    assert await reset_paper(app, user) == {"USDT": Decimal(10_000)}
    [paper] = await balances(app, user)
    assert paper.assets == {"USDT": Decimal(10_000)}


async def test_reset_paper_refused_with_open_paper_positions(app: App) -> None:
    user = await make_user(app)
    await _position(app, user, await _bot(app, user))
    with pytest.raises(UserError) as raised:
        await reset_paper(app, user)
    assert raised.value.key == "close_positions_first"
