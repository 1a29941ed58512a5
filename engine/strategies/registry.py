"""Every strategy a bot can run, by the name stored on the bot."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from engine.strategies.base import Strategy
from engine.strategies.dca import Dca
from engine.strategies.grid import Grid
from engine.strategies.rsi_reversion import RsiReversion
from engine.strategies.signal import WebhookSignal
from engine.strategies.sma_crossover import SmaCrossover


class UnknownStrategy(KeyError):
    """A strategy name no module declares (a typo, or a bot saved by a newer version)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown strategy: {self.name!r}"


def _by_name(*strategies: Strategy) -> Mapping[str, Strategy]:
    named = {strategy.info.name: strategy for strategy in strategies}
    if len(named) != len(strategies):
        raise RuntimeError("two strategies declare the same name")
    return MappingProxyType(named)


# Strategies are stateless, so one shared instance each is enough; the order is
# the order offered in chat.
STRATEGIES: Mapping[str, Strategy] = _by_name(
    SmaCrossover(), RsiReversion(), Grid(), Dca(), WebhookSignal()
)


def get_strategy(name: str) -> Strategy:
    """The strategy called ``name``; UnknownStrategy (a KeyError) otherwise."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise UnknownStrategy(name) from None


def basic_strategies() -> tuple[Strategy, ...]:
    """The strategies offered on the Free plan, in registry order."""
    return tuple(strategy for strategy in STRATEGIES.values() if strategy.info.basic)
