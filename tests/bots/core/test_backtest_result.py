"""The backtest result as the chat says it: synthetic data, a later start, gaps; two languages."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from bots.core.commands.backtests import result_reply
from robotrader.backtesting import BacktestSpec, BacktestSummary, DataCoverage
from robotrader.i18n import Translator

HOUR = 3_600_000
START = 1_704_067_200_000  # 2024-01-01T00:00Z


def summary(source: str, coverage: DataCoverage | None) -> BacktestSummary:
    spec = BacktestSpec(
        exchange="binance", symbol="ADA/USDT", timeframe="1h", strategy="rsi", parameters={},
        capital=Decimal(1000), start_ms=START, end_ms=START + 168 * HOUR, days=7,
    )  # fmt: skip
    return BacktestSummary(
        spec=spec, source=source, candles=98, first_candle_ms=START + 53 * HOUR,  # type: ignore[arg-type]
        last_candle_ms=START + 167 * HOUR, final_equity=Decimal(1000), total_pnl=Decimal(0),
        total_pnl_pct=Decimal(0), max_drawdown_pct=Decimal(0), win_rate_pct=None, sharpe=None,
        exposure_pct=Decimal(0), buy_and_hold_pct=Decimal(1), trade_count=0, rejected_orders=0,
        blocked_entries=0, fee_rate=Decimal("0.001"), slippage=Decimal("0.0005"),
        coverage=coverage,
    )  # fmt: skip


COVERAGE = DataCoverage(
    requested_first_ms=START, requested_last_ms=START + 167 * HOUR,
    first_candle_ms=START + 53 * HOUR, last_candle_ms=START + 167 * HOUR, gaps=2,
    missing_candles=17, longest_gap_candles=14, longest_gap_first_ms=START + 106 * HOUR,
    longest_gap_last_ms=START + 119 * HOUR,
)  # fmt: skip


def test_a_clipped_period_and_its_gaps_are_said() -> None:
    text = result_reply(Translator("en"), summary("exchange", COVERAGE), None).plain()
    assert "binance has ADA/USDT candles only from Jan 3, 2024 on" in text
    assert "2 gap(s), 17 candle(s) missing" in text
    assert "14 candle(s), from 2024-01-05 10:00 UTC to 2024-01-05 23:00 UTC" in text
    assert "Synthetic data" not in text
    pt = result_reply(Translator("pt-BR"), summary("exchange", COVERAGE), None).plain()
    assert "só a partir de" in pt and "2 lacuna(s), 17 candle(s) faltando" in pt


def test_synthetic_data_is_said_and_complete_data_adds_nothing() -> None:
    complete = replace(
        COVERAGE, first_candle_ms=START, gaps=0, missing_candles=0, longest_gap_candles=0,
        longest_gap_first_ms=None, longest_gap_last_ms=None,
    )  # fmt: skip
    exchange = result_reply(Translator("en"), summary("exchange", complete), None)
    synthetic = result_reply(Translator("pt-BR"), summary("replay", complete), None)
    assert "candles only from" not in exchange.plain() and "gap" not in exchange.plain()
    assert "⚠️ Dados sintéticos" in synthetic.plain()
    assert exchange.document is None  # no trades, no file
