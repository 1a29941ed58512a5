"""A bot's risk rules, as pure functions shared by the live tick and the backtester.

They sit outside the strategies on purpose: whatever a strategy wants, a stop
loss, a position cap or the daily loss limit has the last word, and the
backtest must apply exactly the same words. Money is ``Decimal``; the position
snapshot a strategy sees (``PositionState``) carries floats, which are
converted through their shortest decimal representation so ``90000.1`` stays
``Decimal("90000.1")``.

Every percentage is in percent (``Decimal("5")`` is 5 %), like the strategies'
parameters. ``None`` switches a rule off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Literal

from engine.strategies.base import PositionState

ExitReason = Literal["stop_loss", "take_profit"]

HUNDRED = Decimal(100)
ZERO = Decimal(0)


@dataclass(frozen=True)
class Target:
    """A take-profit target: at ``profit_pct`` over the average entry, sell ``share_pct`` of
    the position as it was entered (targets of a bot sum to at most 100 %)."""

    profit_pct: Decimal
    share_pct: Decimal


@dataclass(frozen=True)
class RiskSettings:
    """A bot's limits; each one optional.

    ``max_position`` is the largest value, in the quote currency, the bot may
    hold in one symbol. ``daily_loss_limit_pct`` is of the bot's capital, and
    counts today's realized result plus what is open now.
    """

    stop_loss_pct: Decimal | None = None
    take_profit_pct: Decimal | None = None
    max_position: Decimal | None = None
    daily_loss_limit_pct: Decimal | None = None
    # Sell everything ``trailing_stop_pct`` under the highest price since entry, once the
    # position has gained ``trailing_arm_pct`` (from the entry when None).
    trailing_stop_pct: Decimal | None = None
    trailing_arm_pct: Decimal | None = None
    # Partial exits, profits increasing; after the first one, ``breakeven`` moves the stop
    # to the average entry.
    targets: tuple[Target, ...] = ()
    breakeven: bool = False

    def __post_init__(self) -> None:
        # Only what would make a rule meaningless: the bot use case validates user input,
        # and a stop loss of 100 % (never reached above a zero price) is allowed there.
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None or field.name in ("targets", "breakeven"):
                continue
            if not isinstance(value, Decimal) or not value.is_finite():
                raise ValueError(f"{field.name} must be a finite Decimal or None")
            if value < 0 or (value == 0 and field.name not in ("max_position", "trailing_arm_pct")):
                # max_position 0 is a real setting: hold nothing, buy nothing.
                raise ValueError(f"{field.name} must be positive")


def _decimal(value: float) -> Decimal:
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value}")
    return Decimal(repr(value))


def exit_reason(position: PositionState, price: float, risk: RiskSettings) -> ExitReason | None:
    """Why the whole position must be sold at ``price``, if it must.

    ``stop_loss`` when price is at or below the average entry minus
    ``stop_loss_pct``; ``take_profit`` when at or above it plus
    ``take_profit_pct``. A flat position, or one without a known entry price,
    never exits here.
    """
    if not position.is_open or position.average_entry <= 0:
        return None
    entry = _decimal(position.average_entry)
    now = _decimal(price)
    if risk.stop_loss_pct is not None and now <= entry * (1 - risk.stop_loss_pct / HUNDRED):
        return "stop_loss"
    if risk.take_profit_pct is not None and now >= entry * (1 + risk.take_profit_pct / HUNDRED):
        return "take_profit"
    return None


def cap_buy_quote(
    wanted_quote: Decimal, position_quote_value: Decimal, risk: RiskSettings
) -> Decimal:
    """How much of ``wanted_quote`` may be bought so the position stays within ``max_position``.

    Never negative: a position already over the cap (after a price rise) buys nothing.
    """
    wanted = max(wanted_quote, ZERO)
    if risk.max_position is None:
        return wanted
    room = risk.max_position - position_quote_value
    return max(ZERO, min(wanted, room))


def daily_loss_breached(
    realized_today: Decimal, unrealized: Decimal, capital: Decimal, risk: RiskSettings
) -> bool:
    """Whether today's loss (realized plus open) has reached ``daily_loss_limit_pct`` of capital.

    Reaching the limit exactly counts as breached, so a limit of 5 % stops the
    bot at -5.00 % rather than one tick later.
    """
    if risk.daily_loss_limit_pct is None or capital <= 0:
        return False
    loss = -(realized_today + unrealized)
    return loss >= capital * risk.daily_loss_limit_pct / HUNDRED
