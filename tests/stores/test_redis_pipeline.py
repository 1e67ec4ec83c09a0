"""The Redis store's auto-pipeline (sessionward.stores._redis_pipeline): batching, order, faults.

Every test runs against the private standalone server. The pipeline must change only how
commands travel: each caller gets its own reply, errors stay with their caller, a lost or
stalled connection becomes an outage that heals by itself (F19), and nothing is cached,
so a session ended through another app server fails at its very next load here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis import Redis as BlockingRedis
from redis.asyncio import Redis, RedisCluster

from sessionward.core.errors import StoreError, StoreUnavailableError
from sessionward.core.ids import generate_id, storage_key
from sessionward.core.records import EndReason, SessionMeta, SessionRecord, Tombstone, Update
from sessionward.stores._redis_layout import session_key
from sessionward.stores._redis_pipeline import AutoPipeline, auto_pipeline
from sessionward.stores.redis import RedisStore

pytestmark = pytest.mark.redis

NOW = 1_700_000_000.0


def new_record(n: int = 0) -> SessionRecord:
    meta = SessionMeta(created_at=NOW, last_access_at=NOW, rotated_at=NOW, absolute_deadline=NOW + 28800)
    return SessionRecord(key=storage_key(generate_id()), meta=meta, data={"n": n}, expires_at=NOW + 1800)


def bump(record: SessionRecord, n: int) -> Update:
    return Update(set={"n": n}, delete=frozenset(), meta=record.meta, expires_at=record.expires_at)


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    opened = RedisStore.from_url(redis_url, timeout_s=0.3)
    assert isinstance(opened._pipeline, AutoPipeline)
    yield opened
    await opened.close()


@pytest.fixture
async def admin(redis_url: str) -> AsyncIterator[Redis]:
    """A separate plain client, to act on the server behind the store's back."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_concurrent_loads_of_one_tick_travel_in_one_write(store: RedisStore) -> None:
    records = [new_record(i) for i in range(50)]
    for record in records:
        await store.establish(record)
    await store.load(records[0].key, NOW)  # opens the connection
    pipeline: Any = store._pipeline
    writes, commands = pipeline.writes, pipeline.commands_sent
    loaded = await asyncio.gather(*(store.load(r.key, NOW) for r in records))
    assert (pipeline.writes - writes, pipeline.commands_sent - commands) == (1, 50)
    assert [entry.data["n"] for entry in loaded if isinstance(entry, SessionRecord)] == list(range(50))


async def test_replies_reach_their_own_callers_when_loads_and_saves_interleave(store: RedisStore) -> None:
    records = [new_record() for _ in range(40)]
    for record in records:
        await store.establish(record)

    async def one(i: int) -> tuple[bool, object]:
        saved = await store.save(records[i].key, bump(records[i], i))
        entry = await store.load(records[i].key, NOW)
        return saved, entry.data["n"] if isinstance(entry, SessionRecord) else None

    assert await asyncio.gather(*(one(i) for i in range(40))) == [(True, i) for i in range(40)]


async def test_an_error_reply_fails_only_its_own_caller(store: RedisStore, admin: Redis) -> None:
    good = new_record(7)
    await store.establish(good)
    foreign = storage_key(generate_id())
    await admin.set(session_key(store.prefix, foreign), b"someone else's string")  # WRONGTYPE for HGETALL
    results = await asyncio.gather(store.load(foreign, NOW), store.load(good.key, NOW), return_exceptions=True)
    assert isinstance(results[0], StoreError)
    assert not isinstance(results[0], StoreUnavailableError)
    assert isinstance(results[1], SessionRecord)
    assert results[1].data == {"n": 7}


async def test_a_session_ended_through_another_app_server_fails_at_its_next_load_here(redis_url: str) -> None:
    here, there = RedisStore.from_url(redis_url), RedisStore.from_url(redis_url)
    record = new_record()
    await here.establish(record)
    assert isinstance(await here.load(record.key, NOW), SessionRecord)
    await there.end(Tombstone(key=record.key, reason=EndReason.REVOKED, user=None, ended_at=NOW, expires_at=NOW + 60))
    entry = await here.load(record.key, NOW)  # no cache: the revocation is seen at once
    assert isinstance(entry, Tombstone)
    assert entry.reason is EndReason.REVOKED
    await here.close()
    await there.close()


async def test_scripts_flushed_from_redis_are_loaded_again(store: RedisStore, admin: Redis) -> None:
    record = new_record()
    await store.establish(record)
    assert await store.save(record.key, bump(record, 1))
    await admin.script_flush()
    assert await store.save(record.key, bump(record, 2))
    entry = await store.load(record.key, NOW)
    assert isinstance(entry, SessionRecord)
    assert entry.data == {"n": 2}


async def test_a_killed_connection_is_an_outage_that_heals_by_itself(store: RedisStore, admin: Redis) -> None:
    record = new_record()
    await store.establish(record)
    await store.load(record.key, NOW)
    await admin.client_kill_filter(_type="normal", skipme=True)
    outcomes: list[object] = []
    for _ in range(3):  # a load may still meet the dead connection; service must resume at once after
        try:
            outcomes.append(await store.load(record.key, NOW))
        except StoreUnavailableError as error:
            outcomes.append(error)
    assert isinstance(outcomes[-1], SessionRecord)
    assert sum(isinstance(outcome, StoreUnavailableError) for outcome in outcomes) <= 1


async def test_a_stalled_redis_fails_waiting_loads_within_the_socket_timeout(store: RedisStore, admin: Redis) -> None:
    record = new_record()
    await store.establish(record)
    await store.load(record.key, NOW)
    await admin.client_pause(1500, all=True)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(StoreUnavailableError):
        await store.load(record.key, NOW)
    assert loop.time() - started < 1.0  # the store's 0.3 s timeout, not Redis' 1.5 s pause
    await admin.client_unpause()
    for _ in range(20):  # the replaced connection comes back once Redis answers again
        try:
            assert isinstance(await store.load(record.key, NOW), SessionRecord)
            break
        except StoreUnavailableError:
            continue
    else:
        pytest.fail("the store did not recover after Redis answered again")


async def test_a_closed_store_fails_its_pending_calls_instead_of_hanging(store: RedisStore) -> None:
    record = new_record()
    await store.establish(record)
    pending = asyncio.ensure_future(store.load(record.key, NOW))
    await asyncio.sleep(0)  # the load is queued, not yet written
    await store.close()
    with pytest.raises(StoreUnavailableError):
        await pending


def test_only_standalone_asyncio_clients_get_a_pipeline(redis_url: str) -> None:
    assert isinstance(auto_pipeline(Redis.from_url(redis_url)), AutoPipeline)
    assert auto_pipeline(Redis.from_url(redis_url, decode_responses=True)) is None
    assert auto_pipeline(BlockingRedis.from_url(redis_url)) is None
    assert auto_pipeline(RedisCluster(host="127.0.0.1", port=1)) is None
