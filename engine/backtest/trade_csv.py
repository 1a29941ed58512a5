"""A backtest's closed trades as CSV: one row per trade, with a header.

The one rendering of the export: ``robotrader backtest --csv FILE`` writes it and
the chat attaches it to the result as a document. Times are ISO 8601 in UTC,
money and percentages the summary's own decimal strings (a spreadsheet reads
them as numbers, in any locale's import dialog), so the file is the same in
every language.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from engine.backtest.summary import BacktestSummary

COLUMNS = (
    "entry_time",
    "exit_time",
    "symbol",
    "side",
    "amount",
    "entry_price",
    "exit_price",
    "fees",
    "pnl",
    "pnl_pct",
    "exit_reason",
)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def trades_csv(summary: BacktestSummary) -> str:
    """The trades of ``summary`` as CSV text (the header alone when there are none)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for trade in summary.trades:
        writer.writerow(
            (
                _iso(trade.entry_time_ms),
                _iso(trade.exit_time_ms),
                summary.spec.symbol,
                trade.side,
                trade.amount,
                trade.entry_price,
                trade.exit_price,
                trade.fees,
                trade.pnl,
                trade.pnl_pct,
                trade.exit_reason,
            )
        )
    return out.getvalue()


def csv_filename(summary: BacktestSummary) -> str:
    """A file name that says what the trades are: ``backtest-rsi-BTC-USDT-2025-01-31.csv``."""
    spec = summary.spec
    day = datetime.fromtimestamp(spec.end_ms / 1000, UTC).strftime("%Y-%m-%d")
    symbol = "".join(c if c.isalnum() else "-" for c in spec.symbol)
    return f"backtest-{spec.strategy}-{symbol}-{day}.csv"
