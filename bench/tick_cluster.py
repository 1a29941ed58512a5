"""The tick on a Celery cluster: N real worker processes on Redis share the shards of each tick.

Run from the repository root (PostgreSQL and Redis on 127.0.0.1)::

    .venv/bin/python bench/tick.py --workers 1 2                      # 10k bots, then 100k
    .venv/bin/python bench/tick.py --workers 1 2 --bots 10000 --also   # 10k only
    .venv/bin/python bench/tick.py --workers 2 --shards 8 --also       # another TICK_SHARDS

For each size (a database of its own, the population of ``bench/tick.py``, the exchange
emulator in a process of its own with a clock the bench moves a minute per tick):

1. For each ``--workers`` count, that many ``celery -A robotrader.worker worker
   --pool=solo -Q ticks`` processes start (solo: one process each, the unit a machine
   or container runs), configured only through ``ROBOTRADER_*`` settings as in production
   (``TICK_SHARDS``, ``REDIS_URL``, ``CELERY_NAMESPACE`` of the run's own).
2. The bench's driver does what beat's ``engine.tick`` does: one ``engine.tick_shard``
   per shard for the tick's moment on the ``ticks`` queue, in the rotating order of
   ``engine.sharding``. A tick's wall time runs from just before the first task is sent
   until the driver sees every shard's heartbeat written (committed with the shard's
   orders, polled every 10 ms). One warm-up tick (each bot's data source recorded,
   DCA base buys, ccxt's markets loaded per worker), then ANALYZE, then ``--ticks``
   measured ticks, each the first after a 1m candle closed (the dearest of a minute).
3. During each tick: CPU seconds of the workers, of the PostgreSQL backends of the
   run's database, of the rest of PostgreSQL (WAL writer, checkpointer, other users),
   of redis-server, of the emulator and of the driver (``/proc/<pid>/stat``), and of
   the whole machine (``/proc/stat``), each divided by the tick's wall time: "cores
   busy". A process near 1.0 is a saturated single thread; a machine near its core
   count is saturated as a whole.
4. With 2 workers or more, one more tick: a worker is SIGKILLed mid-tick (once a few
   shards are written). Its shard waits in Redis (unacknowledged) and, redelivered
   after the visibility timeout, is dropped as stale; the next tick, sent one
   ``--tick-seconds`` after the first as beat would, evaluates it on the other
   worker. Recovery: from the kill until that shard's heartbeat is written again.
   Orders recorded twice for one decision: counted (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import tick as single  # bench/tick.py: population, databases, emulator
from sqlalchemy import func, select, text

from db.models import EngineHeartbeat, Order
from db.session import Database
from db.vault import generate_master_key
from engine.heartbeats import runner_shard
from engine.sharding import shards_of_tick

CLK_TCK = os.sysconf("SC_CLK_TCK")
POLL_SECONDS = 0.01


# --------------------------------------------------------------------------------------------
# CPU from /proc
# --------------------------------------------------------------------------------------------
def proc_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of one process; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_cpu() -> float:
    """Busy CPU seconds of the whole machine (all cores) since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / CLK_TCK


def pids_named(name: str) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


@dataclass
class CpuGroups:
    """Which processes make up each group; sampled at a tick's start and end."""

    groups: dict[str, set[int]]

    def sample(self) -> dict[str, dict[int, float]]:
        out: dict[str, dict[int, float]] = {}
        for group, pids in self.groups.items():
            out[group] = {}
            for pid in pids:
                cpu = proc_cpu(pid)
                if cpu is not None:
                    out[group][pid] = cpu
        out["machine"] = {0: machine_cpu()}
        return out

    @staticmethod
    def busy(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict:
        """CPU seconds per group between two samples (processes present in both)."""
        return {
            group: sum(
                after[group][pid] - cpu for pid, cpu in pids.items() if pid in after.get(group, {})
            )
            for group, pids in before.items()
        }


# --------------------------------------------------------------------------------------------
# workers
# --------------------------------------------------------------------------------------------
class WorkerProcess:
    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        command = [
            *(sys.executable, "-m", "celery", "-A", "robotrader.worker", "worker"),
            *("-Q", "ticks", "--pool=solo", "-l", "WARNING", "-n", f"{name}@%h"),
            *("--without-gossip", "--without-mingle", "--without-heartbeat"),
        ]
        self.process = subprocess.Popen(
            command, env=env, cwd=single.ROOT, stdout=subprocess.DEVNULL
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Cluster:
    database: Database
    db_name: str
    sender: object  # a Celery app that only sends
    shards: int
    tick_seconds: float
    probe: single.EmulatorProbe
    workers: list[WorkerProcess] = field(default_factory=list)

    def send_tick(self, moment_ms: int) -> None:
        for shard in shards_of_tick(moment_ms, self.tick_seconds, self.shards):
            self.sender.send_task(  # type: ignore[attr-defined]
                "engine.tick_shard", args=(shard, self.shards, moment_ms), queue="ticks"
            )

    async def written(self, since: datetime) -> dict[int, int]:
        """Shard -> bots evaluated, for the shards whose heartbeat is newer than ``since``."""
        async with self.database.sessions() as session:
            rows = await session.execute(
                select(EngineHeartbeat.runner, EngineHeartbeat.bots_evaluated).where(
                    EngineHeartbeat.last_tick_at >= since
                )
            )
            shards = ((runner_shard(runner), bots) for runner, bots in rows)
            return {shard: bots for shard, bots in shards if shard is not None}

    async def wait_all(self, since: datetime, within: float = 180) -> tuple[float, dict[int, int]]:
        started = time.perf_counter()
        while time.perf_counter() - started < within:
            done = await self.written(since)
            if len(done) == self.shards:
                return time.perf_counter(), done
            await asyncio.sleep(POLL_SECONDS)
        raise RuntimeError(f"the shards were not all written within {within:.0f} s")

    async def backend_pids(self) -> set[int]:
        async with self.database.sessions() as session:
            rows = await session.scalars(
                text("select pid from pg_stat_activity where datname = :name"),
                {"name": self.db_name},
            )
            return set(rows)


def wait_for_workers(sender: object, names: set[str], within: float = 120) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        replies = sender.control.ping(timeout=0.5)  # type: ignore[attr-defined]
        if {next(iter(r)).split("@")[0] for r in replies} >= names:
            return
    raise RuntimeError(f"workers {sorted(names)} did not start")


# --------------------------------------------------------------------------------------------
# one tick, measured
# --------------------------------------------------------------------------------------------
@dataclass
class ClusterTick:
    wall: float
    bots: int
    klines: int
    cores: dict[str, float]  # cores busy on average per group during the tick


async def measured_tick(cluster: Cluster, cpu: CpuGroups, moment_ms: int) -> ClusterTick:
    await cluster.probe.set_clock(moment_ms)
    await cluster.probe.reset_calls()
    cpu.groups["postgres (run's backends)"] = await cluster.backend_pids()
    cpu.groups["postgres (rest)"] = pids_named("postgres") - cpu.groups["postgres (run's backends)"]
    since = datetime.now(UTC)
    before = cpu.sample()
    started = time.perf_counter()
    cluster.send_tick(moment_ms)
    finished, done = await cluster.wait_all(since)
    after = cpu.sample()
    wall = finished - started
    klines, _ = await cluster.probe.klines_calls()
    busy = CpuGroups.busy(before, after)
    return ClusterTick(wall, sum(done.values()), klines, {g: s / wall for g, s in busy.items()})


@dataclass
class KillResult:
    killed_shards: list[int]
    recovery: float
    bots_recovered: int
    doubled: int


async def kill_tick(cluster: Cluster, moment_ms: int) -> KillResult:
    """A worker SIGKILLed mid-tick; the next tick (one tick later) takes its shard."""
    await cluster.probe.set_clock(moment_ms)
    since = datetime.now(UTC)
    started = time.perf_counter()
    cluster.send_tick(moment_ms)
    while True:  # mid-tick: some shards written, most not
        if len(await cluster.written(since)) >= max(2, cluster.shards // 8):
            break
        await asyncio.sleep(POLL_SECONDS)
    victim = cluster.workers[0]
    victim.kill()
    killed_at = time.perf_counter()
    # The survivors finish what is left of the tick: the shards missing are the victim's.
    quiet_since = time.perf_counter()
    seen = len(await cluster.written(since))
    while time.perf_counter() - quiet_since < 3.0:
        await asyncio.sleep(0.1)
        now_seen = len(await cluster.written(since))
        if now_seen != seen:
            seen, quiet_since = now_seen, time.perf_counter()
    missing = sorted(set(range(cluster.shards)) - set(await cluster.written(since)))
    # Beat's next tick, one tick after the first (or at once, if draining took longer).
    await asyncio.sleep(max(0.0, cluster.tick_seconds - (time.perf_counter() - started)))
    resent = datetime.now(UTC)
    cluster.send_tick(moment_ms + int(cluster.tick_seconds * 1000))
    while True:
        done = await cluster.written(resent)
        if set(missing) <= set(done):
            recovered = time.perf_counter()
            break
        await asyncio.sleep(POLL_SECONDS)
    await cluster.wait_all(resent)
    async with cluster.database.sessions() as session:
        doubled = await session.scalar(
            select(func.count()).select_from(
                select(Order.client_order_id)
                .group_by(Order.client_order_id)
                .having(func.count() > 1)
                .subquery()
            )
        )
    return KillResult(
        missing, recovered - killed_at, sum(done[s] for s in missing), int(doubled or 0)
    )


# --------------------------------------------------------------------------------------------
# one size
# --------------------------------------------------------------------------------------------
def worker_env(args: argparse.Namespace, db_url: str, namespace: str, emulator_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOTRADER_")}
    env.update(
        ROBOTRADER_DATABASE_URL=db_url,
        ROBOTRADER_REDIS_URL=single.REDIS_URL,
        ROBOTRADER_MASTER_KEY=generate_master_key(),
        ROBOTRADER_EXCHANGE_API_URLS=json.dumps({single.EXCHANGE: emulator_url}),
        ROBOTRADER_CELERY_NAMESPACE=namespace,
        ROBOTRADER_TICK_SHARDS=str(args.shards),
        ROBOTRADER_TICK_SECONDS=str(args.tick_seconds),
        ROBOTRADER_CELERY_VISIBILITY_TIMEOUT="10",
        ROBOTRADER_LOG_LEVEL="WARNING",
        PYTHONPATH=str(single.ROOT),
    )
    return env


def sender_app(namespace: str) -> object:
    from celery import Celery

    sender = Celery("bench-driver", broker=single.REDIS_URL)
    sender.conf.update(
        broker_transport_options={"global_keyprefix": f"{namespace}:", "visibility_timeout": 10},
        task_serializer="json",
    )
    return sender


async def forget_namespace(namespace: str) -> None:
    import redis.asyncio as aioredis

    redis = aioredis.Redis.from_url(single.REDIS_URL)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{namespace}:*")]
        for start in range(0, len(keys), 1000):
            await redis.delete(*keys[start : start + 1000])
    finally:
        await redis.aclose()


@dataclass
class SizeResult:
    bots: int
    by_workers: dict[int, list[ClusterTick]]
    kill: KillResult | None


async def run_size(
    args: argparse.Namespace, bots: int, users: int, bench_db: single.BenchDatabase
) -> SizeResult:
    emulator = single.EmulatorProcess()
    probe = single.EmulatorProbe(emulator.base_url)
    database = Database(bench_db.url)
    # Moments from the minute after next on: a shard task for a moment a tick in the past is
    # stale, and the setup and warm-up of 100,000 bots take tens of seconds (from the next
    # minute, a warm-up that ended past its moment lost its late shards).
    t0 = (int(time.time() * 1000) // single.MINUTE_MS + 2) * single.MINUTE_MS
    result = SizeResult(bots, {}, None)
    try:
        markets = await probe.add_markets(args.markets)
        from tests.emulators.exchange import default_price

        prices = {s: float(default_price(s)) for s in markets}
        population = single.build_population(bots, users, markets, prices, args.seed)
        setup = time.perf_counter()
        await single.insert_population(database, population)
        redis_pid = min(pids_named("redis-server"), default=None)
        single.say("=" * 96)
        single.say(
            f"Tick on a Celery cluster: {bots:,} bots, {users:,} users, {len(markets)} markets "
            f"({single.EXCHANGE} 1m, paper), TICK_SHARDS={args.shards}; setup "
            f"{time.perf_counter() - setup:.1f} s; {os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.1f}"
        )
        index = 0
        counts = list(args.workers)
        for n_workers in counts:
            namespace = f"rt-bench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
            env = worker_env(args, bench_db.url, namespace, emulator.base_url)
            sender = sender_app(namespace)
            cluster = Cluster(
                database, bench_db.name, sender, args.shards, args.tick_seconds, probe
            )
            cluster.workers = [WorkerProcess(f"bw{i}", env) for i in range(n_workers)]
            try:
                await asyncio.to_thread(wait_for_workers, sender, {w.name for w in cluster.workers})
                cpu = CpuGroups(
                    {
                        "workers": {w.pid for w in cluster.workers},
                        "redis-server": {redis_pid} if redis_pid else set(),
                        "exchange emulator": {emulator.proc.pid},
                        "driver (bench)": {os.getpid()},
                    }
                )
                warm = await measured_tick(cluster, cpu, single.candle_close(t0, index))
                index += 1
                async with database.engine.connect() as conn:
                    await conn.execution_options(isolation_level="AUTOCOMMIT")
                    await conn.execute(text("ANALYZE"))
                single.say(
                    f"  {n_workers} worker(s): warm-up tick {warm.wall:.2f} s "
                    f"({warm.bots:,} bots, {warm.klines} klines calls), not measured"
                )
                samples = []
                for _ in range(args.ticks):
                    sample = await measured_tick(cluster, cpu, single.candle_close(t0, index))
                    index += 1
                    samples.append(sample)
                    if args.verbose:
                        single.say(
                            f"    tick: wall {sample.wall:.3f} s, bots {sample.bots:,}, klines "
                            f"{sample.klines}, cores "
                            + ", ".join(f"{g} {c:.2f}" for g, c in sample.cores.items())
                        )
                result.by_workers[n_workers] = samples
                report_workers(n_workers, samples, bots, len(markets))
                if n_workers >= 2 and n_workers == max(counts):
                    result.kill = await kill_tick(cluster, single.candle_close(t0, index))
                    index += 2
                    report_kill(result.kill, args.tick_seconds)
            finally:
                for worker in cluster.workers:
                    worker.stop()
                await forget_namespace(namespace)
        report_scaling(result, args)
        return result
    finally:
        await probe.close()
        await database.dispose()
        emulator.stop()


def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else 0.0


def report_workers(n: int, samples: Sequence[ClusterTick], bots: int, markets: int) -> None:
    walls = [s.wall for s in samples]
    single.say(
        f"  {n} worker(s), {len(samples)} candle-close ticks: wall until every shard is written "
        f"p50 {_pct(walls, 50):.3f} s, p99 {_pct(walls, 99):.3f} s "
        f"({bots / _pct(walls, 50):,.0f} bots/s at p50)"
    )
    evaluated = {s.bots for s in samples}
    klines = [s.klines for s in samples]
    single.say(
        f"    bots evaluated per tick {sorted(evaluated)}; klines calls per tick "
        f"{min(klines)}..{max(klines)} for {markets} markets (one fetch per market across "
        f"all shards and workers: {'OK' if set(klines) == {markets} else 'NO'})"
    )
    groups = samples[0].cores.keys()
    cores = {g: float(np.mean([s.cores[g] for s in samples])) for g in groups}
    single.say(
        "    cores busy (CPU s / wall s, mean over the ticks): "
        + ", ".join(f"{g} {c:.2f}" for g, c in cores.items())
    )
    per_worker = cores["workers"] / n
    machine = cores["machine"]
    cpus = os.cpu_count() or 1
    if machine >= 0.85 * cpus:
        verdict = f"the machine's {cpus} cores ({machine:.2f} busy)"
    elif per_worker >= 0.85:
        verdict = f"the worker processes (each {per_worker:.2f} of a core: single-threaded)"
    else:
        top = max((g for g in groups if g != "machine"), key=lambda g: cores[g])
        verdict = f"nothing fully; the busiest is {top} ({cores[top]:.2f} cores)"
    single.say(f"    saturated: {verdict}")


def report_kill(kill: KillResult, tick_seconds: float) -> None:
    if not kill.killed_shards:
        single.say(
            "  kill: the worker SIGKILLed held no shard at that moment (its last was written, "
            "the survivors took the rest): nothing to recover; orders recorded twice for one "
            f"decision: {kill.doubled}"
        )
        return
    single.say(
        f"  kill: a worker SIGKILLed mid-tick; its shard(s) {kill.killed_shards} "
        f"({kill.bots_recovered:,} bots) evaluated again by the next tick "
        f"(sent {tick_seconds:.0f} s after the first) {kill.recovery:.2f} s after the kill; "
        f"orders recorded twice for one decision: {kill.doubled}"
    )


def report_scaling(result: SizeResult, args: argparse.Namespace) -> None:
    p99 = {n: _pct([s.wall for s in samples], 99) for n, samples in result.by_workers.items()}
    p50 = {n: _pct([s.wall for s in samples], 50) for n, samples in result.by_workers.items()}
    if 1 in p50 and len(p50) > 1:
        for n in sorted(p50):
            if n > 1:
                single.say(
                    f"  scaling 1 -> {n} workers: p50 {p50[1] / p50[n]:.2f}x faster, "
                    f"p99 {p99[1] / p99[n]:.2f}x (ideal {n:.0f}x)"
                )
    if result.bots >= 100_000 and 2 in p99:
        met = p99[2] < single.NEXT_GOAL_SECONDS
        single.say(
            f"  goal 100,000 bots p99 < {single.NEXT_GOAL_SECONDS:.0f} s with 2 workers: "
            f"{'MET' if met else 'NOT MET'} (p99 {p99[2]:.3f} s)"
        )
    single.say(f"  machine load average at the end: {os.getloadavg()[0]:.1f}")


def sizes(args: argparse.Namespace) -> Iterable[tuple[int, int]]:
    yield args.bots, args.users
    for extra in args.also or []:
        if extra > 0:
            yield extra, max(1, round(args.users * extra / args.bots))


def main(args: argparse.Namespace) -> int:
    if args.database != "postgresql":
        raise SystemExit("--workers runs on PostgreSQL (several processes write at once)")
    for bots, users in sizes(args):
        bench_db = single.BenchDatabase.create("postgresql")
        try:
            asyncio.run(run_size(args, bots, users, bench_db))
        finally:
            bench_db.drop()
    return 0
