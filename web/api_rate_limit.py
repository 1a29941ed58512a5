"""The REST API's rate limit: a token bucket per API token, in this process.

Every request of a token spends one; a token regains ``per_minute`` a minute, holding
at most that many. Keyed by the token's hash (the token itself is never kept), and
checked before authentication, so guessing tokens costs the database nothing either.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class ApiRateLimit:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = max(1, per_minute)
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def wait(self, token: str) -> float:
        """0 if the request may go (it is counted), else the seconds until it may."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self.clock()
        rate = self.per_minute / 60
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.per_minute), now)
        bucket.tokens = min(self.per_minute, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens < 1:
            return (1 - bucket.tokens) / rate
        bucket.tokens -= 1
        if len(self._buckets) > 100_000:  # forget tokens idle for a minute: they are full
            self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < 60}
        return 0.0
