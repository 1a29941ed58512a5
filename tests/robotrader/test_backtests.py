"""The backtest use cases: plan limits, bots or strategies as targets, a job run end to end."""

from __future__ import annotations

import asyncio
import struct
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from db.models import Backtest, BacktestStatus, Bot, BotMode, Plan, Platform, Trade, User
from db.types import utcnow
from engine.backtest import run_backtest
from engine.backtest.jobs import STALE_AFTER
from engine.market_data.replay import ReplayFeed
from engine.strategies.registry import get_strategy
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.i18n import chart_text
from robotrader.use_cases.accounts import register
from robotrader.use_cases.backtests import (
    KEEP_FINISHED,
    BacktestJob,
    BacktestRequest,
    backtest_chart,
    get_backtest,
    notify_when_done,
    parse_period,
    period_end,
    start_backtest,
)
from robotrader.use_cases.bot_settings import BotSettings
from robotrader.use_cases.bots import BotSpec, create_bot
from robotrader.use_cases.equity import bot_equity_chart

T0 = 1_735_689_600_000  # 2025-01-01T00:00Z
DAY = 86_400_000


async def user_on(app: App, plan: Plan = Plan.FREE, name: str | None = None) -> int:
    name = name or uuid.uuid4().hex[:10]
    account = await register(app, Platform.TELEGRAM, name, chat_id=name, client_language="en")
    async with app.database.transaction() as session:
        user = await session.get(User, account.user_id)
        assert user is not None
        user.plan = plan
    return account.user_id


async def finished(app: App, user_id: int, job_id: str, within: float = 30) -> BacktestJob:
    deadline = time.monotonic() + within
    job = await get_backtest(app, user_id, job_id)
    while not job.finished and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        job = await get_backtest(app, user_id, job_id)
    assert job.finished, job
    return job


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def sma(period: str | int, **options: str) -> BacktestRequest:
    return BacktestRequest("sma_crossover", symbol="btcusdt", period=period, options=options)


def test_a_period_ends_today_at_the_latest() -> None:
    now = T0 + 10 * DAY + 5 * 3_600_000  # 2025-01-11 05:00 UTC
    assert period_end(date(2025, 1, 10), now_ms=now) == T0 + 10 * DAY  # a past day: its end
    assert period_end(date(2025, 1, 11), now_ms=now) == now  # today: up to now
    with pytest.raises(UserError) as refused:
        period_end(date(2025, 1, 12), now_ms=now)
    assert refused.value.key == "backtest_end_in_future"
    assert refused.value.args_ == {"end": "2025-01-12"}


async def test_a_spec_ending_in_the_future_is_refused(app: App) -> None:
    user = await user_on(app, Plan.FREE)
    with pytest.raises(UserError) as refused:
        await start_backtest(app, user, sma("7d"), end_ms=int(time.time() * 1000) + DAY)
    assert refused.value.key == "backtest_end_in_future"


def test_periods_are_read_as_days() -> None:
    assert [parse_period(p) for p in ("7d", "2w", "1y", "30D", 90)] == [7, 14, 365, 30, 90]
    for bad in ("0d", "7", "3m", "1 year", "99999d", "-1d"):
        with pytest.raises(UserError) as refused:
            parse_period(bad)
        assert refused.value.key == "bad_backtest_period"


async def test_free_refuses_31_days_naming_the_limit_and_the_plan_that_lifts_it(app: App) -> None:
    user = await user_on(app, Plan.FREE)
    with pytest.raises(UserError) as refused:
        await start_backtest(app, user, sma("31d"))
    assert refused.value.key == "backtest_period_limit"
    assert refused.value.args_ == {
        "plan": "free", "maximum": 30, "current": 31, "next_plan": "Pro", "next_maximum": 365,
    }  # fmt: skip
    premium = await user_on(app, Plan.PREMIUM)
    with pytest.raises(UserError) as refused:
        await start_backtest(app, premium, sma(3 * 365 + 1))
    assert refused.value.key == "backtest_period_limit_top"  # nothing to upgrade to
    async with app.database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Backtest)) == 0


async def test_concurrent_backtests_are_limited_per_plan(app: App) -> None:
    user = await user_on(app, Plan.FREE)
    now = utcnow()
    async with app.database.transaction() as session:
        session.add(
            Backtest(
                id=uuid.uuid4().hex, user_id=user, spec={}, status=BacktestStatus.RUNNING,
                created_at=now, heartbeat_at=now,
            )
        )  # fmt: skip
    with pytest.raises(UserError) as refused:
        await start_backtest(app, user, sma("7d"))
    assert refused.value.key == "backtest_concurrency_limit"
    assert refused.value.args_["maximum"] == 1 and refused.value.args_["next_plan"] == "Pro"

    # A job whose worker went silent no longer holds the slot: it is reported interrupted.
    async with app.database.transaction() as session:
        running = await session.scalar(select(Backtest).where(Backtest.user_id == user))
        assert running is not None
        running.heartbeat_at = now - STALE_AFTER - timedelta(seconds=5)
    job = await start_backtest(app, user, sma("7d"))
    assert job.status == BacktestStatus.QUEUED
    async with app.database.sessions() as session:
        errors = set(await session.scalars(select(Backtest.error).where(Backtest.user_id == user)))
    assert "interrupted" in errors
    await finished(app, user, job.id)


async def test_a_strategy_backtest_runs_end_to_end_with_progress_and_a_chart(app: App) -> None:
    user = await user_on(app, Plan.PRO)
    job = await start_backtest(app, user, sma("14d", fast="5", slow="20", capital="500"), end_ms=T0)
    assert job.spec.symbol == "BTC/USDT" and job.spec.parameters == {"fast": 5, "slow": 20}
    assert job.spec.capital == Decimal(500) and job.spec.days == 14 and job.spec.offline
    assert (job.spec.start_ms, job.spec.end_ms) == (T0 - 14 * DAY, T0)

    done = await finished(app, user, job.id)
    assert (done.status, done.stage, done.progress) == (BacktestStatus.DONE, "done", 1.0)
    assert done.summary is not None and done.finished_at is not None
    png = await backtest_chart(app, user, job.id)
    assert png is not None and png_size(png) == (1280, 900)

    candles = ReplayFeed().history("BTC/USDT", "1m", T0 - 14 * DAY, T0)
    direct = run_backtest(
        candles, get_strategy("sma_crossover"), {"fast": 5, "slow": 20}, capital=Decimal(500),
        risk=job.spec.risk,
    )  # fmt: skip
    assert done.summary.trade_count == direct.trade_count > 0
    assert done.summary.total_pnl_pct == direct.total_pnl_pct
    # By its first characters, or the latest; never another user's.
    assert (await get_backtest(app, user, job.id[:6])).id == job.id
    assert (await get_backtest(app, user)).id == job.id
    other = await user_on(app, Plan.PRO)
    with pytest.raises(UserError) as refused:
        await get_backtest(app, other, job.id)
    assert refused.value.key == "backtest_not_found"
    assert await backtest_chart(app, other, job.id) is None
    assert await notify_when_done(app, user, job.id) is False  # finished: nothing to hand over


async def test_the_chart_is_drawn_in_the_readers_language(app: App) -> None:
    user = await user_on(app, Plan.PRO)
    by_default = await start_backtest(app, user, sma("7d"), end_ms=T0)
    assert by_default.spec.chart_text == chart_text("en")  # the user's setting, else English
    await finished(app, user, by_default.id)
    job = await start_backtest(app, user, sma("7d"), end_ms=T0, language="pt-BR")
    stored = await get_backtest(app, user, job.id)
    assert stored.spec.chart_text == chart_text("pt-BR") != chart_text("en")
    await finished(app, user, job.id)


async def test_a_bot_is_backtested_with_its_own_settings(app: App) -> None:
    user = await user_on(app, Plan.PRO)
    bot = await create_bot(
        app, user,
        BotSpec(exchange="bybit", symbols=["ETH/USDT", "BTC/USDT"], strategy="rsi", capital="250",
                parameters={"period": 10}, name="Ana",
                settings=BotSettings(timeframe="5m", stop_loss_pct=Decimal(3))),
    )  # fmt: skip
    job = await start_backtest(app, user, BacktestRequest("ana", period="7d"))
    spec = job.spec
    assert (spec.bot, spec.exchange, spec.timeframe) == ("Ana", "bybit", "5m")
    assert spec.symbol == "ETH/USDT"  # the bot's first pair
    assert spec.strategy == "rsi" and spec.parameters["period"] == 10
    assert spec.capital == Decimal(250) and spec.risk.stop_loss_pct == Decimal(3)
    async with app.database.sessions() as session:
        row = await session.get(Backtest, job.id)
        assert row is not None and row.bot_id == bot.id
    await finished(app, user, job.id)

    # What-ifs on top of the bot: another pair, another parameter, its id as the target.
    what_if = await start_backtest(
        app, user, BacktestRequest(bot.id, symbol="BTC/USDT", period="2d", options={"period": "20"})
    )
    assert what_if.spec.symbol == "BTC/USDT" and what_if.spec.parameters["period"] == 20
    await finished(app, user, what_if.id)


@pytest.mark.parametrize(
    ("request_", "key"),
    [
        (BacktestRequest("nobody", symbol="BTC/USDT", period="7d"), "backtest_unknown_target"),
        (BacktestRequest("signal", symbol="BTC/USDT", period="7d"), "backtest_not_possible"),
        (BacktestRequest("dca", symbol="BTC/USDT", period="7d"), "strategy_not_in_plan"),
        (sma("7d", fast="50"), "bad_parameter"),
        (sma("7d", tf="2h"), "bad_timeframe"),
        (sma("7d", capital="-1"), "bad_capital"),
        (sma("7d", stop_loss="200"), "bad_percent"),
        (BacktestRequest("sma_crossover", symbol="BTC", period="7d"), "bad_symbol"),
        (sma("7x"), "bad_backtest_period"),
        # Offline (this app replays), the shipped listings still refuse an unlisted pair.
        (BacktestRequest("rsi", symbol="FOO/USDT", period="30d"), "unknown_symbol"),
    ],
)
async def test_bad_requests_are_refused_with_a_reason(
    app: App, request_: BacktestRequest, key: str
) -> None:
    user = await user_on(app, Plan.FREE)
    with pytest.raises(UserError) as refused:
        await start_backtest(app, user, request_)
    assert refused.value.key == key


async def test_only_the_latest_finished_backtests_are_kept(app: App) -> None:
    user = await user_on(app, Plan.PREMIUM)
    now = utcnow()
    async with app.database.transaction() as session:
        for i in range(KEEP_FINISHED + 5):
            session.add(
                Backtest(
                    id=uuid.uuid4().hex, user_id=user, spec={}, status=BacktestStatus.DONE,
                    created_at=now - timedelta(minutes=100 - i), chart_png=b"png",
                )
            )  # fmt: skip
    job = await start_backtest(app, user, sma("1d"))
    await finished(app, user, job.id)
    async with app.database.sessions() as session:
        kept = await session.scalar(
            select(func.count()).select_from(Backtest).where(Backtest.user_id == user)
        )
    assert kept == KEEP_FINISHED + 1  # the 20 latest finished ones, and the new one


async def test_a_bots_equity_chart(app: App) -> None:
    user = await user_on(app, Plan.PRO)
    bot = await create_bot(
        app, user, BotSpec(exchange="binance", symbols=["BTC/USDT"], strategy="sma_crossover",
                           capital="1000", name="chartist"),
    )  # fmt: skip
    empty = await bot_equity_chart(app, user, "chartist")
    assert empty.trades == 0 and png_size(empty.png) == (1280, 900)
    assert [p.value for p in empty.points] == [Decimal(1000), Decimal(1000)]

    async with app.database.transaction() as session:
        assert await session.get(Bot, bot.id) is not None
        for i, pnl in enumerate(("12.5", "-4.25", "7")):
            at = utcnow() - timedelta(hours=5 - i)
            session.add(
                Trade(
                    bot_id=bot.id, user_id=user, symbol="BTC/USDT", mode=BotMode.PAPER,
                    amount=Decimal("0.01"), entry_price=Decimal(90_000), exit_price=Decimal(91_000),
                    pnl=Decimal(pnl), pnl_pct=Decimal(1), fees=Decimal("0.1"),
                    exit_reason="exit", opened_at=at - timedelta(minutes=30), closed_at=at,
                )
            )  # fmt: skip
    chart = await bot_equity_chart(app, user, bot.id)
    assert chart.trades == 3 and chart.realized_pnl == Decimal("15.25")
    assert chart.unrealized_pnl is None  # nothing open
    assert png_size(chart.png) == (1280, 900)
    other = await user_on(app, Plan.PRO)
    with pytest.raises(UserError) as refused:
        await bot_equity_chart(app, other, bot.id)
    assert refused.value.key == "bot_not_found"
