"""The notification contract: rows stored today (and before) read back as the typed notice."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from db.models import BotMode, OrderSide, Plan
from db.notifications import (
    NOTICE_OF_KIND,
    KillSwitchNotice,
    NotificationKind,
    OrderRejectedNotice,
    PlanChangedNotice,
    TradeClosedNotice,
    UnreadableNotification,
    read_notice,
)
from tests.notification_samples import SAMPLES

# Payloads exactly as the writers stored them before the contract was typed (copied from
# engine/bookkeeping.py, engine/tick.py, engine/daily_summary.py, engine/backtest/jobs.py,
# robotrader/use_cases/billing.py and bots.py): rows like these sit in databases now.
STORED_TODAY: list[tuple[str, dict[str, Any]]] = [
    ("trade_opened", {"bot_id": 3, "bot": "sma-1", "mode": "paper", "symbol": "BTC/USDT",
                      "side": "buy", "reason": "entry", "amount": "0.0051",
                      "price": "97123.5", "value": "495.33"}),
    ("trade_closed", {"bot_id": 3, "bot": "sma-1", "mode": "live", "symbol": "BTC/USDT",
                      "side": "sell", "reason": "stop_loss", "amount": "0.0051",
                      "price": "96000", "entry_price": "97123.5", "pnl": "-5.73",
                      "pnl_pct": "-1.16", "closed": True}),
    ("order_rejected", {"bot_id": 3, "bot": "sma-1", "symbol": "BTC/USDT", "side": "buy",
                        "reason": "insufficient_funds"}),
    ("order_rejected", {"bot_id": 3, "bot": "sma-1", "symbol": "BTC/USDT", "side": "buy",
                        "reason": "below_minimum", "limits": "cost 4.2 < minimum 5"}),
    ("bot_paused", {"bot_id": 3, "bot": "sma-1", "reason": "exchange_auth"}),
    ("data_fallback", {"bot_id": 3, "bot": "sma-1"}),
    ("signal_expired", {"bot_id": 7, "bot": "tv", "action": "buy", "received": "14:05",
                        "minutes": 9, "limit": 5}),
    ("kill_switch", {"bots": 2, "sold": 1, "waiting": 0}),
    ("daily_summary", {"date": "2026-12-05", "pnl": "12.40", "trades": 3,
                       "open_positions": 1}),
    ("backtest_done", {"job": "5f0c3a9e", "strategy": "sma_crossover", "symbol": "BTC/USDT",
                       "days": 30, "bot": "", "pnl_pct": "4.25", "trades": 12}),
    ("backtest_failed", {"job": "6a1d4b0f", "strategy": "grid", "symbol": "ETH/USDT",
                         "days": 90, "bot": "grid-eth", "error": "no_candles"}),
    ("plan_changed", {"plan": "pro", "old_plan": "free", "downgrade": False, "paused": [],
                      "renews_at": "2027-01-05T12:00:00+00:00"}),
    ("plan_changed", {"plan": "free", "old_plan": "premium", "downgrade": True,
                      "paused": ["grid-eth"], "renews_at": None}),
    ("payment_failed", {"portal_url": "https://billing.stripe.com/p/session/test_123"}),
    ("exchange_connected", {"exchange": "binance", "title": "Binance", "trade": True,
                            "withdraw": False, "egress_ips": ["127.0.0.1"]}),
]  # fmt: skip


def test_every_kind_has_one_payload_class() -> None:
    assert set(NOTICE_OF_KIND) == set(NotificationKind)
    assert all(notice.kind == kind for kind, notice in NOTICE_OF_KIND.items())


def test_the_rows_stored_today_cover_every_kind() -> None:
    assert {kind for kind, _ in STORED_TODAY} == set(NotificationKind)


@pytest.mark.parametrize(("kind", "stored"), STORED_TODAY, ids=[k for k, _ in STORED_TODAY])
def test_a_row_stored_today_reads_back_and_is_written_the_same(
    kind: str, stored: dict[str, Any]
) -> None:
    row = json.loads(json.dumps(stored))  # as the database hands it back
    notice = read_notice(kind, row)
    assert notice.kind == kind
    assert notice.to_payload() == stored  # same keys, same values: old and new rows alike


def test_a_stored_row_comes_back_typed() -> None:
    kind, stored = STORED_TODAY[1]
    notice = read_notice(kind, stored)
    assert notice == TradeClosedNotice(
        bot_id=3, bot="sma-1", mode=BotMode.LIVE, symbol="BTC/USDT", side=OrderSide.SELL,
        reason="stop_loss", amount=Decimal("0.0051"), price=Decimal(96000),
        entry_price=Decimal("97123.5"), pnl=Decimal("-5.73"), pnl_pct=Decimal("-1.16"),
        closed=True,
    )  # fmt: skip
    assert read_notice(*STORED_TODAY[2]) == OrderRejectedNotice(
        bot_id=3, bot="sma-1", symbol="BTC/USDT", side=OrderSide.BUY, reason="insufficient_funds"
    )
    assert read_notice(*STORED_TODAY[11]) == PlanChangedNotice(
        plan=Plan.PRO, old_plan=Plan.FREE, downgrade=False, paused=(),
        renews_at=datetime(2027, 1, 5, 12, tzinfo=UTC),
    )  # fmt: skip


def test_a_kill_switch_row_from_before_orders_could_wait_still_reads() -> None:
    notice = read_notice("kill_switch", {"bots": 2, "closing": 1})
    assert notice == KillSwitchNotice(bots=2, sold=0, waiting=0)


@pytest.mark.parametrize("notice", SAMPLES, ids=lambda n: n.kind)
def test_what_a_writer_stores_reads_back_equal(notice: Any) -> None:
    stored = json.loads(json.dumps(notice.to_payload()))
    assert read_notice(notice.kind, stored) == notice


def test_an_unknown_kind_or_a_payload_that_does_not_fit_is_refused() -> None:
    with pytest.raises(UnreadableNotification, match="unknown notification kind"):
        read_notice("trade", {"bot": "x"})
    with pytest.raises(UnreadableNotification, match="mode"):
        read_notice("trade_opened", {"bot_id": 1, "bot": "x"})
    with pytest.raises(UnreadableNotification, match="amount"):
        read_notice("trade_opened", {**STORED_TODAY[0][1], "amount": "lots"})
    with pytest.raises(UnreadableNotification, match="closed"):
        read_notice("trade_closed", {**STORED_TODAY[1][1], "closed": "yes"})
