"""Fixed shards of whole users: a bot keeps its shard whatever else runs; a tick covers all."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from db.models import Bot, BotStatus
from db.models.bots import TICK_BUCKETS, tick_bucket_of
from engine.sharding import is_stale, shard_buckets, shard_filter, shard_of, shards_of_tick
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


@pytest.mark.parametrize("shards", [1, 3, 4, 7, 64, 100, 1024])
def test_each_shard_is_one_range_of_buckets_and_they_cover_all(shards: int) -> None:
    covered: list[int] = []
    for shard in range(shards):
        buckets = shard_buckets(shard, shards)
        assert len(buckets) in (TICK_BUCKETS // shards, -(-TICK_BUCKETS // shards))
        assert all(shard_of(b, shards) == shard for b in buckets)
        covered += buckets
    assert covered == list(range(TICK_BUCKETS))


@pytest.mark.parametrize("shards", [2, 4, 8, 64])
def test_users_in_a_row_fill_every_shard_evenly(shards: int) -> None:
    """Ids are handed out in sequence: a small install is not all in the first shard."""
    for first in (1, 1000):
        users = range(first, first + 4 * shards)
        counts = [0] * shards
        for user in users:
            counts[shard_of(tick_bucket_of(user), shards)] += 1
        assert counts == [4] * shards


async def test_a_users_bots_share_a_shard_and_keep_it_when_other_bots_start(app: App) -> None:
    users = [await make_user(app, f"s{i}") for i in range(3)]
    first = [await running_bot(app, users[i % 3], name=f"a{i}") for i in range(5)]
    before = {s: {b.id for b in await _load(app, s)} for s in range(4)}
    more = [await running_bot(app, users[i % 3], name=f"b{i}") for i in range(7)]
    after = {s: {b.id for b in await _load(app, s)} for s in range(4)}
    async with app.database.sessions() as session:
        owner = {bot: user for bot, user in await session.execute(select(Bot.id, Bot.user_id))}
    for shard in range(4):
        assert before[shard] <= after[shard]
        assert all(shard_of(tick_bucket_of(owner[b]), 4) == shard for b in after[shard])
    assert set().union(*after.values()) == set(first) | set(more)
    assert sum(1 for bots in after.values() if bots) == 3, "three users, three shards"


async def test_a_shard_reads_its_bots_through_the_bucket_index(app: App) -> None:
    """Not a scan of every running bot per shard: a range of ix_bots_status_bucket."""
    user = await make_user(app)
    await running_bot(app, user)
    query = select(Bot.id).where(Bot.status == BotStatus.RUNNING, shard_filter(5, 64))
    async with app.database.sessions() as session:
        conn = await session.connection()
        compiled = query.compile(conn.sync_connection, compile_kwargs={"literal_binds": True})
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SET LOCAL enable_seqscan = off"))  # a tiny table here
            plan = "\n".join((await conn.execute(text(f"EXPLAIN {compiled}"))).scalars())
            assert "ix_bots_status_bucket" in plan and "tick_bucket >=" in plan, plan
        else:
            rows = await conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
            plan = "\n".join(str(row[-1]) for row in rows)
            assert "ix_bots_status_bucket (status=? AND tick_bucket>? AND tick_bucket<?)" in plan


async def _load(app: App, shard: int) -> list[BotState]:
    async with app.database.sessions() as session:
        return await load_bots(session, shard, 4)
