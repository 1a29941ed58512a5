"""What a strategy is: declared parameters, one shared vectorised computation, one cheap decision.

The same two functions run in the live tick and in the backtest:

- ``compute(candles, params)`` is pure and vectorised (numpy): it turns a market's
  candles into one signal per candle. The tick computes it ONCE per
  (market, strategy, parameters) and shares the result among every bot on it.
- ``decide(signal, price, position, params)`` is per bot and cheap: given the
  signal of the last closed candle, its close, and what the bot holds, it says
  whether to buy or sell and how much.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
SignalArray = npt.NDArray[np.int8]

ParamValue = int | float
Params = Mapping[str, ParamValue]


@dataclass(frozen=True)
class Candles:
    """OHLCV of one market, oldest first; ``time`` is each candle's open time in ms (UTC)."""

    time: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __len__(self) -> int:
        return int(self.time.shape[0])

    @classmethod
    def from_rows(cls, rows: list[list[float]] | npt.NDArray[Any]) -> Candles:
        """From ccxt's ``[[ts, open, high, low, close, volume], ...]``."""
        array = np.asarray(rows, dtype=np.float64).reshape(-1, 6)
        return cls(
            time=array[:, 0].astype(np.int64),
            open=array[:, 1].copy(),
            high=array[:, 2].copy(),
            low=array[:, 3].copy(),
            close=array[:, 4].copy(),
            volume=array[:, 5].copy(),
        )

    def tail(self, n: int) -> Candles:
        return Candles(
            self.time[-n:],
            self.open[-n:],
            self.high[-n:],
            self.low[-n:],
            self.close[-n:],
            self.volume[-n:],
        )


class ParameterError(ValueError):
    """A parameter value a strategy refuses.

    ``problem`` names the catalog text that says why (``parameter.<problem>``, filled
    with ``args``): the engine knows no language, the front ends translate.
    """

    def __init__(self, problem: str, **args: object) -> None:
        super().__init__(f"{problem}: {args}" if args else problem)
        self.problem = problem
        self.args_ = args


@dataclass(frozen=True)
class Param:
    """A declared parameter: validated on bot creation, offered with its default in chat."""

    name: str
    kind: type[int] | type[float]
    default: ParamValue
    minimum: ParamValue
    maximum: ParamValue

    def validate(self, value: Any) -> ParamValue:
        """The value converted to ``kind``; ParameterError naming the range otherwise."""
        try:
            number = self.kind(value)
        except (TypeError, ValueError):
            raise ParameterError("not_a_number", name=self.name) from None
        if isinstance(number, float) and not np.isfinite(number):
            raise ParameterError("not_a_number", name=self.name)
        if not self.minimum <= number <= self.maximum:
            raise ParameterError(
                "out_of_range", name=self.name, minimum=self.minimum, maximum=self.maximum
            )
        return number


@dataclass(frozen=True)
class PositionState:
    """What a bot holds in one symbol when it decides. ``amount == 0`` means flat."""

    amount: float = 0.0
    average_entry: float = 0.0
    entries: int = 0  # buys that built the position (DCA safety orders, grid steps)

    @property
    def is_open(self) -> bool:
        return self.amount > 0


@dataclass(frozen=True)
class Intent:
    """An order the strategy wants.

    ``fraction`` is of the bot's per-symbol allocation for buys and of the
    position for sells (1.0 = all). ``reason`` names the rule (entry, exit,
    safety, grid_buy, grid_sell, take_profit...) and is part of the order's
    idempotent client id together with the bot and the candle time.
    """

    side: Literal["buy", "sell"]
    fraction: float
    reason: str


FLAT = PositionState()

Pane = Literal["price", "oscillator"]


@dataclass(frozen=True)
class Line:
    """A series the strategy decides on, one value per candle (NaN where it does not exist yet).

    ``name`` is a catalog key suffix (``indicator.<name>``) filled with ``args``,
    e.g. ``indicator.sma`` with ``{"period": 9}`` reads "SMA 9".
    """

    name: str
    values: FloatArray
    pane: Pane = "price"
    args: Mapping[str, ParamValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Level:
    """A value the strategy acts at: an RSI threshold, a grid line, a DCA safety price.

    ``name`` is a catalog key suffix (``indicator.<name>``) filled with ``args``.
    """

    name: str
    value: float
    pane: Pane = "price"
    args: Mapping[str, ParamValue] = field(default_factory=dict)


@dataclass(frozen=True)
class StrategyView:
    """What a strategy decides on, for charts (every value) and a bot's status (the last)."""

    lines: tuple[Line, ...] = ()
    levels: tuple[Level, ...] = ()


# Intents are immutable: the common ones are made once, not on every call of decide().
ENTER = Intent("buy", 1.0, "entry")
EXIT = Intent("sell", 1.0, "exit")


@dataclass(frozen=True)
class StrategyInfo:
    """What users see of a strategy. Its words are catalog keys: the front ends translate them."""

    name: str
    basic: bool  # available on the Free plan
    params: tuple[Param, ...] = field(default_factory=tuple)

    @property
    def title_key(self) -> str:
        """The catalog key of the strategy's name as users read it."""
        return f"strategy.{self.name}.title"

    def help_key(self, param: str) -> str:
        """The catalog key of what parameter ``param`` does."""
        return f"strategy.{self.name}.param.{param}.help"


class Strategy(ABC):
    """Subclasses declare ``info`` and implement ``compute`` and ``decide``."""

    info: ClassVar[StrategyInfo]
    #: True when ``decide``'s answer depends on the signal and on whether a position is open,
    #: nothing else (not the price, the amount, the average entry or the entries). The
    #: backtester then asks ``decide`` once per signal value, flat and holding, and finds the
    #: fills with numpy instead of calling it on every signal; a test holds each strategy
    #: that says so to it.
    decides_on_signal_and_holding: ClassVar[bool] = False

    def defaults(self) -> dict[str, ParamValue]:
        return {p.name: p.default for p in self.info.params}

    def validate(self, params: Mapping[str, Any]) -> dict[str, ParamValue]:
        """Defaults filled in, every value checked; ValueError on an unknown name or bad value."""
        known = {p.name: p for p in self.info.params}
        unknown = set(params) - set(known)
        if unknown:
            raise ParameterError(
                "unknown", names=", ".join(sorted(unknown)), known=", ".join(known) or "—"
            )
        values = self.defaults()
        for name, value in params.items():
            values[name] = known[name].validate(value)
        self.check(values)
        return values

    def check(self, params: Params) -> None:
        """Cross-parameter rules (e.g. fast < slow); raise ParameterError. None by default."""
        return None

    def view(
        self, candles: Candles, params: Params, position: PositionState = FLAT
    ) -> StrategyView:
        """The indicators and levels the decisions come from, over ``candles``.

        ``position`` matters to strategies whose levels follow the bot's own entries
        (DCA's safety and take-profit prices). Pure, like ``compute``; nothing by default.
        """
        return StrategyView()

    @abstractmethod
    def warmup(self, params: Params) -> int:
        """Closed candles needed before the last signal is meaningful."""

    @abstractmethod
    def compute(self, candles: Candles, params: Params) -> SignalArray:
        """One signal per candle (int8; meaning is the strategy's own). Pure, vectorised."""

    @abstractmethod
    def decide(
        self, signal: int, price: float, position: PositionState, params: Params
    ) -> Intent | None:
        """The order (if any) a bot with ``position`` places after a candle with ``signal``."""
