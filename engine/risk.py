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

from engine.strategies.base import PositionState

HUNDRED = Decimal(100)
ZERO = Decimal(0)
ONE = Decimal(1)


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


@dataclass(frozen=True)
class ExitState:
    """What the exit rules remember of an open position between decisions (kept on its row).

    ``highest_price`` is the highest decision close since the position opened (None
    before its first decision); ``targets_hit`` how many take-profit targets were sold,
    counted when their sale is booked. Both start afresh with every new position.
    """

    highest_price: Decimal | None = None
    targets_hit: int = 0

    def seen(self, price: Decimal) -> ExitState:
        """This state after a decision at ``price``: the highest price never decreases."""
        if self.highest_price is not None and self.highest_price >= price:
            return self
        return ExitState(price, self.targets_hit)


@dataclass(frozen=True)
class ExitDecision:
    """What the exit rules say at one close: sell ``fraction`` of the position held now
    (1 = all of it) for ``reason``, or hold (``reason`` None); ``state`` is what to remember.
    """

    reason: str | None
    fraction: Decimal
    state: ExitState


def remembers_prices(risk: RiskSettings) -> bool:
    """Whether these rules need the highest price since entry (kept only for those bots)."""
    return risk.trailing_stop_pct is not None or bool(risk.targets)


def target_reason(number: int) -> str:
    """The reason of the ``number``-th target's sale (1-based): ``target_1``..."""
    return f"target_{number}"


def target_number(reason: str) -> int | None:
    """The target a sale's reason names (``target_2`` -> 2); None for any other reason."""
    prefix, _, number = reason.partition("target_")
    if prefix or not number.isdigit():
        return None
    return int(number)


def decide_exit(
    position: PositionState, price: float, risk: RiskSettings, state: ExitState = ExitState()
) -> ExitDecision:
    """The exit rules at a decision close ``price``, in this order (the first that fires wins):

    1. ``stop_loss``: price at or below the average entry minus ``stop_loss_pct``;
    2. ``breakeven``: with ``breakeven``, once a target was sold, price at or below the
       average entry (the stop moved up to it);
    3. ``trailing_stop``: price at or below the highest price since entry minus
       ``trailing_stop_pct``, once that high reached the entry plus ``trailing_arm_pct``
       (at once when it is None);
    4. ``take_profit``: price at or above the average entry plus ``take_profit_pct``;
    5. ``target_N``: price at or above the average entry plus the ``profit_pct`` of
       target N, the last one reached; it sells the shares of every target reached and not
       sold yet, of the position as entered: ``shares / (100 - shares already sold)`` of
       what is held now (the last of targets summing to 100 % sells it all). A price that
       gaps through two targets sells both at once, so a decision asked again on the same
       close (a tick runs several times per candle) decides nothing new.

    1-4 sell everything. The highest price is updated with ``price`` first (only where a
    rule needs it), so a decision never trails from a high it has not seen. A flat
    position, or one without a known entry price, never exits and changes no state.
    """
    if (
        not position.is_open
        or position.average_entry <= 0
        or (
            risk.stop_loss_pct is None
            and risk.take_profit_pct is None
            and risk.trailing_stop_pct is None
            and not risk.targets
        )  # no exit rule (breakeven needs targets): most bots, on every tick
    ):
        return ExitDecision(None, ZERO, state)
    entry = _decimal(position.average_entry)
    now = _decimal(price)
    if remembers_prices(risk):
        state = state.seen(now)
    reason: str | None = None
    if risk.stop_loss_pct is not None and now <= entry * (1 - risk.stop_loss_pct / HUNDRED):
        reason = "stop_loss"
    elif risk.breakeven and state.targets_hit >= 1 and now <= entry:
        reason = "breakeven"
    elif _trailing_stop_hit(entry, now, risk, state):
        reason = "trailing_stop"
    elif risk.take_profit_pct is not None and now >= entry * (1 + risk.take_profit_pct / HUNDRED):
        reason = "take_profit"
    if reason is not None:
        return ExitDecision(reason, ONE, state)
    hit = state.targets_hit
    reached = hit
    while reached < len(risk.targets) and now >= entry * (
        1 + risk.targets[reached].profit_pct / HUNDRED
    ):
        reached += 1
    if reached > hit:
        left = HUNDRED - sum((t.share_pct for t in risk.targets[:hit]), ZERO)
        selling = sum((t.share_pct for t in risk.targets[hit:reached]), ZERO)
        fraction = ONE if selling >= left else selling / left
        return ExitDecision(target_reason(reached), fraction, state)
    return ExitDecision(None, ZERO, state)


def _trailing_stop_hit(entry: Decimal, now: Decimal, risk: RiskSettings, state: ExitState) -> bool:
    high = state.highest_price
    if risk.trailing_stop_pct is None or high is None:
        return False
    if risk.trailing_arm_pct is not None and high < entry * (1 + risk.trailing_arm_pct / HUNDRED):
        return False
    return now <= high * (1 - risk.trailing_stop_pct / HUNDRED)


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
