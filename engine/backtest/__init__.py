"""Backtests: a bot's own strategy and risk code run over historical candles."""

from engine.backtest.runner import (
    FILL_RULE,
    SHARPE_FORMULA,
    AmountOutOfRange,
    BacktestFill,
    BacktestResult,
    BacktestTrade,
    OpenPosition,
    run_backtest,
)

__all__ = [
    "FILL_RULE",
    "SHARPE_FORMULA",
    "AmountOutOfRange",
    "BacktestFill",
    "BacktestResult",
    "BacktestTrade",
    "OpenPosition",
    "run_backtest",
]
