"""Which bots a runner's tick evaluated: read from the runner's name, written with its heartbeat.

Every tick evaluates each running bot of its shard once and then writes one heartbeat
row for its runner (``engine_heartbeats``). A Celery shard's runner is named after its
share of the bots (``shard-2-of-16``: the bots of the owners whose tick bucket falls in
shard 2 of 16, engine.sharding), so "when was this bot last evaluated" is that row's
time: no per-bot write on the tick's path. Any other runner (``embedded``, a test's
``engine``) ticks every running bot.
"""

from __future__ import annotations

import re

from db.models.bots import tick_bucket_of
from engine.sharding import shard_of

_SHARD = re.compile(r"shard-(\d+)-of-(\d+)")


def shard_runner(shard: int, shards: int) -> str:
    """The runner name of one shard of a tick fanned out into ``shards``."""
    return f"shard-{shard}-of-{shards}"


def runner_shard(runner: str) -> int | None:
    """The shard a runner named by `shard_runner` ticked; None for any other runner."""
    match = _SHARD.fullmatch(runner)
    return None if match is None else int(match[1])


def evaluates(runner: str, owner_id: int) -> bool:
    """Whether the ticks of ``runner`` evaluate the running bots of user ``owner_id``."""
    match = _SHARD.fullmatch(runner)
    if match is not None:
        shard, shards = int(match[1]), int(match[2])
        return shards == 1 or (shards > 0 and shard_of(tick_bucket_of(owner_id), shards) == shard)
    # "shard-3" without its count came from an older worker: which bots it had is unknown.
    return not runner.startswith("shard-")
