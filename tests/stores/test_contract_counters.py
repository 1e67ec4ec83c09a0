"""The fixed-window counters of the store contract (``count_hit``, ``reset_counter``).

A counter is what a per-client budget or a login throttle is built on: it must count
every hit, however many tasks, threads, processes and servers hit it at once, and
forget itself once its window is over. Each test runs once per backend
(``conftest.BACKENDS``: every store, async and generated sync) on a clean namespace;
time is passed in as ``now`` and moved by hand, nothing sleeps. Racing hits go through
separate store instances (connections, file descriptors; threads for the ``sync-*``
backends) and, in the last test, separate processes.
"""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap

import pytest
from redis.asyncio import Redis

from sessionward.core.engine import Hits, counter_name
from sessionward.stores.base import SessionStore
from sessionward.stores.file import FileStore
from sessionward.stores.redis import RedisStore
from sessionward.stores.sql import SqlStore

from .backends import Backend, instances
from .builders import NOW
from .sync_view import AsyncView

WINDOW_S = 60.0
RACERS_PER_INSTANCE = 8
HITS_PER_RACER = 10
PROCESSES = 4
HITS_PER_PROCESS = 25


def name_of(subject: str) -> str:
    return counter_name("contract-test", subject)


async def test_hits_within_a_window_are_counted_and_share_its_end(store: SessionStore) -> None:
    name = name_of("203.0.113.7/32")
    assert await store.count_hit(name, WINDOW_S, NOW) == Hits(1, NOW + WINDOW_S)
    assert await store.count_hit(name, WINDOW_S, NOW + 10) == Hits(2, NOW + WINDOW_S)
    assert await store.count_hit(name, WINDOW_S, NOW + WINDOW_S - 0.001) == Hits(3, NOW + WINDOW_S)


async def test_a_hit_after_the_window_starts_a_new_one_at_one(store: SessionStore) -> None:
    name = name_of("203.0.113.7/32")
    for second in range(5):
        await store.count_hit(name, WINDOW_S, NOW + second)
    later = NOW + WINDOW_S
    assert await store.count_hit(name, WINDOW_S, later) == Hits(1, later + WINDOW_S)
    assert await store.count_hit(name, WINDOW_S, later + 1) == Hits(2, later + WINDOW_S)


async def test_reset_forgets_the_counter(store: SessionStore) -> None:
    name, other = name_of("a"), name_of("b")
    for _ in range(3):
        await store.count_hit(name, WINDOW_S, NOW)
    await store.count_hit(other, WINDOW_S, NOW)
    await store.reset_counter(name)
    await store.reset_counter(name_of("never hit"))  # nothing there: no error
    assert await store.count_hit(name, WINDOW_S, NOW + 1) == Hits(1, NOW + 1 + WINDOW_S)
    assert (await store.count_hit(other, WINDOW_S, NOW + 1)).count == 2


async def test_distinct_names_count_apart(store: SessionStore) -> None:
    names = [name_of(f"2001:db8:{i}::/64") for i in range(5)]
    for i, name in enumerate(names):
        for _ in range(i + 1):
            await store.count_hit(name, WINDOW_S, NOW)
    for i, name in enumerate(names):
        assert (await store.count_hit(name, WINDOW_S, NOW)).count == i + 2


async def test_counters_are_counted_while_their_window_lasts(store: SessionStore) -> None:
    await store.count_hit(name_of("early"), 10.0, NOW)
    await store.count_hit(name_of("late"), WINDOW_S, NOW)
    assert (await store.stats(NOW)).counters == 2
    assert (await store.stats(NOW + 10)).counters == 1
    assert (await store.stats(NOW + WINDOW_S)).counters == 0
    # Counters are no sessions: nothing else is counted.
    stats = await store.stats(NOW)
    assert (stats.live_sessions, stats.tombstones, stats.users) == (0, 0, 0)


async def test_counters_past_their_window_are_purged(backend: Backend, store: SessionStore) -> None:
    if "redis" in backend.name:
        pytest.skip("Redis forgets counters by their TTL (test_a_redis_counter_expires_by_itself)")
    ended, lasting = name_of("ended"), name_of("lasting")
    await store.count_hit(ended, 10.0, NOW)
    await store.count_hit(lasting, WINDOW_S, NOW)
    await store.count_hit(lasting, WINDOW_S, NOW + 5)
    assert await store.purge_expired(NOW + 9) == 0
    assert await store.purge_expired(NOW + 11) == 1
    dump = await backend.dump()
    assert ended.encode() not in dump, "a counter past its window is still stored"
    assert (await store.count_hit(lasting, WINDOW_S, NOW + 12)).count == 3, "the purge took a live counter"
    assert await store.purge_expired(NOW + WINDOW_S + 1) == 1
    assert await store.purge_expired(NOW + WINDOW_S + 1) == 0


async def test_a_redis_counter_expires_by_itself(
    backend: Backend, store: SessionStore, request: pytest.FixtureRequest
) -> None:
    if backend.name != "redis":
        pytest.skip("only Redis expires counters by TTL (the others purge them); one server shows it")
    import redis.asyncio as aioredis

    name = name_of("ttl")
    await store.count_hit(name, WINDOW_S, NOW)
    await store.count_hit(name, WINDOW_S, NOW + 30)  # a later hit keeps the window's TTL
    client = aioredis.from_url(request.getfixturevalue("redis_url"))
    try:
        keys = [key async for key in client.scan_iter(match=f"*c:{{{name}}}")]
        assert len(keys) == 1
        ttl = await client.pttl(keys[0])
    finally:
        await client.aclose()
    assert 0 < ttl <= WINDOW_S * 1000 + 1000


async def test_bad_counter_names_and_windows_are_refused_and_write_nothing(
    backend: Backend, store: SessionStore
) -> None:
    before = await backend.dump()
    for bad_name in ("203.0.113.7", "../../etc/passwd", name_of("x").upper(), name_of("x")[:-1], ""):
        with pytest.raises(ValueError, match="SHA-256"):
            await store.count_hit(bad_name, WINDOW_S, NOW)
        with pytest.raises(ValueError, match="SHA-256"):
            await store.reset_counter(bad_name)
    for bad_window in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="window"):
            await store.count_hit(name_of("x"), bad_window, NOW)
    assert await backend.dump() == before


async def test_racing_hits_through_separate_instances_are_all_counted(backend: Backend, store: SessionStore) -> None:
    stores = await instances(backend, store)
    name = name_of("one client, many servers")

    async def racer(each: SessionStore) -> list[int]:
        return [(await each.count_hit(name, WINDOW_S, NOW)).count for _ in range(HITS_PER_RACER)]

    counts = await asyncio.gather(*(racer(each) for each in stores for _ in range(RACERS_PER_INSTANCE)))
    total = len(stores) * RACERS_PER_INSTANCE * HITS_PER_RACER
    # Every hit was counted once and saw its own count: none lost, none read twice.
    assert sorted(c for run in counts for c in run) == list(range(1, total + 1))
    assert (await store.count_hit(name, WINDOW_S, NOW)).count == total + 1


_WORKER = textwrap.dedent(
    """
    import asyncio, json, sys
    from sessionward.stores.file import FileStore
    from sessionward.stores.redis import RedisStore
    from sessionward.stores.sql import SqlStore

    kind, where, prefix, name, hits, now, window = sys.argv[1:]

    async def main():
        if kind == "file":
            store = FileStore(where)
        elif kind == "sql":
            store = SqlStore.from_url(where, table_prefix=prefix)
        else:
            store = RedisStore.from_url(where)
        try:
            counts = [(await store.count_hit(name, float(window), float(now))).count for _ in range(int(hits))]
        finally:
            await store.close()
        print(json.dumps(counts))

    asyncio.run(main())
    """
)


def _reopen(store: SessionStore) -> tuple[str, str, str] | None:
    """How a worker process opens the same store: (kind, location, table prefix), or None."""
    if isinstance(store, FileStore):
        return "file", str(store.root), ""
    if isinstance(store, SqlStore):
        prefix = store.sessions.name.removesuffix("sessions")
        return "sql", store.engine.url.render_as_string(hide_password=False), prefix
    if isinstance(store, RedisStore) and isinstance(store.client, Redis):
        kwargs = store.client.connection_pool.connection_kwargs
        return "redis", f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}", ""
    return None


async def test_hits_from_several_processes_are_all_counted(backend: Backend, store: SessionStore) -> None:
    if isinstance(store, AsyncView):
        pytest.skip("a generated sync store: the async store's run of this test hits the same server")
    where = _reopen(store)
    if where is None:
        pytest.skip(f"{backend.name}: no second process can reach this store")
    kind, location, prefix = where
    name = name_of("one client, many processes")
    arguments = [kind, location, prefix, name, str(HITS_PER_PROCESS), str(NOW), str(WINDOW_S)]
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", _WORKER, *arguments, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(PROCESSES)
    ]
    counts: list[int] = []
    async with asyncio.timeout(120):
        for worker in workers:
            out, err = await worker.communicate()
            assert worker.returncode == 0, err.decode()
            counts += json.loads(out)
    assert sorted(counts) == list(range(1, PROCESSES * HITS_PER_PROCESS + 1))
