"""A backtest as a front end shows it: what was asked, how far the job got, what it found.

The engine's backtester defines them; front ends take them from here, since
they import robotrader/ only.
"""

from __future__ import annotations

from engine.backtest.coverage import DataCoverage
from engine.backtest.jobs import STAGES
from engine.backtest.summary import BacktestSpec, BacktestSummary, TradeRecord
from engine.backtest.trade_csv import csv_filename, trades_csv

__all__ = [
    "STAGES",
    "BacktestSpec",
    "BacktestSummary",
    "DataCoverage",
    "TradeRecord",
    "csv_filename",
    "trades_csv",
]
