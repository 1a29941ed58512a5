"""Per-user rate limiting of commands (a token bucket per chat identity)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``rate`` requests per second with bursts up to ``burst``."""

    def __init__(
        self, rate: float = 1.0, burst: int = 12, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    @classmethod
    def unlimited(cls) -> RateLimiter:
        """Every request allowed: for the console, one local user at their own terminal."""
        return cls(rate=float("inf"), burst=1_000_000)

    def allow(self, key: tuple[str, str]) -> bool:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        if len(self._buckets) > 100_000:  # forget idle users
            self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < 60}
        return True
