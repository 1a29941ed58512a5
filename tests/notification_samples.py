"""Realistic notices of every kind, as their writers build them (shared by the tests)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from db.models import BotMode, OrderSide, Plan
from db.notifications import (
    BacktestDoneNotice,
    BacktestFailedNotice,
    BotPausedNotice,
    DailySummaryNotice,
    DataFallbackNotice,
    ExchangeConnectedNotice,
    KillSwitchNotice,
    Notice,
    OrderRejectedNotice,
    PaymentFailedNotice,
    PlanChangedNotice,
    SignalExpiredNotice,
    TradeClosedNotice,
    TradeOpenedNotice,
)

SAMPLES: list[Notice] = [
    TradeOpenedNotice(
        bot_id=3, bot="sma_crossover-1", mode=BotMode.PAPER, symbol="BTC/USDT",
        side=OrderSide.BUY, reason="entry", amount=Decimal("0.0051"),
        price=Decimal("97123.5"), value=Decimal("495.33"),
    ),
    TradeClosedNotice(
        bot_id=3, bot="sma_crossover-1", mode=BotMode.LIVE, symbol="BTC/USDT",
        side=OrderSide.SELL, reason="take_profit", amount=Decimal("0.0051"),
        price=Decimal("99000"), entry_price=Decimal("97123.5"), pnl=Decimal("9.57"),
        pnl_pct=Decimal("1.93"), closed=True,
    ),
    TradeClosedNotice(
        bot_id=4, bot="grid-eth", mode=BotMode.PAPER, symbol="ETH/USDT",
        side=OrderSide.SELL, reason="stop_loss", amount=Decimal("0.5"),
        price=Decimal("3100"), entry_price=Decimal("3300"), pnl=Decimal("-100.00"),
        pnl_pct=Decimal("-6.06"), closed=False,
    ),
    OrderRejectedNotice(
        bot_id=3, bot="sma_crossover-1", symbol="BTC/USDT", side=OrderSide.BUY,
        reason="insufficient_funds",
    ),
    OrderRejectedNotice(
        bot_id=3, bot="sma_crossover-1", symbol="BTC/USDT", side=OrderSide.BUY,
        reason="below_minimum", limits="cost 4.2 < minimum 5",
    ),
    BotPausedNotice(bot_id=3, bot="sma_crossover-1", reason="daily_loss_limit"),
    DataFallbackNotice(bot_id=3, bot="sma_crossover-1"),
    SignalExpiredNotice(
        bot_id=7, bot="tv-alerts", action="buy", received="14:05", minutes=9, limit=5
    ),
    KillSwitchNotice(bots=2, sold=1, waiting=1),
    ExchangeConnectedNotice(
        exchange="binance", title="Binance", trade=True, withdraw=False,
        egress_ips=("127.0.0.1",),
    ),
    DailySummaryNotice(date="2026-12-05", pnl=Decimal("-12.40"), trades=3, open_positions=1),
    BacktestDoneNotice(
        job="5f0c3a9e-8d1b-4d5e-9f00-1a2b3c4d5e6f", strategy="sma_crossover",
        symbol="BTC/USDT", days=30, bot="", pnl_pct=Decimal("4.25"), trades=12,
    ),
    BacktestFailedNotice(
        job="6a1d4b0f-9e2c-4e6f-a011-2b3c4d5e6f70", strategy="grid", symbol="ETH/USDT",
        days=90, bot="grid-eth", error="no_candles",
    ),
    PlanChangedNotice(
        plan=Plan.PRO, old_plan=Plan.FREE, downgrade=False, paused=(),
        renews_at=datetime(2027, 1, 5, 12, 0, tzinfo=UTC),
    ),
    PlanChangedNotice(
        plan=Plan.FREE, old_plan=Plan.PREMIUM, downgrade=True, paused=("grid-eth", "dca-sol"),
        renews_at=None,
    ),
    PaymentFailedNotice(portal_url="https://billing.stripe.com/p/session/test_123"),
]  # fmt: skip
