"""Request and response bodies of the REST API and the signal webhook.

Money and quantities are Decimal and travel as strings ("1234.5"), never as
floats; requests may send them as numbers or strings.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints

from robotrader import activity_text
from robotrader.public_links import signal_url
from robotrader.reference import EXCHANGES, STRATEGIES, TIMEFRAME_MS, Target
from robotrader.settings import Settings
from robotrader.text import clean_text
from robotrader.use_cases.bot_edits import EditResult
from robotrader.use_cases.bot_settings import MAX_TARGETS, TIMEFRAMES, BotSettings
from robotrader.use_cases.bot_status import (
    BotActivity,
    HeldPosition,
    MarketActivity,
    Reading,
    Value,
)
from robotrader.use_cases.bots import (
    MAX_CAPITAL,
    MAX_SYMBOLS_PER_BOT,
    MIN_CAPITAL,
    BotSummary,
    KillSwitchResult,
    OrderInFlight,
)
from robotrader.use_cases.portfolio import AccountBalance, PeriodProfit, PositionView, TradeView
from robotrader.use_cases.signals import SignalReceipt


def _decimal_text(value: Decimal) -> str:
    """Plain notation without trailing zeros: ``100``, ``0.00012``, never ``1E+2``."""
    if not value.is_finite():
        return str(value)
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


Money = Annotated[Decimal, PlainSerializer(_decimal_text, return_type=str, when_used="json")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=32)]
# Upper bounds keep every number inside the database's NUMERIC(38, 18).
Percent = Annotated[Decimal, Field(gt=0, le=100, allow_inf_nan=False)]
Amount = Annotated[Decimal, Field(gt=0, le=Decimal("1e12"), allow_inf_nan=False)]
ParamValue = Annotated[float, Field(allow_inf_nan=False, ge=-1e12, le=1e12)]


def _documented(**schema: Any) -> Any:
    """Constraints shown in the OpenAPI schema but checked by the use case, whose messages
    name the valid choices (the same rules and words as in the chat)."""
    return Field(json_schema_extra=schema)


class TargetIn(BaseModel):
    """A take-profit target: at +``profit_pct`` % sell ``share_pct`` % of the position."""

    model_config = ConfigDict(extra="forbid")
    profit_pct: Annotated[Decimal, Field(gt=0, le=1000, allow_inf_nan=False)]
    share_pct: Percent


class TargetOut(BaseModel):
    profit_pct: Money
    share_pct: Money


class BotCreate(BaseModel):
    """A new bot; it starts stopped and on paper, as from the chat."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"exchange": "binance", "symbols": ["BTC/USDT"], "strategy": "dca",
                 "capital": "1000"}
            ]
        },
    )  # fmt: skip

    exchange: Annotated[ShortText, _documented(enum=list(EXCHANGES))]
    symbols: list[
        Annotated[ShortText, _documented(pattern=r"^[A-Za-z0-9]{1,15}/[A-Za-z0-9]{2,10}$")]
    ] = Field(min_length=1, max_length=MAX_SYMBOLS_PER_BOT)
    strategy: Annotated[ShortText, _documented(enum=list(STRATEGIES))]
    capital: Annotated[
        Decimal,
        Field(allow_inf_nan=False),
        _documented(minimum=int(MIN_CAPITAL), maximum=int(MAX_CAPITAL)),
    ]
    parameters: dict[ShortText, ParamValue] = Field(default_factory=dict, max_length=20)
    name: (
        Annotated[str, StringConstraints(max_length=32), _documented(pattern=r"^[\w\-. ]{1,32}$")]
        | None
    ) = None
    timeframe: Annotated[
        str, StringConstraints(max_length=8), _documented(enum=list(TIMEFRAME_MS))
    ] = "1m"
    stop_loss_pct: Percent | None = None
    take_profit_pct: Percent | None = None
    max_position: Amount | None = None
    daily_loss_limit_pct: Percent | None = None
    # Sell ``share_pct`` of the position at ``profit_pct`` each (instead of take_profit_pct).
    take_profit_targets: list[TargetIn] = Field(default_factory=list, max_length=MAX_TARGETS)
    # Sell when the price falls this % under its high since entry; armed after +arm %.
    trailing_stop_pct: Percent | None = None
    trailing_arm_pct: Annotated[Decimal, Field(ge=0, le=1000, allow_inf_nan=False)] | None = None
    # After the first target, the stop moves to the entry price (needs targets).
    breakeven_after_target: bool = False

    def settings(self) -> BotSettings:
        """The body's timeframe, stops, exits and limits; `create_bot` checks their ranges."""
        return BotSettings(
            timeframe=clean_text(self.timeframe, max_length=8),
            stop_loss_pct=self.stop_loss_pct,
            take_profit_pct=self.take_profit_pct,
            targets=tuple(Target(t.profit_pct, t.share_pct) for t in self.take_profit_targets),
            trailing_stop_pct=self.trailing_stop_pct,
            trailing_arm_pct=self.trailing_arm_pct,
            breakeven=self.breakeven_after_target,
            max_position=self.max_position,
            daily_loss_limit_pct=self.daily_loss_limit_pct,
        )


Setting = Annotated[Decimal, Field(allow_inf_nan=False)]


class BotPatch(BaseModel):
    """Changes to a bot; a field left out stays as it is, ``null`` switches a setting off.

    Risk, exits and capital may change while the bot runs (from its next tick); strategy,
    parameters, exchange, symbols and timeframe need it stopped (409). Ranges are the
    chat's (``/editbot``): a value out of range answers 422 naming every valid one.
    ``null`` for capital, strategy, exchange, symbols or parameters changes nothing.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "stop_loss_pct": "3", "capital": "800", "breakeven_after_target": True,
                    "take_profit_targets": [
                        {"profit_pct": "2", "share_pct": "50"},
                        {"profit_pct": "4", "share_pct": "50"},
                    ],
                }
            ]
        },
    )

    timeframe: (
        Annotated[str, StringConstraints(max_length=8), _documented(enum=list(TIMEFRAMES))] | None
    ) = None
    stop_loss_pct: Annotated[Setting, _documented(minimum=0.1, maximum=99)] | None = None
    # Everything at +X % (replaces the targets) ...
    take_profit_pct: Annotated[Setting, _documented(minimum=0.1, maximum=1000)] | None = None
    # ... or a share at each of up to four profits (replaces take_profit_pct); [] or null: none.
    take_profit_targets: list[TargetIn] | None = Field(default=None, max_length=MAX_TARGETS)
    # X % under the high since entry; null switches the trailing stop off (arm included).
    trailing_stop_pct: Annotated[Setting, _documented(minimum=0.1, maximum=50)] | None = None
    trailing_arm_pct: Annotated[Setting, _documented(minimum=0, maximum=1000)] | None = None
    breakeven_after_target: bool | None = None  # stop to the entry after the first target
    max_position: Annotated[Setting, _documented(exclusiveMinimum=0)] | None = None
    daily_loss_limit_pct: Annotated[Setting, _documented(minimum=0.1, maximum=100)] | None = None
    capital: (
        Annotated[
            Decimal,
            Field(allow_inf_nan=False),
            _documented(minimum=int(MIN_CAPITAL), maximum=int(MAX_CAPITAL)),
        ]
        | None
    ) = None
    strategy: Annotated[ShortText, _documented(enum=list(STRATEGIES))] | None = None
    parameters: dict[ShortText, ParamValue] | None = Field(default=None, max_length=20)
    exchange: Annotated[ShortText, _documented(enum=list(EXCHANGES))] | None = None
    symbols: (
        list[Annotated[ShortText, _documented(pattern=r"^[A-Za-z0-9]{1,15}/[A-Za-z0-9]{2,10}$")]]
        | None
    ) = Field(default=None, min_length=1, max_length=MAX_SYMBOLS_PER_BOT)

    def settings_changes(self) -> dict[str, Any]:
        """The settings given, as changes to a bot's ``BotSettings`` (checked by the edit).

        The fields are POST /api/v1/bots's; the one rule a field name does not say: one
        take-profit and targets exclude each other, so setting one clears the other.
        """
        given = self.model_fields_set
        changes: dict[str, Any] = {}
        if "timeframe" in given:
            # null is refused by the edit, as `tf=off` is in the chat.
            changes["timeframe"] = None if self.timeframe is None else clean_text(
                self.timeframe, max_length=8
            )
        for name in ("stop_loss_pct", "max_position", "daily_loss_limit_pct", "trailing_arm_pct"):
            if name in given:
                changes[name] = getattr(self, name)
        if "take_profit_pct" in given:
            changes["take_profit_pct"] = self.take_profit_pct
            if self.take_profit_pct is not None:
                changes["targets"] = ()
        if "take_profit_targets" in given:
            given_targets = self.take_profit_targets or ()
            targets = tuple(Target(t.profit_pct, t.share_pct) for t in given_targets)
            changes["targets"] = targets
            if targets:
                changes["take_profit_pct"] = None
        if "trailing_stop_pct" in given:
            changes["trailing_stop_pct"] = self.trailing_stop_pct
            if self.trailing_stop_pct is None:
                changes["trailing_arm_pct"] = None
        if "breakeven_after_target" in given:
            changes["breakeven"] = bool(self.breakeven_after_target)
        return changes


class ChangeOut(BaseModel):
    setting: str  # stable code: bot_setting.sl, field.capital ...
    label: str  # for people, in the caller's language
    before: str | None  # null: was off
    after: str | None  # null: now off


class OrderInFlightOut(BaseModel):
    id: int
    symbol: str
    side: str
    status: str
    created_at: datetime

    @classmethod
    def of(cls, order: OrderInFlight) -> OrderInFlightOut:
        return cls(
            id=order.id, symbol=order.symbol, side=order.side, status=str(order.status),
            created_at=order.created_at,
        )  # fmt: skip


class IndicatorOut(BaseModel):
    """A value the strategy decides on: an indicator's (``pane: oscillator``) or a price."""

    name: str
    label: str  # in the token owner's language: "RSI 14"
    value: float | None  # None: not enough candles yet
    pane: str

    @classmethod
    def of(cls, value: Value, language: str) -> IndicatorOut:
        label = activity_text.label(value, language)
        finite = value.value == value.value  # NaN: warming up
        return cls(name=value.name, label=label, value=value.value if finite else None,
                   pane=value.pane)  # fmt: skip


class ReadingOut(BaseModel):
    kind: str
    text: str  # the sentence the chat shows, in the token owner's language
    values: dict[str, IndicatorOut]  # by role: line, buy, sell, first, second, level, item

    @classmethod
    def of(cls, reading: Reading, language: str) -> ReadingOut:
        return cls(
            kind=reading.kind,
            text=activity_text.reading(reading, language),
            values={role: IndicatorOut.of(v, language) for role, v in reading.values.items()},
        )


class HeldPositionOut(BaseModel):
    amount: Money
    average_entry: Money
    price: Money | None
    unrealized_pnl: Money | None
    unrealized_pct: Money | None

    @classmethod
    def of(cls, held: HeldPosition) -> HeldPositionOut:
        return cls(
            amount=held.amount, average_entry=held.average_entry, price=held.price,
            unrealized_pnl=held.unrealized_pnl, unrealized_pct=held.unrealized_pct,
        )  # fmt: skip


class MarketActivityOut(BaseModel):
    symbol: str
    # "exchange", "replay" (paper bots while the exchange is out of reach), or None: no data.
    source: str | None
    candle_closed_at: datetime | None  # the close of the candle the values are at
    price: Money | None
    readings: list[ReadingOut]
    position: HeldPositionOut | None
    # A live order the exchange has not settled: no decision on this pair until it is.
    waiting_for_order: int | None

    @classmethod
    def of(cls, market: MarketActivity, language: str) -> MarketActivityOut:
        return cls(
            symbol=market.symbol, source=market.source, candle_closed_at=market.candle_closed_at,
            price=market.price,
            readings=[ReadingOut.of(r, language) for r in market.readings],
            position=HeldPositionOut.of(market.position) if market.position else None,
            waiting_for_order=market.waiting_for.id if market.waiting_for else None,
        )  # fmt: skip


class BotActivityOut(BaseModel):
    """A running bot is alive: when the engine last evaluated it, when it decides next."""

    last_evaluated_at: datetime | None
    next_decision_at: datetime | None  # the close of the current candle of its timeframe
    engine_stale: bool  # running, but the engine has not ticked for a while
    markets: list[MarketActivityOut]

    @classmethod
    def of(cls, activity: BotActivity, language: str) -> BotActivityOut:
        return cls(
            last_evaluated_at=activity.last_evaluated_at,
            next_decision_at=activity.next_decision_at,
            engine_stale=activity.engine_stale,
            markets=[MarketActivityOut.of(m, language) for m in activity.markets],
        )


class BotOut(BaseModel):
    id: int
    name: str
    exchange: str
    symbols: list[str]
    timeframe: str
    strategy: str
    parameters: dict[str, Any]
    capital: Money
    mode: str
    status: str
    pause_reason: str | None
    market_data_source: str | None
    created_at: datetime
    stop_loss_pct: Money | None
    take_profit_pct: Money | None
    take_profit_targets: list[TargetOut]
    trailing_stop_pct: Money | None
    trailing_arm_pct: Money | None
    breakeven_after_target: bool
    max_position: Money | None
    daily_loss_limit_pct: Money | None
    # POST TradingView alerts here (signal strategy only). Keep it secret.
    signal_webhook_url: str | None
    # Live orders the exchange has not settled: the bot decides nothing on their pairs.
    waiting_for_exchange: list[OrderInFlightOut] = []
    # One bot (GET /bots/{id}): what it decides on now. Not in lists.
    activity: BotActivityOut | None = None

    @classmethod
    def of(cls, bot: BotSummary, settings: Settings) -> BotOut:
        risk = bot.settings
        return cls(
            id=bot.id, name=bot.name, exchange=bot.exchange, symbols=bot.symbols,
            timeframe=risk.timeframe, strategy=bot.strategy, parameters=bot.parameters,
            capital=bot.capital, mode=str(bot.mode), status=str(bot.status),
            pause_reason=bot.pause_reason, market_data_source=bot.market_data_source,
            created_at=bot.created_at, stop_loss_pct=risk.stop_loss_pct,
            take_profit_pct=risk.take_profit_pct,
            take_profit_targets=[
                TargetOut(profit_pct=t.profit_pct, share_pct=t.share_pct) for t in risk.targets
            ],
            trailing_stop_pct=risk.trailing_stop_pct, trailing_arm_pct=risk.trailing_arm_pct,
            breakeven_after_target=risk.breakeven, max_position=risk.max_position,
            daily_loss_limit_pct=risk.daily_loss_limit_pct,
            signal_webhook_url=(
                signal_url(settings, bot.signal_secret) if bot.signal_secret else None
            ),
            waiting_for_exchange=[OrderInFlightOut.of(o) for o in bot.in_flight],
        )  # fmt: skip


class KillSwitchIn(BaseModel):
    """Stop every bot; with ``close_positions``, sell every open position at market too."""

    model_config = ConfigDict(extra="forbid")
    close_positions: bool = False


class KillSwitchOut(BaseModel):
    """What was done now, and how many live orders still wait for the exchange."""

    bots_stopped: int
    orders_canceled: int
    positions_sold: int
    waiting: int

    @classmethod
    def of(cls, result: KillSwitchResult) -> KillSwitchOut:
        return cls(
            bots_stopped=result.bots_stopped, orders_canceled=result.orders_canceled,
            positions_sold=result.positions_sold, waiting=result.waiting,
        )  # fmt: skip


class PositionOut(BaseModel):
    bot_id: int
    bot: str
    mode: str
    symbol: str
    amount: Money
    average_entry: Money
    price: Money | None
    unrealized_pnl: Money | None
    unrealized_pct: Money | None
    opened_at: datetime

    @classmethod
    def of(cls, view: PositionView) -> PositionOut:
        return cls(
            bot_id=view.bot_id, bot=view.bot, mode=view.mode, symbol=view.symbol,
            amount=view.amount, average_entry=view.average_entry, price=view.price,
            unrealized_pnl=view.unrealized_pnl, unrealized_pct=view.unrealized_pct,
            opened_at=view.opened_at,
        )  # fmt: skip


class TradeOut(BaseModel):
    bot: str
    mode: str
    symbol: str
    amount: Money
    entry_price: Money
    exit_price: Money
    pnl: Money
    pnl_pct: Money
    exit_reason: str
    closed_at: datetime
    bot_deleted: bool = False

    @classmethod
    def of(cls, view: TradeView) -> TradeOut:
        return cls(
            bot=view.bot, mode=view.mode, symbol=view.symbol, amount=view.amount,
            entry_price=view.entry_price, exit_price=view.exit_price, pnl=view.pnl,
            pnl_pct=view.pnl_pct, exit_reason=view.exit_reason, closed_at=view.closed_at,
            bot_deleted=view.bot_deleted,
        )  # fmt: skip


class ProfitOut(BaseModel):
    period: str  # today | 7d | 30d | all
    pnl: Money
    trades: int
    wins: int
    win_rate: Money | None  # percent; None without trades

    @classmethod
    def of(cls, period: PeriodProfit) -> ProfitOut:
        return cls(
            period=period.period, pnl=period.pnl, trades=period.trades, wins=period.wins,
            win_rate=period.win_rate,
        )  # fmt: skip


class BalanceOut(BaseModel):
    account: str  # "paper" or the exchange id
    assets: dict[str, Money]
    error: str | None = None  # why an exchange could not be read (code)
    message: str | None = None  # the same, for people


class SignalIn(BaseModel):
    """A TradingView-style alert: ``{"action": "buy", "symbol": "BTCUSDT", "price": "97000"}``.

    ``ticker`` is accepted for ``symbol`` (TradingView's ``{{ticker}}``); numbers
    may be JSON numbers or strings; other fields are ignored.
    """

    model_config = ConfigDict(extra="ignore")

    action: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    symbol: Annotated[str, StringConstraints(max_length=40)] | None = Field(
        default=None, validation_alias=AliasChoices("symbol", "ticker")
    )
    price: Annotated[Decimal, Field(allow_inf_nan=False)] | None = None
    amount: Annotated[Decimal, Field(allow_inf_nan=False)] | None = None


class SignalOut(BaseModel):
    status: str  # "queued": the next tick acts on it
    signal_id: int
    bot_id: int
    action: str
    symbol: str | None
    received_at: datetime

    @classmethod
    def of(cls, receipt: SignalReceipt) -> SignalOut:
        return cls(
            status="queued", signal_id=receipt.signal_id, bot_id=receipt.bot_id,
            action=receipt.action, symbol=receipt.symbol, received_at=receipt.received_at,
        )  # fmt: skip


def balance_out(balance: AccountBalance, message: str | None) -> BalanceOut:
    return BalanceOut(
        account=balance.account, assets=dict(balance.assets), error=balance.error, message=message
    )


class BotEditOut(BaseModel):
    bot: BotOut
    settings: dict[str, str | None]  # every setting now, as /editbot takes it (null: off)
    changes: list[ChangeOut]  # empty: nothing changed
    from_next_tick: bool  # the bot runs: the engine uses the new values from its next tick

    @classmethod
    def of(cls, result: EditResult, settings: Settings, label: Callable[[str], str]) -> BotEditOut:
        return cls(
            bot=BotOut.of(result.bot, settings), settings=result.settings,
            changes=[ChangeOut(setting=c.label, label=label(c.label), before=c.before,
                               after=c.after) for c in result.changes],
            from_next_tick=result.from_next_tick,
        )  # fmt: skip
