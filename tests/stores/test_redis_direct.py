"""The blocking Redis store's direct link (sessionward.stores._redis_direct): same answers, same faults.

Every test runs against the private standalone server. The link must change only how a
command reaches Redis: replies and error replies as redis-py gives them, a connection
killed by the server healed by the client's retry, a stalled Redis an outage within the
socket timeout, scripts flushed from Redis loaded again, and a forked child never
speaking on its parent's connections.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import NoScriptError

from sessionward._sync.stores.redis import RedisStore
from sessionward.core.errors import StoreUnavailableError
from sessionward.core.ids import generate_id, storage_key
from sessionward.core.records import SessionMeta, SessionRecord, Update
from sessionward.stores._redis_direct import DirectLink, direct_link

pytestmark = pytest.mark.redis

NOW = 1_700_000_000.0


def new_record(n: int = 0) -> SessionRecord:
    meta = SessionMeta(created_at=NOW, last_access_at=NOW, rotated_at=NOW, absolute_deadline=NOW + 28800)
    return SessionRecord(key=storage_key(generate_id()), meta=meta, data={"n": n}, expires_at=NOW + 1800)


def bump(record: SessionRecord, n: int) -> Update:
    return Update(set={"n": n}, delete=frozenset(), meta=record.meta, expires_at=record.expires_at)


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStore]:
    opened = RedisStore.from_url(redis_url, timeout_s=0.3)
    assert isinstance(opened._pipeline, DirectLink)
    yield opened
    opened.close()


@pytest.fixture
def admin(redis_url: str) -> Iterator[Redis]:
    """A separate plain client, to act on the server behind the store's back."""
    client = Redis.from_url(redis_url)
    yield client
    client.close()


def test_loads_and_saves_answer_as_through_redis_py(store: RedisStore) -> None:
    record = new_record()
    store.establish(record)
    assert store.save(record.key, bump(record, 7))
    entry = store.load(record.key, NOW)
    assert isinstance(entry, SessionRecord)
    assert entry.data == {"n": 7}
    assert store.load(storage_key(generate_id()), NOW) is None


def test_an_error_reply_reaches_the_caller_and_the_connection_stays_usable(store: RedisStore) -> None:
    link = store._pipeline
    with pytest.raises(NoScriptError):
        link.execute(b"EVALSHA", "0" * 40, 0)
    assert link.execute(b"PING") == b"PONG"


def test_a_killed_connection_heals_by_the_clients_retry(store: RedisStore, admin: Redis) -> None:
    record = new_record()
    store.establish(record)
    store.load(record.key, NOW)
    assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
    entry = store.load(record.key, NOW)
    assert isinstance(entry, SessionRecord)


def test_scripts_flushed_from_redis_are_loaded_again(store: RedisStore, admin: Redis) -> None:
    record = new_record()
    store.establish(record)
    assert store.save(record.key, bump(record, 1))
    admin.script_flush()
    assert store.save(record.key, bump(record, 2))
    entry = store.load(record.key, NOW)
    assert isinstance(entry, SessionRecord)
    assert entry.data == {"n": 2}


def test_a_stalled_redis_is_an_outage_within_the_socket_timeout_and_heals(store: RedisStore, admin: Redis) -> None:
    record = new_record()
    store.establish(record)
    store.load(record.key, NOW)
    admin.client_pause(1500, all=True)
    try:
        with pytest.raises(StoreUnavailableError):
            store.load(record.key, NOW)
    finally:
        admin.client_unpause()
    assert isinstance(store.load(record.key, NOW), SessionRecord)


def test_a_forked_child_does_not_reuse_the_parents_connections(store: RedisStore) -> None:
    link = store._pipeline
    link.execute(b"PING")
    kept = list(link._idle)
    assert kept
    link._pid = -1  # what os.getpid() no longer matches in a forked child
    assert link.execute(b"PING") == b"PONG"
    assert not any(connection in kept for connection in link._idle)


def test_only_standalone_blocking_clients_get_a_direct_link(redis_url: str) -> None:
    assert isinstance(direct_link(Redis.from_url(redis_url)), DirectLink)
    assert direct_link(Redis.from_url(redis_url, decode_responses=True)) is None
    assert direct_link(Redis.from_url(redis_url, single_connection_client=True)) is None
    assert direct_link(AsyncRedis.from_url(redis_url)) is None
