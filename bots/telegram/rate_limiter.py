"""python-telegram-bot rate limiter that keeps every send inside Telegram's limits.

PTB's AIORateLimiter is a leaky bucket: it lets a full bucket out at once and
does not pace private chats, so a burst of notifications can exceed both
"about 30 messages per second" and "one message per second in a chat". This
limiter throttles instead of reacting: a sliding one-second window of 28 sends
for the bot as a whole, sent evenly spaced rather than in bursts, one send per
second per chat, twenty per minute per group, and it waits out a 429's
``retry_after`` before trying again (once).

Telegram counts a message when its server handles the request, which is some
time after we sent it: how long varies from request to request (network,
queues on either side). Limits measured only at our end therefore leak: two
sends to a chat 1.02 s apart arrive 0.99 s apart when the first was slowed by
30 ms. So every limit is also kept with a margin that does not depend on that
delay: the next send to a chat (or a group) is timed from when Telegram
*answered* the previous one, and bot-wide, requests still waiting for their
answer or answered in the last second never number more than Telegram's 30.

Paid broadcasts (sends with ``allow_paid_broadcast``) have a lane of their own: up to
1,000 messages a second bot-wide, every send counted, so the lane keeps 900 a second
(970 with their answers) and leaves the free lane its 30. Each lane paces only its own
sends: an interactive reply never waits behind a broadcast, nor a broadcast behind one.
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

    def delay(self, now: float, reserved: int = 0) -> float:
        """Seconds until one more event fits, with ``reserved`` places already taken.

        ``inf`` when the reserved places alone fill the window (wait for one to be freed).
        """
        while self.events and self.events[0] <= now - self.period:
            self.events.popleft()
        excess = len(self.events) + reserved - self.limit
        if excess < 0:
            return 0.0
        if excess >= len(self.events):
            return float("inf")
        return self.events[excess] + self.period - now

    def record(self, now: float) -> None:
        self.events.append(now)


class Lane:
    """The bot-wide pace of one kind of send (free, or paid broadcasts)."""

    def __init__(self, per_second: int, telegram_per_second: int) -> None:
        self.overall = SlidingWindow(per_second, 1.0)
        # Evenly spaced: 28 in a burst then nothing would make every second's first sends
        # race the previous second's last ones at Telegram's end.
        self.spacing = 1.0 / per_second
        # Telegram's own bot-wide limit, counted from when a request leaves until its answer
        # plus a second: however long each took to arrive, Telegram never sees more.
        self.answered = SlidingWindow(telegram_per_second, 1.0)
        self.next_send = 0.0
        self.in_flight = 0
        self.freed = asyncio.Event()
        self.lock = asyncio.Lock()


class TelegramRateLimiter(BaseRateLimiter[int]):
    def __init__(
        self,
        *,
        overall_per_second: int = 28,
        chat_interval: float = 1.02,
        group_per_minute: int = 20,
        telegram_per_second: int = 30,
        paid_per_second: int = 900,
        telegram_paid_per_second: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free = Lane(overall_per_second, telegram_per_second)
        # Telegram counts every send against the paid limit: the free lane's are left room.
        self.paid = Lane(paid_per_second, telegram_paid_per_second - telegram_per_second)
        self.chat_interval = chat_interval
        self.group_per_minute = group_per_minute
        self.clock = clock
        self._chat_next: dict[str, float] = {}
        self._groups: dict[str, SlidingWindow] = {}
        self._chat_locks: dict[str, asyncio.Lock] = {}
        self.waited_seconds = 0.0
        self.retries = 0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def _wait_overall(self, lane: Lane, group: SlidingWindow | None) -> float:
        """Claim a bot-wide slot of ``lane`` (and fit the group's window); returns the send time."""
        async with lane.lock:
            while True:
                now = self.clock()
                wait = max(
                    lane.overall.delay(now),
                    lane.next_send - now,
                    lane.answered.delay(now, reserved=lane.in_flight),
                )
                if group is not None:
                    wait = max(wait, group.delay(now))
                if wait <= 0:
                    break
                if wait == float("inf"):  # every place is taken by a request in flight
                    lane.freed.clear()
                    started = self.clock()
                    await lane.freed.wait()
                    self.waited_seconds += self.clock() - started
                    continue
                self.waited_seconds += wait
                await asyncio.sleep(wait)
            lane.overall.record(now)
            # A send that comes late (the loop was busy) may catch up by one place, no more.
            lane.next_send = max(lane.next_send, now - lane.spacing) + lane.spacing
            lane.in_flight += 1
            return now

    def _answered(self, lane: Lane) -> float:
        """A request claimed in `_wait_overall` got its answer (or failed); returns when."""
        now = self.clock()
        lane.in_flight -= 1
        lane.answered.record(now)
        lane.freed.set()
        return now

    async def _send(
        self,
        chat_id: str | None,
        lane: Lane,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
    ) -> bool | JSONDict | list[JSONDict]:
        """Wait until this send fits every limit, send it, and account for its answer.

        A chat waiting for its own one-second slot only holds that chat's lock, so
        sends to other chats go on meanwhile. The lock is kept until Telegram answers:
        the chat's next send is timed from that answer.
        """
        if chat_id is None:
            await self._wait_overall(lane, None)
            try:
                return await callback(*args, **kwargs)
            finally:
                self._answered(lane)
        lock = self._chat_locks.setdefault(chat_id, asyncio.Lock())
        async with lock:
            wait = self._chat_next.get(chat_id, 0.0) - self.clock()
            if wait > 0:
                self.waited_seconds += wait
                await asyncio.sleep(wait)
            group = None
            if chat_id.startswith("-"):
                group = self._groups.setdefault(chat_id, SlidingWindow(self.group_per_minute, 60.0))
            await self._wait_overall(lane, group)
            try:
                return await callback(*args, **kwargs)
            finally:
                answered = self._answered(lane)
                self._chat_next[chat_id] = answered + self.chat_interval
                if group is not None:
                    group.record(answered)
                self._forget_idle_chats(answered)

    def _forget_idle_chats(self, now: float) -> None:
        if len(self._chat_next) <= 50_000:
            return
        stale = [
            c for c, t in self._chat_next.items() if t < now and not self._chat_locks[c].locked()
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
        lane = self.paid if data.get("allow_paid_broadcast") else self.free
        for attempt in range(2):
            try:
                if limited:
                    return await self._send(chat_id, lane, callback, args, kwargs)
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                if attempt == 1 or rate_limit_args == 0:  # callers may opt out of retrying
                    raise
                self.retries += 1
                await asyncio.sleep(retry_seconds(exc))
        raise AssertionError("unreachable")
