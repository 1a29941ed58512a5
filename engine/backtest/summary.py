"""What a backtest job runs (its spec) and what it found (its summary), as plain JSON.

Both travel through the database between processes (the chat queues a spec, a worker
writes the summary) and out of ``robotrader backtest --json``: money and percentages
are decimal strings, times are milliseconds since the epoch (UTC).

A summary also carries its closed trades (the CSV export and ``--json`` list them),
which candles the period really had (``DataCoverage``: a clipped start, gaps), and
whether the candles were the offline feed's synthetic data (``synthetic``), which every
text and chart made from it says. Summaries stored before these existed read back
without trades and without coverage.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, Literal

from engine.backtest.chart_text import ChartText
from engine.backtest.coverage import DataCoverage, coverage_of
from engine.backtest.runner import FILL_RULE, BacktestResult, BacktestTrade
from engine.market_data.timeframes import timeframe_ms
from engine.risk import RiskSettings, Target
from engine.strategies.base import Candles

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
    # The chart's words in the language of whoever asked (the engine knows no catalog).
    chart_text: ChartText | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        data = {
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
        if self.chart_text is not None:
            data["chart_text"] = self.chart_text.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BacktestSpec:
        text = data.get("chart_text")
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
            chart_text=ChartText.from_json(text) if isinstance(text, dict) else None,
        )


@dataclass(frozen=True)
class TradeRecord:
    """One closed trade of a backtest, as exported (see ``BacktestTrade`` for the figures)."""

    entry_time_ms: int  # open time of the candle whose open filled the (first) buy
    exit_time_ms: int  # open time of the candle whose open filled the sell
    side: str  # "long": spot bots buy, then sell
    amount: Decimal
    entry_price: Decimal
    exit_price: Decimal
    fees: Decimal
    pnl: Decimal
    pnl_pct: Decimal
    exit_reason: str

    @classmethod
    def of(cls, trade: BacktestTrade) -> TradeRecord:
        return cls(
            entry_time_ms=trade.entry_time,
            exit_time_ms=trade.exit_time,
            side="long",
            amount=trade.amount,
            entry_price=trade.entry_price,
            exit_price=trade.exit_price,
            fees=trade.fees,
            pnl=trade.pnl,
            pnl_pct=trade.pnl_pct,
            exit_reason=trade.exit_reason,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "entry_time_ms": self.entry_time_ms,
            "exit_time_ms": self.exit_time_ms,
            "side": self.side,
            "amount": str(self.amount),
            "entry_price": str(self.entry_price),
            "exit_price": str(self.exit_price),
            "fees": str(self.fees),
            "pnl": str(self.pnl),
            "pnl_pct": str(self.pnl_pct),
            "exit_reason": self.exit_reason,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TradeRecord:
        return cls(
            entry_time_ms=int(data["entry_time_ms"]),
            exit_time_ms=int(data["exit_time_ms"]),
            side=str(data.get("side") or "long"),
            amount=Decimal(data["amount"]),
            entry_price=Decimal(data["entry_price"]),
            exit_price=Decimal(data["exit_price"]),
            fees=Decimal(data["fees"]),
            pnl=Decimal(data["pnl"]),
            pnl_pct=Decimal(data["pnl_pct"]),
            exit_reason=str(data["exit_reason"]),
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
    coverage: DataCoverage | None = None  # None: stored before it was recorded
    trades: tuple[TradeRecord, ...] = ()

    @property
    def synthetic(self) -> bool:
        """Whether the candles were the offline feed's synthetic data, not the exchange's."""
        return self.source == "replay"

    @classmethod
    def of(
        cls, spec: BacktestSpec, result: BacktestResult, source: Source, candles: Candles
    ) -> BacktestSummary:
        """The summary of ``result``, a run over ``candles`` (the period's candles there were)."""
        coverage = coverage_of(
            candles.time, spec.start_ms, spec.end_ms, timeframe_ms(spec.timeframe)
        )
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
            coverage=coverage,
            trades=tuple(TradeRecord.of(trade) for trade in result.trades),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_json(),
            "source": self.source,
            "synthetic": self.synthetic,
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
            "coverage": None if self.coverage is None else self.coverage.to_json(),
            "trades": [trade.to_json() for trade in self.trades],
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
            coverage=DataCoverage.from_json(data["coverage"]) if data.get("coverage") else None,
            trades=tuple(TradeRecord.from_json(trade) for trade in data.get("trades") or ()),
        )
