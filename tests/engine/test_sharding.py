"""Fixed shards: a bot keeps its shard whatever else runs; every tick covers every shard."""

from __future__ import annotations

from engine.sharding import is_stale, shard_of, shards_of_tick
from engine.tick import BotState, load_bots
from robotrader.app import App
from tests.engine.conftest import make_user, running_bot


def test_every_tick_enqueues_every_shard_starting_elsewhere_each_tick() -> None:
    tick_ms = 5_000
    firsts = set()
    for tick in range(8):
        order = shards_of_tick(1_700_000_000_000 + tick * tick_ms, 5.0, 8)
        assert sorted(order) == list(range(8))
        firsts.add(order[0])
    assert firsts == set(range(8)), "no shard always waits last when workers fall behind"


def test_a_shard_task_is_stale_once_a_whole_tick_has_passed() -> None:
    assert not is_stale(10_000, 15_000, 5.0)
    assert is_stale(10_000, 15_001, 5.0)
    assert not is_stale(20_000, 15_000, 5.0)  # a moment ahead of this clock is not late


async def test_a_bot_keeps_its_shard_when_other_bots_start(app: App) -> None:
    user = await make_user(app)
    first = [await running_bot(app, user, name=f"a{i}") for i in range(5)]
    before = {s: {b.id for b in await _load(app, s)} for s in range(4)}
    more = [await running_bot(app, user, name=f"b{i}") for i in range(7)]
    after = {s: {b.id for b in await _load(app, s)} for s in range(4)}
    for shard in range(4):
        assert before[shard] <= after[shard]
        assert all(shard_of(bot_id, 4) == shard for bot_id in after[shard])
    assert set().union(*after.values()) == set(first) | set(more)


async def _load(app: App, shard: int) -> list[BotState]:
    async with app.database.sessions() as session:
        return await load_bots(session, shard, 4)
