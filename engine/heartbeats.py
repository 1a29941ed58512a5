"""Which bots a runner's tick evaluated: read from the runner's name, written with its heartbeat.

Every tick evaluates each running bot of its shard once and then writes one heartbeat
row for its runner (``engine_heartbeats``). A Celery shard's runner is named after its
share of the bots (``shard-2-of-5``: the bots whose id is 2 modulo 5), so "when was this
bot last evaluated" is that row's time: no per-bot write on the tick's path. Any other
runner (``embedded``, a test's ``engine``) ticks every running bot.
"""

from __future__ import annotations

import re

_SHARD = re.compile(r"shard-(\d+)-of-(\d+)")


def shard_runner(shard: int, shards: int) -> str:
    """The runner name of one shard of a tick fanned out into ``shards``."""
    return f"shard-{shard}-of-{shards}"


def evaluates(runner: str, bot_id: int) -> bool:
    """Whether the ticks of ``runner`` evaluate bot ``bot_id`` (when it is running)."""
    match = _SHARD.fullmatch(runner)
    if match is not None:
        shard, shards = int(match[1]), int(match[2])
        return shards > 0 and bot_id % shards == shard
    # "shard-3" without its count came from an older worker: which bots it had is unknown.
    return not runner.startswith("shard-")
