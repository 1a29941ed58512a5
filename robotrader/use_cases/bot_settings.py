"""A bot's shape beyond its strategy: timeframe, stops, trailing exit, targets, limits.

One declaration of every setting a trader can give, used by every way of giving it:
the one-line ``/newbot ... tf=1h sl=3 tp=2:50,4:50 trail=1.5@2 be=1``, the /newbot
and /editbot steps, ``PATCH /api/v1/bots/{id}`` and the dashboard. Each setting has a
short key, a range, and one parser; a key that is not a setting nor one of the
strategy's parameters, or a value out of range, is a ``UserError`` that names every
valid key and its range: nothing typed is ever dropped.

``BotSettings`` is the validated whole; ``settings_of(bot)`` reads it from a bot row,
``store(bot, settings)`` writes it back and ``risk_settings`` hands the engine its
``RiskSettings``. ``changes`` lists what an edit changes, for the before/after reply and
the audit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from db.models import Bot
from engine.risk import RiskSettings, Target
from engine.strategies.base import Strategy
from robotrader.errors import UserError

TIMEFRAMES = ("1m", "5m", "15m", "1h", "4h", "1d")
MAX_TARGETS = 4
HUNDRED = Decimal(100)
OFF_WORDS = frozenset({"off", "none", "-", "0", "no", "não", "nao", "false", "desligado"})
ON_WORDS = frozenset({"1", "on", "yes", "sim", "true", "ligado"})


@dataclass(frozen=True)
class BotSettings:
    """Everything about a bot but its exchange, symbols, strategy and capital. None = off."""

    timeframe: str = "1m"
    stop_loss_pct: Decimal | None = None
    take_profit_pct: Decimal | None = None  # sell everything at +X %
    targets: tuple[Target, ...] = ()  # or sell shares at several profits
    trailing_stop_pct: Decimal | None = None
    trailing_arm_pct: Decimal | None = None
    breakeven: bool = False
    max_position: Decimal | None = None
    daily_loss_limit_pct: Decimal | None = None

    def check(self) -> BotSettings:
        """Every value in its range and the rules across settings; the settings when they hold.

        Settings made field by field (the REST API, the command line) meet the same ranges
        as typed ones: each value goes through its option's parser once more.
        """
        if self.timeframe not in TIMEFRAMES:  # a timeframe is never off
            raise UserError(
                "bad_option", problem="option.bad_value", setting="tf",
                value=str(self.timeframe)[:20], range=OPTIONS["tf"].range, valid=valid_keys(None),
            )  # fmt: skip
        if self.take_profit_pct is not None and self.targets:
            raise UserError("bad_option", problem="option.tp_twice", valid=valid_keys(None))
        if self.trailing_arm_pct is not None and self.trailing_stop_pct is None:
            raise UserError("bad_option", problem="option.arm_needs_trail", valid=valid_keys(None))
        if self.breakeven and not self.targets:
            raise UserError(
                "bad_option", problem="option.breakeven_needs_targets", valid=valid_keys(None)
            )
        for key, value in option_values(self).items():
            if value is None:
                continue
            read = parse_options([f"{key}={value}"], None).settings
            if any(read[name] != getattr(self, name) for name in OPTIONS[key].fields):
                option = OPTIONS[key]
                raise UserError(
                    "bad_option", problem="option.bad_value", setting=key, value=value[:20],
                    range=option.range, valid=valid_keys(None),
                )  # fmt: skip
        return self


def _decimal(text: str) -> Decimal:
    try:
        number = Decimal(text.strip().rstrip("%").replace(",", "."))
    except InvalidOperation:
        raise ValueError(text) from None
    if not number.is_finite():
        raise ValueError(text)
    return number


def _in_range(low: Decimal, high: Decimal) -> Callable[[str], Decimal]:
    def parse(text: str) -> Decimal:
        number = _decimal(text)
        if not low <= number <= high:
            raise ValueError(text)
        return number

    return parse


_stop_pct = _in_range(Decimal("0.1"), Decimal(99))
_profit_pct = _in_range(Decimal("0.1"), Decimal(1000))
_share_pct = _in_range(Decimal(1), HUNDRED)
_trail_pct = _in_range(Decimal("0.1"), Decimal(50))
_arm_pct = _in_range(Decimal(0), Decimal(1000))
_loss_pct = _in_range(Decimal("0.1"), HUNDRED)


def _timeframe(text: str) -> dict[str, Any]:
    value = text.strip().lower()
    if value not in TIMEFRAMES:
        raise ValueError(text)
    return {"timeframe": value}


def _take_profit(text: str) -> dict[str, Any]:
    """``3`` (everything at +3 %) or ``2:50,4:50`` (half at +2 %, half at +4 %)."""
    if ":" not in text:
        return {"take_profit_pct": _profit_pct(text), "targets": ()}
    targets: list[Target] = []
    for part in text.split(","):
        profit, _, share = part.partition(":")
        targets.append(Target(_profit_pct(profit), _share_pct(share)))
    profits = [target.profit_pct for target in targets]
    if (
        len(targets) > MAX_TARGETS
        or profits != sorted(set(profits))
        or sum(target.share_pct for target in targets) > HUNDRED
    ):
        raise ValueError(text)
    return {"take_profit_pct": None, "targets": tuple(targets)}


def _trailing(text: str) -> dict[str, Any]:
    """``1.5`` (1.5 % under the high since entry) or ``1.5@2`` (armed after +2 %)."""
    distance, _, arm = text.partition("@")
    return {
        "trailing_stop_pct": _trail_pct(distance),
        "trailing_arm_pct": _arm_pct(arm) if arm else None,
    }


def _breakeven(text: str) -> dict[str, Any]:
    value = text.strip().lower()
    if value in ON_WORDS:
        return {"breakeven": True}
    if value in OFF_WORDS:
        return {"breakeven": False}
    raise ValueError(text)


def _max_position(text: str) -> dict[str, Any]:
    return {"max_position": _in_range(Decimal("0.01"), Decimal(10_000_000))(text)}


@dataclass(frozen=True)
class Option:
    """A setting as typed: ``key=value``; ``range`` says what it takes, in any language."""

    key: str
    fields: tuple[str, ...]
    range: str
    parse: Callable[[str], dict[str, Any]]
    can_be_off: bool = True


OPTIONS: dict[str, Option] = {
    option.key: option
    for option in (
        Option("tf", ("timeframe",), "|".join(TIMEFRAMES), _timeframe, can_be_off=False),
        Option("sl", ("stop_loss_pct",), "0.1-99 %", lambda t: {"stop_loss_pct": _stop_pct(t)}),
        Option(
            "tp",
            ("take_profit_pct", "targets"),
            f"0.1-1000 % | %:share,... (<= {MAX_TARGETS}, shares <= 100 %)",
            _take_profit,
        ),
        Option(
            "trail", ("trailing_stop_pct", "trailing_arm_pct"), "0.1-50 %[@0-1000 %]", _trailing
        ),
        Option("be", ("breakeven",), "0|1", _breakeven),
        Option("max", ("max_position",), "0.01-10000000", _max_position),
        Option(
            "dll",
            ("daily_loss_limit_pct",),
            "0.1-100 %",
            lambda t: {"daily_loss_limit_pct": _loss_pct(t)},
        ),
    )
}


def valid_keys(strategy: Strategy | None) -> str:
    """Every key a trader may type for a bot of ``strategy``, with what it takes."""
    keys = [f"{option.key}={option.range}" for option in OPTIONS.values()]
    if strategy is not None:
        keys += parameter_ranges(strategy)
    return ", ".join(keys)


def parameter_ranges(strategy: Strategy) -> list[str]:
    """``["period=2-50", ...]``: the strategy's parameters as typed, with their ranges."""
    return [f"{p.name}={_plain(p.minimum)}-{_plain(p.maximum)}" for p in strategy.info.params]


def _plain(value: float | int) -> str:
    """A range's end as people write it: ``1``, ``0.5``, ``0.00000001``, ``10000000``."""
    return _number(Decimal(repr(value)))


@dataclass(frozen=True)
class Options:
    """What ``key=value`` words asked for: settings fields to set, strategy parameters."""

    settings: Mapping[str, Any]
    parameters: Mapping[str, str]


def parse_options(words: Iterable[str], strategy: Strategy | None) -> Options:
    """``["tf=1h", "sl=3", "period=7"]`` -> settings and parameters; UserError on any bad word.

    ``key=off`` switches a setting off (for edits). Parameters are checked by the
    strategy when the bot is validated; here only their names.
    """
    settings: dict[str, Any] = {}
    parameters: dict[str, str] = {}
    params = {p.name for p in strategy.info.params} if strategy is not None else set()
    for word in words:
        key, equals, value = word.partition("=")
        key = key.strip().lower()
        value = value.strip()
        if not equals or not key or not value:
            raise UserError(
                "bad_option", problem="option.not_key_value", word=word[:40],
                valid=valid_keys(strategy),
            )  # fmt: skip
        option = OPTIONS.get(key)
        if option is None:
            if key in params:
                parameters[key] = value
                continue
            raise UserError(
                "bad_option", problem="option.unknown", setting=key[:20], valid=valid_keys(strategy)
            )
        if option.can_be_off and value.lower() in OFF_WORDS and key != "be":
            settings.update(dict.fromkeys(option.fields))
            if key == "tp":
                settings["targets"] = ()
            continue
        try:
            settings.update(option.parse(value))
        except ValueError:
            raise UserError(
                "bad_option", problem="option.bad_value", setting=key, value=value[:20],
                range=option.range, valid=valid_keys(strategy),
            ) from None  # fmt: skip
    return Options(settings, parameters)


def with_changes(settings: BotSettings, changes: Mapping[str, Any]) -> BotSettings:
    """``settings`` with ``changes`` (fields of BotSettings) applied and checked."""
    unknown = set(changes) - {f.name for f in fields(BotSettings)}
    if unknown:
        raise ValueError(f"not bot settings: {sorted(unknown)}")
    return replace(settings, **changes).check()


def settings_of(bot: Bot) -> BotSettings:
    return BotSettings(
        timeframe=bot.timeframe,
        stop_loss_pct=bot.stop_loss_pct,
        take_profit_pct=bot.take_profit_pct,
        targets=tuple(
            Target(Decimal(profit), Decimal(share))
            for profit, share in (bot.take_profit_targets or ())
        ),
        trailing_stop_pct=bot.trailing_stop_pct,
        trailing_arm_pct=bot.trailing_arm_pct,
        breakeven=bool(bot.breakeven_after_target),
        max_position=bot.max_position,
        daily_loss_limit_pct=bot.daily_loss_limit_pct,
    )


def store(bot: Bot, settings: BotSettings) -> None:
    """Write ``settings`` on the bot row (the caller holds it in a transaction)."""
    bot.timeframe = settings.timeframe
    bot.stop_loss_pct = settings.stop_loss_pct
    bot.take_profit_pct = settings.take_profit_pct
    bot.take_profit_targets = [
        [str(target.profit_pct), str(target.share_pct)] for target in settings.targets
    ] or None
    bot.trailing_stop_pct = settings.trailing_stop_pct
    bot.trailing_arm_pct = settings.trailing_arm_pct
    bot.breakeven_after_target = settings.breakeven
    bot.max_position = settings.max_position
    bot.daily_loss_limit_pct = settings.daily_loss_limit_pct


def risk_settings(settings: BotSettings) -> RiskSettings:
    """The engine's view of the risk and exit settings."""
    return RiskSettings(
        stop_loss_pct=settings.stop_loss_pct,
        take_profit_pct=settings.take_profit_pct,
        max_position=settings.max_position,
        daily_loss_limit_pct=settings.daily_loss_limit_pct,
        trailing_stop_pct=settings.trailing_stop_pct,
        trailing_arm_pct=settings.trailing_arm_pct,
        targets=settings.targets,
        breakeven=settings.breakeven,
    )


def _number(value: Decimal) -> str:
    return format(value.normalize(), "f")


def option_values(settings: BotSettings) -> dict[str, str | None]:
    """Each option's value in the one-line form (``None`` when off): ``{"sl": "3", ...}``."""
    tp: str | None = None
    if settings.targets:
        tp = ",".join(f"{_number(t.profit_pct)}:{_number(t.share_pct)}" for t in settings.targets)
    elif settings.take_profit_pct is not None:
        tp = _number(settings.take_profit_pct)
    trail: str | None = None
    if settings.trailing_stop_pct is not None:
        trail = _number(settings.trailing_stop_pct)
        if settings.trailing_arm_pct is not None:
            trail += f"@{_number(settings.trailing_arm_pct)}"
    return {
        "tf": settings.timeframe,
        "sl": None if settings.stop_loss_pct is None else _number(settings.stop_loss_pct),
        "tp": tp,
        "trail": trail,
        "be": "1" if settings.breakeven else None,
        "max": None if settings.max_position is None else _number(settings.max_position),
        "dll": (
            None
            if settings.daily_loss_limit_pct is None
            else _number(settings.daily_loss_limit_pct)
        ),
    }


def one_line(settings: BotSettings) -> str:
    """The settings as a trader would type them: ``tf=1h sl=3 tp=2:50,4:50 trail=1.5@2 be=1``."""
    return " ".join(f"{key}={value}" for key, value in option_values(settings).items() if value)


def changes(before: BotSettings, after: BotSettings) -> list[tuple[str, str | None, str | None]]:
    """``(key, before, after)`` of every option an edit changes, in declaration order."""
    old, new = option_values(before), option_values(after)
    return [(key, old[key], new[key]) for key in OPTIONS if old[key] != new[key]]


# The exits a new bot is offered in one tap (the /newbot step "risk & exits"), as typed.
EXIT_KEYS = ("sl", "tp", "trail", "be")
RISK_PRESETS: dict[str, str] = {
    "none": "",
    "sl3": "sl=3",
    "sl3_trail": "sl=3 trail=1.5@2",
    "targets": "tp=2:50,4:50 be=1",
}


def with_preset(settings: BotSettings, preset: str) -> BotSettings:
    """``settings`` with its exits (stop, take profit, trailing, breakeven) those of ``preset``.

    KeyError for a preset not in ``RISK_PRESETS``.
    """
    default = BotSettings()
    exits = {name: getattr(default, name) for key in EXIT_KEYS for name in OPTIONS[key].fields}
    chosen = parse_options(RISK_PRESETS[preset].split(), None).settings
    return with_changes(settings, {**exits, **chosen})
