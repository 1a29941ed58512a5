"""A bot's activity (robotrader.use_cases.bot_status) in words: the same in chat and on the web.

Only wording and number formats: what the values are, and which sentence says them,
is the use case's.
"""

from __future__ import annotations

from datetime import datetime

from robotrader import formatting
from robotrader.i18n import translate
from robotrader.use_cases.bot_status import BotActivity, MarketActivity, Reading, Value


def moment(at: datetime, language: str, now: datetime | None = None) -> str:
    """``in 3 minutes (12/5/26, 8:12 PM UTC)``."""
    return translate(
        language,
        "alive.moment",
        relative=formatting.relative(at, language, now),
        absolute=formatting.when(at, language),
    )


def last_evaluated(activity: BotActivity, language: str, now: datetime | None = None) -> str:
    if activity.last_evaluated_at is None:
        return translate(language, "alive.not_yet")
    return moment(activity.last_evaluated_at, language, now)


def next_decision(activity: BotActivity, language: str, now: datetime | None = None) -> str:
    if activity.next_decision_at is None:
        return "—"
    return moment(activity.next_decision_at, language, now)


def summary(activity: BotActivity, language: str, now: datetime | None = None) -> str:
    """One line for /status: when the bot was evaluated, when it decides next."""
    return translate(
        language,
        "alive.summary",
        name=activity.bot.name,
        last=last_evaluated(activity, language, now),
        next=next_decision(activity, language, now),
    )


def label(value: Value, language: str) -> str:
    """A value's name as users read it: ``RSI 14``, ``IFR 14``."""
    return translate(language, f"indicator.{value.name}", **value.args)


def _number(value: Value, language: str) -> str:
    if value.pane == "price":
        return formatting.price(value.value, language)
    return formatting.figure(value.value, language)


def _quote(symbol: str) -> str:
    return symbol.rsplit("/", 1)[-1]


def reading(item: Reading, language: str) -> str:
    """``RSI 14: 41.2 (buys on crossing up 30, sells on crossing down 70)``."""
    args: dict[str, str] = {}
    for role, value in item.values.items():
        args[role] = label(value, language)
        args[f"{role}_value"] = _number(value, language)
    return translate(language, f"reading.{item.kind}", **args)


def market(item: MarketActivity, language: str, now: datetime | None = None) -> list[str]:
    """A symbol of a bot: its price and candle, what the strategy reads, what the bot holds."""
    lines: list[str] = []
    if item.candle_closed_at is None:
        lines.append(translate(language, "alive.no_data", symbol=item.symbol))
    else:
        lines.append(
            translate(
                language,
                "alive.market",
                symbol=item.symbol,
                price=formatting.price(item.price, language),
                closed=formatting.relative(item.candle_closed_at, language, now),
                source=translate(language, f"source.{item.source}"),
            )
        )
    lines.extend(reading(r, language) for r in item.readings)
    if item.position is not None:
        held = item.position
        lines.append(
            translate(
                language,
                "alive.position",
                amount=formatting.amount(held.amount, language),
                entry=formatting.price(held.average_entry, language),
                price=formatting.price(held.price, language),
                pnl=formatting.signed_money(held.unrealized_pnl, language, _quote(item.symbol)),
                pct=formatting.percent(held.unrealized_pct, language),
            )
        )
    if item.waiting_for is not None:
        lines.append(
            translate(
                language, "alive.waits_for_order", symbol=item.symbol, order=item.waiting_for.id
            )
        )
    return lines
