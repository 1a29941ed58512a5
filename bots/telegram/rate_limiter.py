"""python-telegram-bot rate limiter that keeps every send inside Telegram's limits.

PTB's AIORateLimiter is a leaky bucket: it lets a full bucket out at once and
does not pace private chats, so a burst of notifications can exceed both
"about 30 messages per second" and "one message per second in a chat". This
limiter throttles instead of reacting: a sliding one-second window for the
bot as a whole, one send per second per chat, twenty per minute per group,
and it waits out a 429's ``retry_after`` before trying again (once).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

LIMITED_PREFIXES = ("send", "edit", "copy", "forward")
JSONDict = dict[str, Any]


def retry_seconds(exc: RetryAfter) -> float:
    """PTB 22 gives retry_after as seconds or a timedelta."""
    value: Any = exc.retry_after
    return float(value.total_seconds() if hasattr(value, "total_seconds") else value)


class SlidingWindow:
    """At most ``limit`` events in any ``period`` seconds."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self.events: deque[float] = deque()

    def delay(self, now: float) -> float:
        while self.events and self.events[0] <= now - self.period:
            self.events.popleft()
        if len(self.events) < self.limit:
            return 0.0
        return self.events[0] + self.period - now

    def record(self, now: float) -> None:
        self.events.append(now)


class TelegramRateLimiter(BaseRateLimiter[int]):
    def __init__(
        self,
        *,
        overall_per_second: int = 28,
        chat_interval: float = 1.02,
        group_per_minute: int = 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.overall = SlidingWindow(overall_per_second, 1.0)
        self.chat_interval = chat_interval
        self.group_per_minute = group_per_minute
        self.clock = clock
        self._chat_next: dict[str, float] = {}
        self._groups: dict[str, SlidingWindow] = {}
        self._chat_locks: dict[str, asyncio.Lock] = {}
        self._lock = asyncio.Lock()
        self.waited_seconds = 0.0
        self.retries = 0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def _wait_overall(self, extra: SlidingWindow | None) -> float:
        """Claim a slot in the bot-wide window (and a group's); returns the send time."""
        async with self._lock:
            while True:
                now = self.clock()
                wait = self.overall.delay(now)
                if extra is not None:
                    wait = max(wait, extra.delay(now))
                if wait <= 0:
                    break
                self.waited_seconds += wait
                await asyncio.sleep(wait)
            self.overall.record(now)
            if extra is not None:
                extra.record(now)
            return now

    async def _acquire(self, chat_id: str | None) -> None:
        """Wait until this send fits every window, then claim its slot.

        A chat waiting for its own one-second slot only holds that chat's lock, so
        sends to other chats go on meanwhile.
        """
        if chat_id is None:
            await self._wait_overall(None)
            return
        lock = self._chat_locks.setdefault(chat_id, asyncio.Lock())
        async with lock:
            wait = self._chat_next.get(chat_id, 0.0) - self.clock()
            if wait > 0:
                self.waited_seconds += wait
                await asyncio.sleep(wait)
            group = None
            if chat_id.startswith("-"):
                group = self._groups.setdefault(chat_id, SlidingWindow(self.group_per_minute, 60.0))
            sent_at = await self._wait_overall(group)
            self._chat_next[chat_id] = sent_at + self.chat_interval
        if len(self._chat_next) > 50_000:
            now = self.clock()
            stale = [
                c
                for c, t in self._chat_next.items()
                if t < now and not self._chat_locks[c].locked()
            ]
            for chat in stale:
                self._chat_next.pop(chat, None)
                self._chat_locks.pop(chat, None)

    def earliest_for_chat(self, chat_id: str) -> float:
        """When this chat may next receive a message (monotonic seconds)."""
        return self._chat_next.get(chat_id, 0.0)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | JSONDict | list[JSONDict]:
        limited = endpoint.startswith(LIMITED_PREFIXES)
        chat = data.get("chat_id")
        chat_id = str(chat) if chat is not None and limited else None
        for attempt in range(2):
            if limited:
                await self._acquire(chat_id)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                if attempt == 1 or rate_limit_args == 0:  # callers may opt out of retrying
                    raise
                self.retries += 1
                await asyncio.sleep(retry_seconds(exc))
        raise AssertionError("unreachable")
