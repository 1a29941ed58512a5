"""robotrader.use_cases.equity on the real databases: the PnL curve and one bot's chart."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from db.models import BotMode, Position, Trade
from db.types import utcnow
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.use_cases.bots import BotSpec, create_bot
from robotrader.use_cases.equity import bot_equity_chart, equity_curve
from tests.engine.conftest import make_user

PNG = b"\x89PNG\r\n\x1a\n"


async def _bot(app: App, user: int) -> int:
    return (await create_bot(app, user, BotSpec("binance", ["BTC/USDT"], "dca", "1000"))).id


async def _trades(app: App, user: int, bot: int, pnls: list[str]) -> None:
    start = utcnow() - timedelta(days=len(pnls))
    async with app.database.transaction() as session:
        for i, pnl in enumerate(pnls):
            session.add(
                Trade(
                    bot_id=bot, user_id=user, symbol="BTC/USDT", mode=BotMode.PAPER,
                    amount=Decimal(1), entry_price=Decimal(100), exit_price=Decimal(100),
                    pnl=Decimal(pnl), pnl_pct=Decimal(0), fees=Decimal(0), exit_reason="signal",
                    opened_at=start + timedelta(days=i),
                    closed_at=start + timedelta(days=i, hours=1),
                )
            )  # fmt: skip


async def test_the_curve_is_cumulative_and_exact(app: App) -> None:
    user, other = await make_user(app, "u1"), await make_user(app, "u2")
    assert await equity_curve(app, user) == []
    await _trades(app, user, await _bot(app, user), ["0.1", "0.2", "-0.05"])
    await _trades(app, other, await _bot(app, other), ["100"])
    assert [p.value for p in await equity_curve(app, user)] == [
        Decimal(0), Decimal("0.1"), Decimal("0.3"), Decimal("0.25"),
    ]  # fmt: skip


async def test_a_long_curve_is_thinned_but_ends_at_the_total(app: App) -> None:
    user = await make_user(app)
    await _trades(app, user, await _bot(app, user), ["1"] * 30)
    points = await equity_curve(app, user, max_points=10)
    assert len(points) == 10 and points[-1].value == Decimal(30)
    assert [p.value for p in points] == sorted(p.value for p in points)


async def test_a_bot_without_trades_has_nothing_to_draw(app: App) -> None:
    user = await make_user(app)
    chart = await bot_equity_chart(app, user, await _bot(app, user))
    assert (chart.png, chart.trades, chart.realized_pnl, chart.unrealized_pnl) == (
        None, 0, Decimal(0), None,
    )  # fmt: skip


async def test_a_bot_chart_counts_its_trades_and_open_position(app: App) -> None:
    user = await make_user(app)
    bot = await _bot(app, user)
    await _trades(app, user, bot, ["10", "-4"])
    async with app.database.transaction() as session:
        session.add(Position(user_id=user, bot_id=bot, symbol="BTC/USDT", amount=Decimal("0.01"),
                             cost=Decimal(900), average_entry=Decimal(90000)))  # fmt: skip
    chart = await bot_equity_chart(app, user, bot)
    assert (chart.capital, chart.realized_pnl, chart.trades) == (Decimal(1000), Decimal(6), 2)
    assert chart.unrealized_pnl is not None
    assert chart.png is not None and chart.png.startswith(PNG)


async def test_another_users_bot_has_no_chart(app: App) -> None:
    owner, other = await make_user(app, "u1"), await make_user(app, "u2")
    bot = await _bot(app, owner)
    with pytest.raises(UserError) as raised:
        await bot_equity_chart(app, other, bot)
    assert raised.value.key == "bot_not_found"
