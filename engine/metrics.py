"""Prometheus metrics of the engine (served by web/ at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from engine.tick import TickReport

TICKS = Counter("robotrader_ticks_total", "Engine ticks completed")
TICK_SECONDS = Histogram(
    "robotrader_tick_duration_seconds",
    "Wall time of one tick (one shard)",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30),
)
BOTS_EVALUATED = Counter("robotrader_bots_evaluated_total", "Bots evaluated by ticks")
EXCHANGE_CALLS = Counter("robotrader_market_data_calls_total", "Market-data requests to exchanges")
ORDERS = Counter("robotrader_orders_total", "Orders by result", ["result"])


class _TickObserver:
    def __call__(self, report: TickReport) -> None:
        TICKS.inc()
        TICK_SECONDS.observe(report.seconds)
        BOTS_EVALUATED.inc(report.bots)
        EXCHANGE_CALLS.inc(report.exchange_calls)
        if report.orders_filled:
            ORDERS.labels("filled").inc(report.orders_filled)
        if report.orders_rejected:
            ORDERS.labels("rejected").inc(report.orders_rejected)

    @staticmethod
    def order(result: str) -> None:
        ORDERS.labels(result).inc()


observe_tick = _TickObserver()
