"""robotrader.use_cases.equity on the real databases: equity as steps from the start to now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update

from db.models import Bot, BotMode, Position, Trade
from db.types import utcnow
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.use_cases.bots import BotSpec, create_bot
from robotrader.use_cases.equity import (
    EquityPoint,
    bot_equity_chart,
    equity_curve,
    equity_steps,
)
from tests.engine.conftest import make_user

PNG = b"\x89PNG\r\n\x1a\n"
START = datetime(2025, 3, 1, tzinfo=UTC)
NOW = START + timedelta(days=10)


def _at(days: float) -> datetime:
    return START + timedelta(days=days)


def test_no_trade_is_a_flat_line_from_the_start_to_now() -> None:
    assert equity_steps(START, Decimal(1000), [], NOW) == [
        EquityPoint(START, Decimal(1000)), EquityPoint(NOW, Decimal(1000)),
    ]  # fmt: skip


def test_one_trade_is_flat_then_a_step_at_its_close_then_flat_to_now() -> None:
    assert equity_steps(START, Decimal(1000), [(_at(2), Decimal("19.5"))], NOW) == [
        EquityPoint(START, Decimal(1000)),
        EquityPoint(_at(2), Decimal("1019.5")),
        EquityPoint(NOW, Decimal("1019.5")),
    ]


def test_many_trades_step_at_each_close_and_the_open_position_ends_the_line() -> None:
    closes = [(_at(1), Decimal("0.1")), (_at(2), Decimal("0.2")), (_at(3), Decimal("-0.05"))]
    assert equity_steps(START, Decimal(0), closes, NOW, Decimal("-0.5")) == [
        EquityPoint(START, Decimal(0)),
        EquityPoint(_at(1), Decimal("0.1")),
        EquityPoint(_at(2), Decimal("0.3")),
        EquityPoint(_at(3), Decimal("0.25")),
        EquityPoint(NOW, Decimal("-0.25")),
    ]
    # A trade recorded before the start (an imported history) moves the start back.
    assert equity_steps(_at(2), Decimal(0), closes[:1], NOW)[0] == EquityPoint(_at(1), Decimal(0))


async def _bot(app: App, user: int, created_at: datetime = START) -> int:
    bot = (await create_bot(app, user, BotSpec("binance", ["BTC/USDT"], "dca", "1000"))).id
    async with app.database.transaction() as session:
        await session.execute(update(Bot).where(Bot.id == bot).values(created_at=created_at))
    return bot


async def _trades(app: App, user: int, bot: int, pnls: list[str]) -> list[datetime]:
    closes = [_at(i + 1) for i in range(len(pnls))]
    async with app.database.transaction() as session:
        for closed_at, pnl in zip(closes, pnls, strict=True):
            session.add(
                Trade(
                    bot_id=bot, user_id=user, symbol="BTC/USDT", mode=BotMode.PAPER,
                    amount=Decimal(1), entry_price=Decimal(100), exit_price=Decimal(100),
                    pnl=Decimal(pnl), pnl_pct=Decimal(0), fees=Decimal(0), exit_reason="signal",
                    opened_at=closed_at - timedelta(hours=1), closed_at=closed_at,
                )
            )  # fmt: skip
    return closes


async def test_the_curve_runs_from_the_first_bot_to_now_and_is_exact(app: App) -> None:
    user, other = await make_user(app, "u1"), await make_user(app, "u2")
    bot = await _bot(app, user)
    before = utcnow()
    empty = await equity_curve(app, user)
    assert empty.trades == 0 and [p.value for p in empty.points] == [Decimal(0), Decimal(0)]
    assert empty.points[0].at == START and empty.points[1].at >= before

    closes = await _trades(app, user, bot, ["0.1", "0.2", "-0.05"])
    await _trades(app, other, await _bot(app, other), ["100"])
    curve = await equity_curve(app, user)
    assert curve.trades == 3
    assert [(p.at, p.value) for p in curve.points[:-1]] == [
        (START, Decimal(0)), (closes[0], Decimal("0.1")), (closes[1], Decimal("0.3")),
        (closes[2], Decimal("0.25")),
    ]  # fmt: skip
    assert curve.points[-1].value == Decimal("0.25") and curve.points[-1].at >= before


async def test_one_trade_is_not_a_vertical_line(app: App) -> None:
    user = await make_user(app)
    [closed] = await _trades(app, user, await _bot(app, user), ["12.5"])
    points = (await equity_curve(app, user)).points
    assert [p.value for p in points] == [Decimal(0), Decimal("12.5"), Decimal("12.5")]
    assert points[0].at == START < closed == points[1].at < points[2].at


async def test_a_long_curve_is_thinned_but_keeps_its_ends(app: App) -> None:
    user = await make_user(app)
    await _trades(app, user, await _bot(app, user), ["1"] * 30)
    points = (await equity_curve(app, user, max_points=10)).points
    assert len(points) == 10 and points[0] == EquityPoint(START, Decimal(0))
    assert points[-1].value == Decimal(30)
    assert [p.value for p in points] == sorted(p.value for p in points)


async def test_a_bot_without_trades_is_drawn_flat_from_its_creation(app: App) -> None:
    user = await make_user(app)
    chart = await bot_equity_chart(app, user, await _bot(app, user))
    assert (chart.trades, chart.realized_pnl, chart.unrealized_pnl) == (0, Decimal(0), None)
    assert [(p.at, p.value) for p in chart.points[:1]] == [(START, Decimal(1000))]
    assert [p.value for p in chart.points] == [Decimal(1000), Decimal(1000)]
    assert chart.png.startswith(PNG)


async def test_a_bot_chart_counts_its_trades_and_open_position(app: App) -> None:
    user = await make_user(app)
    bot = await _bot(app, user)
    closes = await _trades(app, user, bot, ["10", "-4"])
    async with app.database.transaction() as session:
        session.add(Position(user_id=user, bot_id=bot, symbol="BTC/USDT", amount=Decimal("0.01"),
                             cost=Decimal(900), average_entry=Decimal(90000)))  # fmt: skip
    chart = await bot_equity_chart(app, user, bot, language="pt-BR")
    assert (chart.capital, chart.realized_pnl, chart.trades) == (Decimal(1000), Decimal(6), 2)
    assert chart.unrealized_pnl is not None
    assert [(p.at, p.value) for p in chart.points[:-1]] == [
        (START, Decimal(1000)), (closes[0], Decimal(1010)), (closes[1], Decimal(1006)),
    ]  # fmt: skip
    assert chart.points[-1].value == Decimal(1006) + chart.unrealized_pnl
    assert chart.png.startswith(PNG)


async def test_another_users_bot_has_no_chart(app: App) -> None:
    owner, other = await make_user(app, "u1"), await make_user(app, "u2")
    bot = await _bot(app, owner)
    with pytest.raises(UserError) as raised:
        await bot_equity_chart(app, other, bot)
    assert raised.value.key == "bot_not_found"
