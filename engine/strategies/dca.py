"""Dollar-cost averaging: a base buy, safety buys as price falls, one take-profit sale."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from engine.strategies.base import (
    FLAT,
    Candles,
    Intent,
    Level,
    Param,
    ParameterError,
    Params,
    PositionState,
    SignalArray,
    Strategy,
    StrategyInfo,
    StrategyView,
)


class Dca(Strategy):
    """Reacts to price against the bot's own position, not to an indicator.

    Flat: buy ``base_order_pct`` of the allocation. Holding with ``entries``
    buys so far: when price is ``safety_step_pct * entries`` percent under the
    average entry, buy one safety order, ``(100 - base_order_pct) / safety_orders``
    percent of the allocation, up to ``safety_orders`` of them (base plus all
    safety orders use exactly the whole allocation). When price is
    ``take_profit_pct`` above the average entry, sell everything.

    All three sizes are percentages, so a user reads ``20`` / ``2`` / ``1.5`` the
    same way.
    """

    info: ClassVar[StrategyInfo] = StrategyInfo(
        name="dca",
        basic=False,
        params=(
            Param(
                name="base_order_pct",
                kind=float,
                default=20.0,
                minimum=1.0,
                maximum=100.0,
            ),
            Param(
                name="safety_orders",
                kind=int,
                default=4,
                minimum=0,
                maximum=20,
            ),
            Param(
                name="safety_step_pct",
                kind=float,
                default=2.0,
                minimum=0.1,
                maximum=50.0,
            ),
            Param(
                name="take_profit_pct",
                kind=float,
                default=1.5,
                minimum=0.1,
                maximum=100.0,
            ),
        ),
    )

    def check(self, params: Params) -> None:
        # The deepest safety order must still trigger at a positive price.
        if params["safety_step_pct"] * params["safety_orders"] >= 100:
            raise ParameterError("safety_too_deep")

    def warmup(self, params: Params) -> int:
        return 1

    def compute(self, candles: Candles, params: Params) -> SignalArray:
        return np.zeros(len(candles), dtype=np.int8)

    def view(
        self, candles: Candles, params: Params, position: PositionState = FLAT
    ) -> StrategyView:
        """Holding: the safety prices still to come and the take-profit price (``decide``'s).

        The first safety level and the take-profit price are exact; the later safety
        levels are as seen from today's average entry, which each safety buy lowers.
        """
        if not position.is_open or position.average_entry <= 0:
            return StrategyView()
        average = position.average_entry
        step = float(params["safety_step_pct"]) / 100.0
        entries = max(position.entries, 1)
        safety = tuple(
            Level("safety", average * (1.0 - step * n), "price", {"number": n})
            for n in range(entries, int(params["safety_orders"]) + 1)
        )
        take_profit = average * (1.0 + float(params["take_profit_pct"]) / 100.0)
        return StrategyView(levels=(*safety, Level("take_profit_price", take_profit)))

    def decide(
        self, signal: int, price: float, position: PositionState, params: Params
    ) -> Intent | None:
        base = float(params["base_order_pct"]) / 100.0
        if not position.is_open:
            return Intent("buy", base, "base")
        average = position.average_entry
        if price >= average * (1.0 + float(params["take_profit_pct"]) / 100.0):
            return Intent("sell", 1.0, "take_profit")
        safety_orders = int(params["safety_orders"])
        # A position opened elsewhere (entries == 0) counts as its base order.
        entries = max(position.entries, 1)
        next_trigger = average * (1.0 - float(params["safety_step_pct"]) * entries / 100.0)
        if safety_orders > 0 and entries <= safety_orders and price <= next_trigger:
            return Intent("buy", (1.0 - base) / safety_orders, "safety")
        return None
