"""The markets each exchange lists, shipped for when the exchange cannot be asked.

A bot or a backtest on a symbol the exchange does not list is refused. Online,
ccxt's ``load_markets`` decides; offline (the replay feed, a laptop on a train,
the test machines) these shipped lists do, so a typo such as ``FOO/USDT`` is
refused there too instead of trading on invented candles.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

LISTINGS_DIR = Path(__file__).parent


@cache
def offline_markets(exchange: str) -> frozenset[str]:
    """The shipped spot symbols of ``exchange`` (empty for an exchange without a list)."""
    path = LISTINGS_DIR / f"{exchange}.txt"
    if not path.is_file():
        return frozenset()
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def listed_offline(exchange: str, symbol: str) -> bool:
    return symbol in offline_markets(exchange)
