"""What a backtest's period really held: a later listing, holes in the data, the trades export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from engine.backtest.candles import HistoricalCandles
from engine.backtest.coverage import coverage_of
from engine.backtest.jobs import execute
from engine.backtest.summary import BacktestSpec, BacktestSummary
from engine.backtest.trade_csv import COLUMNS, csv_filename, trades_csv
from engine.exchanges.clients import ClientPool
from tests.emulators.exchange import ExchangeEmulator

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
START = 1_704_067_200_000  # 2024-01-01T00:00Z


@pytest.fixture(scope="module")
def emulator() -> Iterator[ExchangeEmulator]:
    with ExchangeEmulator() as emu:
        yield emu


def spec_of(symbol: str, timeframe: str, days: int, **changes: object) -> BacktestSpec:
    values: dict[str, object] = dict(
        exchange="binance", symbol=symbol, timeframe=timeframe, strategy="sma_crossover",
        parameters={"fast": 3, "slow": 8}, capital=Decimal(1000), start_ms=START,
        end_ms=START + days * DAY, days=days,
    )  # fmt: skip
    values.update(changes)
    return BacktestSpec(**values)  # type: ignore[arg-type]


async def test_a_later_listing_clips_the_period_and_holes_are_reported(
    emulator: ExchangeEmulator, tmp_path: Path
) -> None:
    listed = START + 2 * DAY + 5 * HOUR
    short_hole = (START + 3 * DAY, START + 3 * DAY + 3 * HOUR)  # 3 candles missing
    long_hole = (START + 4 * DAY + 10 * HOUR, START + 5 * DAY)  # 14 candles missing
    emulator.set_history("binance", "ADA/USDT", listed_ms=listed, holes=[short_hole, long_hole])
    spec = spec_of("ADA/USDT", "1h", 7)
    pool = ClientPool({"binance": emulator.base_url})
    try:
        # Pages of 40 through the real ccxt: a page after a hole reaches further in time.
        history = HistoricalCandles(pool, tmp_path, page_limit=40)
        execution = await execute(spec, history)
        again = await history.history("binance", "ADA/USDT", "1h", spec.start_ms, spec.end_ms)
    finally:
        await pool.close()
    assert execution.source == "exchange"
    times = execution.candles.time
    assert int(times[0]) == listed and int(times[-1]) == spec.end_ms - HOUR
    assert not ((times >= short_hole[0]) & (times < short_hole[1])).any()
    np.testing.assert_array_equal(again.candles.time, times)  # the cache keeps the holes too

    summary = BacktestSummary.of(spec, execution.result, execution.source, execution.candles)
    coverage = summary.coverage
    assert coverage is not None and coverage.clipped
    assert (coverage.requested_first_ms, coverage.first_candle_ms) == (START, listed)
    assert (coverage.gaps, coverage.missing_candles) == (2, 3 + 14)
    assert coverage.longest_gap_candles == 14
    assert (coverage.longest_gap_first_ms, coverage.longest_gap_last_ms) == (
        long_hole[0],
        long_hole[1] - HOUR,
    )
    assert summary.candles == len(times) == 7 * 24 - (2 * 24 + 5) - 17
    figures = summary.to_json()
    assert figures["coverage"]["clipped"] is True and figures["synthetic"] is False
    assert BacktestSummary.from_json(figures) == summary


def test_coverage_counts_a_missing_end_and_nothing_when_complete() -> None:
    step = HOUR
    full = START + step * np.arange(48, dtype=np.int64)
    complete = coverage_of(full, START, START + 2 * DAY, step)
    assert not complete.clipped and complete.gaps == complete.missing_candles == 0
    assert complete.longest_gap_first_ms is None
    cut = coverage_of(full[:40], START + 1, START + 2 * DAY, step)  # start mid-candle
    assert cut.requested_first_ms == START + step and cut.clipped is False
    assert (cut.gaps, cut.missing_candles, cut.longest_gap_first_ms) == (1, 8, START + 40 * step)


async def test_the_trades_export_lists_every_trade(tmp_path: Path) -> None:
    spec = spec_of("BTC/USDT", "15m", 5, offline=True)
    history = HistoricalCandles(ClientPool({}), tmp_path)
    execution = await execute(spec, history)
    summary = BacktestSummary.of(spec, execution.result, execution.source, execution.candles)
    assert summary.synthetic and summary.to_json()["synthetic"] is True
    trades = execution.result.trades
    assert len(trades) >= 5
    rows = list(csv.reader(io.StringIO(trades_csv(summary))))
    assert tuple(rows[0]) == COLUMNS
    assert len(rows) == len(trades) + 1
    first = dict(zip(COLUMNS, rows[1], strict=True))
    trade = trades[0]
    assert first["entry_time"] == trade.entry_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert first["exit_time"] == trade.exit_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (first["symbol"], first["side"]) == ("BTC/USDT", "long")
    assert Decimal(first["amount"]) == trade.amount
    assert Decimal(first["entry_price"]) == trade.entry_price
    assert Decimal(first["exit_price"]) == trade.exit_price
    assert Decimal(first["fees"]) == trade.fees
    assert Decimal(first["pnl"]) == trade.pnl and Decimal(first["pnl_pct"]) == trade.pnl_pct
    assert first["exit_reason"] == trade.exit_reason
    assert sum(Decimal(row[8]) for row in rows[1:]) == sum(t.pnl for t in trades)
    assert summary.to_json()["trades"][0]["pnl"] == str(trade.pnl)
    assert csv_filename(summary) == "backtest-sma_crossover-BTC-USDT-2024-01-06.csv"


def test_a_summary_stored_before_trades_and_coverage_still_reads() -> None:
    spec = spec_of("BTC/USDT", "1h", 3)
    old = {
        "spec": spec.to_json(), "source": "exchange", "candles": 72, "first_candle_ms": START,
        "last_candle_ms": START + 71 * HOUR, "final_equity": "1000", "total_pnl": "0",
        "total_pnl_pct": "0", "max_drawdown_pct": "0", "win_rate_pct": None, "sharpe": None,
        "exposure_pct": "0", "buy_and_hold_pct": "1.5", "trade_count": 0, "rejected_orders": 0,
        "blocked_entries": 0, "fee_rate": "0.001", "slippage": "0.0005",
    }  # fmt: skip
    summary = BacktestSummary.from_json(old)
    assert summary.coverage is None and summary.trades == () and not summary.synthetic
    assert trades_csv(summary) == ",".join(COLUMNS) + "\n"
