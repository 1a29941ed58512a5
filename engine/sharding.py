"""How a tick is split among fixed shards, all enqueued each tick, stale ones dropped.

- A shard is whole users: a bot's bucket is its owner's (``tick_bucket_of``: the low
  bits of the id, reversed; stored with the bot, db.models.bots), and shard ``k`` of
  ``TICK_SHARDS`` holds the buckets ``b`` with ``b * shards // TICK_BUCKETS == k``, a
  range. So a shard's
  running bots are read through the (status, bucket) index instead of scanning all
  running bots each shard, and two shards running at once never lock the same
  user's paper balances (the write phase locks them). Owners' ids are handed out
  in sequence and their bits reversed, so consecutive users land in different
  shards and buckets fill evenly. Nothing depends on how many bots run: a bot
  never changes shard when others start or stop.
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

from sqlalchemy import and_

from db.models import Bot
from db.models.bots import TICK_BUCKETS


def shard_of(bucket: int, shards: int) -> int:
    """The shard of a bot whose tick bucket is ``bucket`` (``Bot.tick_bucket``)."""
    return bucket * shards // TICK_BUCKETS


def shard_buckets(shard: int, shards: int) -> range:
    """The buckets of one shard: ``shard_of(b, shards) == shard`` exactly for these."""
    return range(-(-shard * TICK_BUCKETS // shards), -(-(shard + 1) * TICK_BUCKETS // shards))


def shard_filter(shard: int, shards: int) -> Any:
    """The SQL condition ``shard_of(Bot.tick_bucket, shards) == shard``: a range of the index."""
    if shards <= 1:
        return True
    buckets = shard_buckets(shard, shards)
    return and_(Bot.tick_bucket >= buckets.start, Bot.tick_bucket < buckets.stop)


def shards_of_tick(moment_ms: int, tick_seconds: float, shards: int) -> list[int]:
    """Every shard, starting at a different one each tick (the tick's number modulo shards)."""
    first = int(moment_ms // max(1, int(tick_seconds * 1000))) % shards
    return [(first + i) % shards for i in range(shards)]


def is_stale(moment_ms: int, now_ms: int, tick_seconds: float) -> bool:
    """A shard's task for ``moment_ms`` is stale once a whole tick has passed since it."""
    return now_ms - moment_ms > tick_seconds * 1000
