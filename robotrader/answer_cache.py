"""Answers kept for a few seconds: repeated questions do not go to the exchange again.

Per process and bounded: at most ``size`` entries, the oldest dropped first. Used for
what costs the server's shared budget with an exchange (a user's balances), never for
anything a decision is taken on.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

BALANCE_SECONDS = 15.0


class AnswerCache:
    def __init__(
        self,
        ttl: float = BALANCE_SECONDS,
        size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()

    def get(self, key: Hashable) -> Any | None:
        found = self._entries.get(key)
        if found is None:
            return None
        stored_at, value = found
        if self.clock() - stored_at > self.ttl:
            del self._entries[key]
            return None
        return value

    def put(self, key: Hashable, value: Any) -> None:
        self._entries[key] = (self.clock(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
