"""Processes started at once on a fresh data dir all end up with one development key.

Before, each saw no key file, generated its own key and renamed it into place: two
processes could encrypt under two different keys (about 1 start in 150), or one
crashed when the other had already renamed the shared temporary file.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import stat
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from robotrader.master_key import master_keys
from robotrader.settings import Settings

PROCESSES = 8
TRIALS = 12


def _no_hard_links(source: object, target: object) -> None:
    raise PermissionError("hard links not supported here")


def _start(
    data_dir: str,
    barrier: Barrier,
    results: multiprocessing.Queue,  # type: ignore[type-arg]
    hard_links: bool,
) -> None:
    if not hard_links:  # some volumes (and file systems) refuse link(): O_EXCL instead
        os.link = _no_hard_links  # type: ignore[assignment]  # this child process only
    settings = Settings(_env_file=None, data_dir=Path(data_dir))  # type: ignore[call-arg]
    barrier.wait()
    try:
        current, _ = master_keys(settings)
        results.put(hashlib.sha256(current.get_secret_value().encode()).hexdigest())
    except Exception as exc:  # reported to the test, which fails on it
        results.put(f"crash: {type(exc).__name__}")


@pytest.mark.parametrize("hard_links", [True, False])
def test_concurrent_starts_share_one_key(tmp_path: Path, hard_links: bool) -> None:
    # forkserver: each child forks from a clean server process, not from this test run
    # (forking a process that runs emulator and event-loop threads can copy a held lock
    # into the child, which then hangs).
    context = multiprocessing.get_context("forkserver")
    for trial in range(TRIALS):
        data_dir = tmp_path / f"trial{trial}"
        barrier = context.Barrier(PROCESSES)
        results = context.Queue()
        workers = [
            context.Process(target=_start, args=(str(data_dir), barrier, results, hard_links))
            for _ in range(PROCESSES)
        ]
        for worker in workers:
            worker.start()
        seen = [results.get(timeout=30) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
        assert not [s for s in seen if s.startswith("crash")], (trial, seen)
        assert len(set(seen)) == 1, (trial, seen)
        key_file = data_dir / "master.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        lines = [line for line in key_file.read_text().splitlines() if line.strip()]
        assert len(lines) == 1
        assert hashlib.sha256(lines[0].encode()).hexdigest() == seen[0]
        assert sorted(p.name for p in data_dir.iterdir()) == ["master.key"]  # no temp left
