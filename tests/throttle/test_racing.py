"""Racing sign-in attempts from several processes never get more passwords checked than allowed.

Every attempt is counted in the store before its password is checked, with the store's
atomic counter, so the n-th attempt sees n whichever process sent it. Four processes,
each with its own connection to the same SQLite file, PostgreSQL database or Redis,
try 40 wrong passwords each for one account at the same frozen instant (one window):
with the default threshold of 5, exactly 5 passwords are checked among them (4 below
the threshold, then 1 through the gate), never more.
"""

from __future__ import annotations

import multiprocessing
import secrets
import time
from pathlib import Path

import pytest

from sessionward.stores import open_store
from sessionward.stores.base import SessionStore
from sessionward.stores.sql import SqlStore
from throttle.racers import race

PROCESSES = 4
ATTEMPTS = 40
THRESHOLD = 5  # LoginThrottlePolicy's default max_failures


def checked_by_racers(url: str, table_prefix: str = "") -> list[int]:
    """Run the racers against ``url``; return how many passwords each one checked."""
    context = multiprocessing.get_context("spawn")  # no forked copy of the test's event loop
    start = context.Barrier(PROCESSES)  # all loaded and connected, then all at once
    results = context.Queue()
    now = time.time()  # Redis also expires counters in real time
    processes = [
        context.Process(target=race, args=(url, table_prefix, now, ATTEMPTS, start, results, i))
        for i in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    counts = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    return counts


async def set_up(store: SessionStore) -> None:
    await store.setup()
    await store.close()


async def test_racing_attempts_from_several_processes_never_exceed_the_threshold_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    await set_up(open_store(url))
    counts = checked_by_racers(url)
    print(f"sqlite: {PROCESSES}x{ATTEMPTS} racing wrong passwords, checked per process {counts}, total {sum(counts)}")
    assert sum(counts) == THRESHOLD


@pytest.mark.postgres
async def test_racing_attempts_from_several_processes_never_exceed_the_threshold_on_postgres(
    postgres_url: str,
) -> None:
    prefix = f"t{secrets.token_hex(4)}_"
    store = SqlStore.from_url(postgres_url, table_prefix=prefix)
    await store.setup()
    try:
        counts = checked_by_racers(postgres_url, prefix)
    finally:
        await store.drop()
        await store.close()
    print(f"postgres: {PROCESSES}x{ATTEMPTS} racing wrong passwords, checked per process {counts}, total {sum(counts)}")
    assert sum(counts) == THRESHOLD


@pytest.mark.redis
async def test_racing_attempts_from_several_processes_never_exceed_the_threshold_on_redis(redis_url: str) -> None:
    counts = checked_by_racers(redis_url)
    print(f"redis: {PROCESSES}x{ATTEMPTS} racing wrong passwords, checked per process {counts}, total {sum(counts)}")
    assert sum(counts) == THRESHOLD
