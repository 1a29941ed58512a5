"""What a backtest job runs (its spec) and what it found (its summary), as plain JSON.

Both travel through the database between processes (the chat queues a spec, a worker
writes the summary) and out of ``robotrader backtest --json``: money and percentages
are decimal strings, times are milliseconds since the epoch (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, Literal

from engine.backtest.runner import FILL_RULE, BacktestResult
from engine.risk import RiskSettings, Target

Source = Literal["exchange", "replay"]


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


# RiskSettings fields that are not a Decimal (or None) of their own.
_STRUCTURED = ("targets", "breakeven")


def risk_to_json(risk: RiskSettings) -> dict[str, Any]:
    data: dict[str, Any] = {
        f.name: _str(getattr(risk, f.name)) for f in fields(risk) if f.name not in _STRUCTURED
    }
    data["targets"] = [[str(t.profit_pct), str(t.share_pct)] for t in risk.targets]
    data["breakeven"] = risk.breakeven
    return data


def risk_from_json(data: dict[str, Any] | None) -> RiskSettings:
    """A spec's risk settings; one stored before targets and breakeven existed has neither."""
    data = data or {}
    return RiskSettings(
        **{
            f.name: _dec(data.get(f.name))
            for f in fields(RiskSettings)
            if f.name not in _STRUCTURED
        },
        targets=tuple(
            Target(Decimal(profit), Decimal(share)) for profit, share in data.get("targets") or ()
        ),
        breakeven=bool(data.get("breakeven", False)),
    )


@dataclass(frozen=True)
class BacktestSpec:
    """One backtest, fully resolved: every default filled in, every value validated."""

    exchange: str
    symbol: str
    timeframe: str
    strategy: str
    parameters: dict[str, Any]
    capital: Decimal
    start_ms: int
    end_ms: int
    days: int
    risk: RiskSettings = field(default_factory=RiskSettings)
    bot: str | None = None  # the bot's name, when a bot's own settings are backtested
    offline: bool = False  # the shipped replay data, never the exchange

    def to_json(self) -> dict[str, Any]:
        return {
            "exchange": self.exchange,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "strategy": self.strategy,
            "parameters": dict(self.parameters),
            "capital": str(self.capital),
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "days": self.days,
            "risk": risk_to_json(self.risk),
            "bot": self.bot,
            "offline": self.offline,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BacktestSpec:
        return cls(
            exchange=str(data["exchange"]),
            symbol=str(data["symbol"]),
            timeframe=str(data["timeframe"]),
            strategy=str(data["strategy"]),
            parameters=dict(data.get("parameters") or {}),
            capital=Decimal(str(data["capital"])),
            start_ms=int(data["start_ms"]),
            end_ms=int(data["end_ms"]),
            days=int(data["days"]),
            risk=risk_from_json(data.get("risk")),
            bot=data.get("bot"),
            offline=bool(data.get("offline", False)),
        )


@dataclass(frozen=True)
class BacktestSummary:
    """The figures of a finished backtest (see ``BacktestResult`` for how each is computed)."""

    spec: BacktestSpec
    source: Source  # where the candles came from
    candles: int
    first_candle_ms: int
    last_candle_ms: int
    final_equity: Decimal
    total_pnl: Decimal
    total_pnl_pct: Decimal
    max_drawdown_pct: Decimal
    win_rate_pct: Decimal | None
    sharpe: Decimal | None
    exposure_pct: Decimal
    buy_and_hold_pct: Decimal
    trade_count: int
    rejected_orders: int
    blocked_entries: int
    fee_rate: Decimal
    slippage: Decimal
    fill_rule: str = FILL_RULE

    @classmethod
    def of(cls, spec: BacktestSpec, result: BacktestResult, source: Source) -> BacktestSummary:
        return cls(
            spec=spec,
            source=source,
            candles=result.candles,
            first_candle_ms=result.start_time,
            last_candle_ms=result.end_time,
            final_equity=result.final_equity,
            total_pnl=result.total_pnl,
            total_pnl_pct=result.total_pnl_pct,
            max_drawdown_pct=result.max_drawdown_pct,
            win_rate_pct=result.win_rate_pct,
            sharpe=result.sharpe,
            exposure_pct=result.exposure_pct,
            buy_and_hold_pct=result.buy_and_hold_pct,
            trade_count=result.trade_count,
            rejected_orders=result.rejected_orders,
            blocked_entries=result.blocked_entries,
            fee_rate=result.fee_rate,
            slippage=result.slippage,
            fill_rule=result.fill_rule,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_json(),
            "source": self.source,
            "candles": self.candles,
            "first_candle_ms": self.first_candle_ms,
            "last_candle_ms": self.last_candle_ms,
            "final_equity": str(self.final_equity),
            "total_pnl": str(self.total_pnl),
            "total_pnl_pct": str(self.total_pnl_pct),
            "max_drawdown_pct": str(self.max_drawdown_pct),
            "win_rate_pct": _str(self.win_rate_pct),
            "sharpe": _str(self.sharpe),
            "exposure_pct": str(self.exposure_pct),
            "buy_and_hold_pct": str(self.buy_and_hold_pct),
            "trade_count": self.trade_count,
            "rejected_orders": self.rejected_orders,
            "blocked_entries": self.blocked_entries,
            "fee_rate": str(self.fee_rate),
            "slippage": str(self.slippage),
            "fill_rule": self.fill_rule,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BacktestSummary:
        source: Source = "replay" if data.get("source") == "replay" else "exchange"
        return cls(
            spec=BacktestSpec.from_json(data["spec"]),
            source=source,
            candles=int(data["candles"]),
            first_candle_ms=int(data["first_candle_ms"]),
            last_candle_ms=int(data["last_candle_ms"]),
            final_equity=Decimal(data["final_equity"]),
            total_pnl=Decimal(data["total_pnl"]),
            total_pnl_pct=Decimal(data["total_pnl_pct"]),
            max_drawdown_pct=Decimal(data["max_drawdown_pct"]),
            win_rate_pct=_dec(data.get("win_rate_pct")),
            sharpe=_dec(data.get("sharpe")),
            exposure_pct=Decimal(data["exposure_pct"]),
            buy_and_hold_pct=Decimal(data["buy_and_hold_pct"]),
            trade_count=int(data["trade_count"]),
            rejected_orders=int(data["rejected_orders"]),
            blocked_entries=int(data["blocked_entries"]),
            fee_rate=Decimal(data["fee_rate"]),
            slippage=Decimal(data["slippage"]),
            fill_rule=str(data.get("fill_rule") or FILL_RULE),
        )
