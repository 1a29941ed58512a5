"""Editing a bot: its risk, exits and capital at any time; what it trades only while stopped.

One use case behind ``/editbot``, the chat's edit dialog, ``PATCH /api/v1/bots/{id}`` and
the dashboard's form. It validates with the functions that validate a new bot
(``bot_settings.parse_options``, ``validated_parameters``, ``parse_capital``,
``normalize_symbol``/``known_symbol``, the plan's strategies and symbols), so an edit can
never make a bot that creation would refuse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.plans import LimitReached, strategy_allowed
from db.models import AuditEntry, Bot, BotMode, BotStatus, Position, User
from engine.exchanges.catalog import EXCHANGES, ExchangeSpec, exchange_spec
from engine.strategies.base import Strategy
from engine.strategies.registry import STRATEGIES, UnknownStrategy, get_strategy
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.plans import limits_in_force
from robotrader.use_cases.bot_settings import (
    BotSettings,
    changes,
    option_values,
    parse_options,
    settings_of,
    store,
    with_changes,
)
from robotrader.use_cases.bots import (
    MAX_SYMBOLS_PER_BOT,
    BotSummary,
    _in_flight,
    _owned_bot,
    _require_credential,
    known_symbol,
    limit_error,
    normalize_symbol,
    parse_capital,
    show_bot,
    suggested_parameters,
    validated_parameters,
)

# What a running bot may not change: each changes which markets it reads or how it
# decides, and an open position was entered on the old ones (see `edit_bot`).
NEEDS_STOP = ("strategy", "parameters", "exchange", "symbols", "timeframe")


@dataclass(frozen=True)
class BotEdit:
    """What an edit asks for; anything left empty (None, ``()``) stays as it is.

    ``options`` are ``key=value`` words as a trader types them (``sl=3``, ``tp=off``,
    ``tf=1h``, ``fast=7``): the bot's settings and its strategy's parameters, parsed by
    `bot_settings.parse_options`. ``parameters`` are strategy parameters as values (the
    REST API's JSON). Both merge into the bot's current parameters. ``settings`` are
    changes to `BotSettings` fields as values (the REST API's JSON), applied after the
    words and checked the same way.
    """

    options: Sequence[str] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    capital: Decimal | str | int | None = None
    strategy: str | None = None
    exchange: str | None = None
    symbols: Sequence[str] | None = None

    def is_empty(self) -> bool:
        return not (
            self.options or self.settings or self.parameters or self.capital is not None
            or self.strategy
            or self.exchange or self.symbols is not None
        )  # fmt: skip


@dataclass(frozen=True)
class Change:
    """One thing an edit changes: the catalog key of its name, its value before and after."""

    label: str  # bot_setting.sl, field.capital ...
    before: str | None  # None: was off
    after: str | None  # None: now off


@dataclass(frozen=True)
class EditResult:
    bot: BotSummary
    settings: dict[str, str | None]  # every option's value after (``bot_settings.option_values``)
    settings_before: dict[str, str | None]
    changes: list[Change]  # empty: nothing changed (and nothing was written)
    applied: bool  # False for a preview
    # The bot runs: the engine reads the new values on its next tick (every tick reads the
    # bot rows again, engine.tick.load_bots).
    from_next_tick: bool


def _number(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _order_of(names: list[str]) -> Any:
    return lambda name: (names.index(name) if name in names else len(names), name)


def _parameters_text(parameters: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in parameters.items())


def _strategy(name: str) -> Strategy:
    try:
        return get_strategy(name.strip().lower())
    except UnknownStrategy:
        raise UserError(
            "unknown_strategy", strategy=name[:32], choices=", ".join(STRATEGIES)
        ) from None


def _exchange(name: str) -> ExchangeSpec:
    spec = exchange_spec(name.strip().lower())
    if spec is None:
        raise UserError("unknown_exchange", exchange=name[:32], choices=", ".join(EXCHANGES))
    return spec


def _symbols(raw: Sequence[str]) -> list[str]:
    symbols = list(dict.fromkeys(normalize_symbol(s) for s in raw if s.strip()))
    if not symbols:
        raise UserError("no_symbols")
    if len(symbols) > MAX_SYMBOLS_PER_BOT:
        raise UserError("too_many_symbols", maximum=MAX_SYMBOLS_PER_BOT)
    return symbols


def _capital_words(options: Sequence[str]) -> tuple[list[str], str | None]:
    """``capital=500`` among the words (the chat's one-line form) taken out of them."""
    rest, capital = [], None
    for word in options:
        key, equals, value = word.partition("=")
        if equals and key.strip().lower() == "capital":
            capital = value.strip()
        else:
            rest.append(word)
    return rest, capital


@dataclass(frozen=True)
class _Target:
    """The bot an edit would make, checked before any row is locked (some checks ask the
    exchange which symbols it lists, or the last price, which no lock should wait on)."""

    exchange: ExchangeSpec
    strategy: Strategy
    symbols: list[str]
    settings_changes: Mapping[str, Any]  # fields of BotSettings
    parameters: dict[str, Any]
    capital: Decimal
    seen: tuple[str, str, tuple[str, ...], str]  # the bot as read: exchange, strategy...


async def _target(app: App, user_id: int, bot_ref: str | int, edit: BotEdit) -> _Target:
    current = await show_bot(app, user_id, bot_ref)
    exchange = _exchange(edit.exchange) if edit.exchange else _exchange(current.exchange)
    strategy = _strategy(edit.strategy) if edit.strategy else _strategy(current.strategy)
    symbols = _symbols(edit.symbols) if edit.symbols is not None else list(current.symbols)
    words, typed_capital = _capital_words(edit.options)
    options = parse_options(words, strategy)
    raw_capital = edit.capital if edit.capital is not None else typed_capital
    capital = parse_capital(raw_capital) if raw_capital is not None else current.capital
    if exchange.id != current.exchange or symbols != current.symbols:
        for symbol in symbols:
            if not await known_symbol(app, exchange.id, symbol):
                raise UserError("unknown_symbol", symbol=symbol, exchange=exchange.title)
    given = {**options.parameters, **edit.parameters}
    if strategy.info.name != current.strategy:
        suggested = await suggested_parameters(
            app, exchange.id, symbols[0], strategy.info.name, given
        )
        parameters = validated_parameters(strategy, suggested)
    else:
        parameters = validated_parameters(strategy, {**current.parameters, **given})
    seen = (current.exchange, current.strategy, tuple(current.symbols), current.settings.timeframe)
    settings = {**options.settings, **edit.settings}
    return _Target(exchange, strategy, symbols, settings, parameters, capital, seen)


async def _check_plan(
    app: App, session: AsyncSession, user: User, bot: Bot, strategy: Strategy, symbols: list[str]
) -> None:
    limits = limits_in_force(app.settings, user.plan)
    try:
        if strategy.info.name != bot.strategy and not strategy_allowed(
            limits, strategy_is_basic=strategy.info.basic
        ):
            raise LimitReached("strategy", limits.plan, 0, 0)
        if limits.max_symbols is not None and set(symbols) != set(bot.symbols):
            others = (
                await session.scalars(
                    select(Bot.symbols).where(
                        Bot.user_id == user.id, Bot.is_active, Bot.id != bot.id
                    )
                )
            ).all()
            used = {s for listed in others for s in listed}
            if len(used | set(symbols)) > limits.max_symbols:
                current = len(used | set(bot.symbols))
                raise LimitReached("symbols", limits.plan, limits.max_symbols, current)
    except LimitReached as exc:
        raise limit_error(exc) from None


async def _holds(session: AsyncSession, bot_id: int) -> set[str]:
    return set(await session.scalars(select(Position.symbol).where(Position.bot_id == bot_id)))


async def edit_bot(
    app: App,
    user_id: int,
    bot_ref: str | int,
    edit: BotEdit,
    *,
    apply: bool = True,
    platform: str = "api",
) -> EditResult:
    """Change a bot; returns what changed, before and after (``apply=False``: a preview).

    Risk and exits (``sl tp trail be max dll``) and capital may change while the bot
    runs: the engine reads every running bot's row on each tick, so they act from the
    next tick, on the open positions too. Capital is a budget (engine/sizing.py): set
    below what the bot holds, it simply buys nothing more until it sells.

    Strategy, strategy parameters, exchange, symbols and timeframe need the bot
    stopped (``edit_needs_stop``). Parameters too: an open position was entered, and is
    added to, on the old ones (a DCA's safety-order spacing, a grid's levels), and
    the same parameters give the same signals in the live tick and the backtest;
    changing them mid-position would act on signals the trader never saw. Stopping
    first makes the switch a deliberate moment. Symbols a bot holds cannot be removed
    and a bot holding positions cannot change exchange (``close_positions_first``),
    nor while a live order waits for the exchange.

    An archived bot cannot be edited (not found). Every applied change is written to
    the audit log (``bot.edit``, each label with its value before and after).
    """
    target = await _target(app, user_id, bot_ref, edit)
    async with app.database.transaction() as session:
        user = await session.get(User, user_id, with_for_update=True)
        assert user is not None
        bot = await _owned_bot(session, user_id, bot_ref)
        if (bot.exchange, bot.strategy, tuple(bot.symbols), bot.timeframe) != target.seen:
            raise UserError("bot_changed_meanwhile", bot=bot.name)
        before_settings = settings_of(bot)
        after_settings = with_changes(before_settings, target.settings_changes)
        found = _changes(bot, target, before_settings, after_settings)
        structural = {
            "strategy": bot.strategy != target.strategy.info.name,
            "parameters": dict(bot.parameters) != target.parameters,
            "exchange": bot.exchange != target.exchange.id,
            "symbols": list(bot.symbols) != target.symbols,
            "timeframe": before_settings.timeframe != after_settings.timeframe,
        }
        blocked = [what for what in NEEDS_STOP if structural[what]]
        if blocked and bot.status != BotStatus.STOPPED:
            raise UserError("edit_needs_stop", bot=bot.name, what=blocked[0])
        if structural["exchange"] or structural["symbols"]:
            waiting = await _in_flight(session, [bot.id])
            if waiting:
                raise UserError("bot_orders_in_flight", bot=bot.name, orders=len(waiting[bot.id]))
            held = await _holds(session, bot.id)
            if held and (structural["exchange"] or not held <= set(target.symbols)):
                raise UserError("close_positions_first", bot=bot.name)
        await _check_plan(app, session, user, bot, target.strategy, target.symbols)
        if apply and found:
            if structural["exchange"] and bot.mode == BotMode.LIVE:
                await _require_credential(session, user_id, bot)
            bot.exchange = target.exchange.id
            bot.strategy = target.strategy.info.name
            bot.symbols = target.symbols
            bot.parameters = target.parameters
            bot.capital = target.capital
            store(bot, after_settings)
            session.add(
                AuditEntry(
                    user_id=user_id, platform=platform[:16], action="bot.edit",
                    detail={
                        "bot_id": bot.id,
                        "changes": [
                            {"label": c.label, "before": c.before, "after": c.after}
                            for c in found
                        ],
                    },
                )
            )  # fmt: skip
            await session.flush()
        return EditResult(
            bot=BotSummary.of(bot),
            settings=option_values(after_settings),
            settings_before=option_values(before_settings),
            changes=found,
            applied=apply and bool(found),
            from_next_tick=bool(found) and bot.status == BotStatus.RUNNING,
        )


def _changes(bot: Bot, target: _Target, before: BotSettings, after: BotSettings) -> list[Change]:
    found: list[Change] = []

    def note(label: str, old: str, new: str) -> None:
        if old != new:
            found.append(Change(label, old, new))

    note("field.exchange", bot.exchange, target.exchange.id)
    note("field.symbols", ", ".join(bot.symbols), ", ".join(target.symbols))
    note("field.strategy", bot.strategy, target.strategy.info.name)
    # Compared as values: PostgreSQL's JSONB keeps keys in its own order.
    if dict(bot.parameters) != target.parameters:
        order = list(target.parameters)
        old = {k: bot.parameters[k] for k in sorted(bot.parameters, key=_order_of(order))}
        found.append(
            Change("field.parameters", _parameters_text(old), _parameters_text(target.parameters))
        )
    note("field.capital", _number(bot.capital), _number(target.capital))
    found += [Change(f"bot_setting.{key}", old, new) for key, old, new in changes(before, after)]
    return found
