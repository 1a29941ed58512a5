"""How a tick is split among fixed shards, all enqueued each tick, stale ones dropped.

- A bot's shard is its id modulo the number of shards (``TICK_SHARDS``, fixed). Ids
  are handed out in sequence, so the modulo spreads bots evenly, needs nothing
  stored, and reads the same in Python and in SQL on both databases. The number
  does not depend on how many bots run: a bot never changes shard when others
  start or stop.
- Each tick (beat) enqueues one task per shard, all for the same moment; any
  worker takes any shard. The order rotates from tick to tick, so when workers
  fall behind it is never the same shards that wait last.
- A shard task taken more than one tick after its moment is dropped: the next
  tick has already enqueued that shard again. This is how a worker SIGKILLed
  mid-shard is recovered: its task, redelivered by Redis after the visibility
  timeout, is stale by then, and the shard was re-evaluated by the next tick's
  task on another worker. Re-evaluating a moment is safe: decisions carry
  deterministic client order ids, recorded once.
"""

from __future__ import annotations

from typing import Any

from db.models import Bot


def shard_of(bot_id: int, shards: int) -> int:
    return bot_id % shards


def shard_filter(shard: int, shards: int) -> Any:
    """The SQL condition ``shard_of(Bot.id, shards) == shard`` (no condition for one shard)."""
    return (Bot.id % shards) == shard if shards > 1 else True


def shards_of_tick(moment_ms: int, tick_seconds: float, shards: int) -> list[int]:
    """Every shard, starting at a different one each tick (the tick's number modulo shards)."""
    first = int(moment_ms // max(1, int(tick_seconds * 1000))) % shards
    return [(first + i) % shards for i in range(shards)]


def is_stale(moment_ms: int, now_ms: int, tick_seconds: float) -> bool:
    """A shard's task for ``moment_ms`` is stale once a whole tick has passed since it."""
    return now_ms - moment_ms > tick_seconds * 1000
