"""Several strategies, or parameter sets, over the same candles: one run each, side by side."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.backtest.runner import BacktestResult, run_backtest
from engine.exchanges.paper import FEE_RATE, SLIPPAGE
from engine.risk import RiskSettings
from engine.strategies.base import Candles, Strategy
from engine.strategies.indicators import shared_indicators

MONEY = Decimal("0.00000001")
RATIO = Decimal("0.01")


@dataclass(frozen=True)
class ComparedRun:
    """One contender's backtest, with the figures a comparison table shows."""

    result: BacktestResult
    profit_factor: Decimal | None  # gross profit / gross loss of closed trades; None: no loss

    @property
    def label(self) -> str:
        params = ",".join(f"{k}={v}" for k, v in self.result.params.items())
        return f"{self.result.strategy}:{params}" if params else self.result.strategy


def profit_factor(result: BacktestResult) -> Decimal | None:
    """Gross profit over gross loss of the closed trades (Decimal ledger); None without a loss."""
    won = sum((t.pnl for t in result.trades if t.pnl > 0), Decimal(0))
    lost = -sum((t.pnl for t in result.trades if t.pnl < 0), Decimal(0))
    if lost == 0:
        return None
    return (won / lost).quantize(RATIO)


def compare(
    candles: Candles,
    contenders: Sequence[tuple[Strategy, Mapping[str, Any]]],
    *,
    capital: Decimal,
    risk: RiskSettings,
    fee_rate: Decimal = FEE_RATE,
    slippage: Decimal = SLIPPAGE,
    progress: Callable[[float], None] | None = None,
) -> list[ComparedRun]:
    """Backtest each (strategy, parameters) on ``candles`` with the same capital and risk.

    Indicators are shared between contenders (SMA 21 is computed once for 9/21 and 5/21).
    ``progress``, if given, gets the fraction of contenders done.
    """
    runs: list[ComparedRun] = []
    with shared_indicators():
        for done, (strategy, params) in enumerate(contenders, start=1):
            result = run_backtest(
                candles, strategy, params, capital=capital, risk=risk, fee_rate=fee_rate,
                slippage=slippage,
            )  # fmt: skip
            runs.append(ComparedRun(result, profit_factor(result)))
            if progress is not None:
                progress(done / len(contenders))
    return runs
