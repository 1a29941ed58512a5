"""How much a bot may buy: its capital is a budget. One rule for the live tick and the backtester.

A bot's budget is its capital plus the PnL it has realised so far: it compounds
both ways, so a bot that lost half its capital buys half as much, and one that
doubled it buys twice as much. What it holds now (the cost of its open
positions, fees included) is already spent; a buy never takes more than the rest,
and never more than the account holds. For a spot, long-only bot the cash it may
still spend never goes below zero, so neither can its equity.

Every amount is in the quote currency and ``Decimal``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.risk import RiskSettings, cap_buy_quote

ZERO = Decimal(0)


@dataclass(frozen=True)
class Budget:
    """What a bot may spend, from its capital, its realised PnL and what it holds."""

    capital: Decimal
    realized_pnl: Decimal = ZERO
    committed: Decimal = ZERO  # cost of the open positions of every symbol of the bot

    @property
    def total(self) -> Decimal:
        """Capital plus realised PnL: what the bot is trading with now (never negative)."""
        return max(self.capital + self.realized_pnl, ZERO)

    @property
    def free(self) -> Decimal:
        """What is left to spend after what the bot holds."""
        return max(self.total - self.committed, ZERO)


def buy_quote(
    budget: Budget,
    *,
    symbols: int,
    fraction: Decimal,
    position_value: Decimal,
    risk: RiskSettings,
    cost_rate: Decimal,
    account_free: Decimal | None = None,
) -> Decimal:
    """The quote amount of one buy, before the exchange's minimums.

    ``fraction`` of the bot's per-symbol share of its budget (``budget.total /
    symbols``), capped by ``max_position`` (``position_value`` is what the bot
    holds in this symbol at the decision price), then shrunk to what is left of
    the budget and to ``account_free`` (what the account holds in the quote
    currency, where known). ``cost_rate`` is what a fill costs on top of its
    quote amount (fee and slippage, e.g. ``0.0015``), so the spend including it
    stays within both. Never negative; zero when nothing may be bought.
    """
    if symbols <= 0 or fraction <= 0:
        return ZERO
    wanted = cap_buy_quote(budget.total / symbols * fraction, position_value, risk)
    room = budget.free / (1 + cost_rate)
    if account_free is not None:
        room = within_account(room, account_free, cost_rate)
    return max(ZERO, min(wanted, room))


def within_account(quote: Decimal, account_free: Decimal, cost_rate: Decimal) -> Decimal:
    """``quote`` shrunk so that, with what the fill costs on top, the account can pay it."""
    return max(ZERO, min(quote, max(account_free, ZERO) / (1 + cost_rate)))


def cost_rate(fee_rate: Decimal, slippage: Decimal) -> Decimal:
    """What a taker fill costs on top of its quote amount: slippage, then the fee on the value."""
    return (1 + slippage) * (1 + fee_rate) - 1
