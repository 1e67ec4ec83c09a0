"""RedisStore against a private redis-server and a local 3-master Redis Cluster.

The conformance suite (``test_contract.py``) checks the contract every store shares; these
tests check what is particular to Redis: the key layout and TTLs, per-user index hygiene,
atomic multiple-login control under racing logins, cluster slots, and error mapping.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from msgspec.structs import replace
from redis.asyncio import Redis, RedisCluster

from sessionward.core.engine import SessionLimit
from sessionward.core.errors import LoginRefusedError, StoreError, StoreUnavailableError
from sessionward.core.ids import generate_id, handle_of, storage_key
from sessionward.core.records import EndReason, SessionMeta, SessionRecord, Tombstone, Update
from sessionward.stores import open_store
from sessionward.stores._redis_layout import handle_key, session_key, user_keys, user_tag
from sessionward.stores.redis import RedisStore
from support.redis_servers import RedisServer

pytestmark = pytest.mark.redis

NOW = 1_700_000_000.0
IDLE_S = 1800.0
ABSOLUTE_S = 8 * 3600.0
TOMB_S = 3600.0


def new_record(user: str | None = None, *, at: float = NOW, data: dict[str, Any] | None = None) -> SessionRecord:
    meta = SessionMeta(
        created_at=at, last_access_at=at, rotated_at=at, absolute_deadline=at + ABSOLUTE_S, user=user, auth_at=at
    )
    return SessionRecord(key=storage_key(generate_id()), meta=meta, data=dict(data or {}), expires_at=at + IDLE_S)


def update_of(
    record: SessionRecord, *, now: float, set: dict[str, Any] | None = None, delete: frozenset[str] = frozenset()
) -> Update:
    meta = replace(record.meta, last_access_at=now)
    return Update(set=dict(set or {}), delete=delete, meta=meta, expires_at=now + IDLE_S)


def tomb(key: str, reason: EndReason = EndReason.LOGGED_OUT, *, user: str | None = None, now: float = NOW) -> Tombstone:
    return Tombstone(key=key, reason=reason, user=user, ended_at=now, expires_at=now + TOMB_S)


def limit(max_sessions: int, *, prevent: bool, now: float = NOW) -> SessionLimit:
    return SessionLimit(max_sessions=max_sessions, prevent_login=prevent, now=now, tombstone_expires_at=now + TOMB_S)


@pytest.fixture(params=["standalone", "cluster"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[RedisStore]:
    """A RedisStore on the private server, then on the private cluster."""
    url = request.getfixturevalue("redis_url" if request.param == "standalone" else "redis_cluster_url")
    opened = open_store(url)
    assert isinstance(opened, RedisStore)
    await opened.setup()
    yield opened
    await opened.close()


async def raw_index(store: RedisStore, user: str) -> list[str]:
    members: Any = await store.client.zrange(user_keys(store.prefix, user_tag(user))[0], 0, -1)
    return [m.decode() for m in members]


# -- layout, TTLs -------------------------------------------------------------------------------


async def test_session_is_a_hash_with_one_field_per_data_key_and_no_raw_id(store: RedisStore) -> None:
    raw = generate_id()
    record = replace(new_record("alice", data={"n": 1, "cart": ["x"]}), key=storage_key(raw))
    await store.establish(record)
    fields: Any = await store.client.hgetall(session_key(store.prefix, record.key))
    assert set(fields) == {b"m", b"e", b"r", b"v", b"u", b"d:n", b"d:cart"}
    assert fields[b"d:cart"] == b'["x"]'
    assert raw.encode() not in b"".join([*fields, *fields.values()])
    assert await store.client.get(handle_key(store.prefix, record.key)) == record.key.encode()


async def test_ttl_follows_the_idle_deadline_and_is_capped_by_the_absolute_one(store: RedisStore) -> None:
    record = new_record("alice")
    await store.establish(record)
    pttl = await store.client.pttl(session_key(store.prefix, record.key))
    assert IDLE_S * 1000 < pttl <= IDLE_S * 1000 + 1000
    # Near the absolute deadline the expiry is the deadline, not the idle timeout.
    late = NOW + ABSOLUTE_S - 60
    update = replace(update_of(record, now=late), expires_at=record.meta.absolute_deadline)
    assert await store.save(record.key, update)
    pttl = await store.client.pttl(session_key(store.prefix, record.key))
    assert 60_000 - 1000 < pttl <= 61_000
    assert await store.client.pttl(handle_key(store.prefix, record.key)) == pytest.approx(pttl, abs=1000)


async def test_ttl_covers_the_retention_after_expiry(store: RedisStore) -> None:
    record = replace(new_record("alice"), retain_until=NOW + IDLE_S + TOMB_S)
    await store.establish(record)
    pttl = await store.client.pttl(session_key(store.prefix, record.key))
    assert (IDLE_S + TOMB_S) * 1000 < pttl <= (IDLE_S + TOMB_S) * 1000 + 1000
    retained = await store.load(record.key, NOW + IDLE_S + 1)  # expired, still there to tell why
    assert isinstance(retained, SessionRecord)
    assert await store.list_user("alice", NOW + IDLE_S + 1) == []


async def test_tombstone_ttl_is_its_own(store: RedisStore) -> None:
    record = new_record("alice")
    await store.establish(record)
    await store.end(replace(tomb(record.key, user="alice"), expires_at=NOW + 120))
    pttl = await store.client.pttl(session_key(store.prefix, record.key))
    assert 119_000 < pttl <= 121_000
    assert await store.client.exists(handle_key(store.prefix, record.key)) == 0


# -- per-key writes, no resurrection -----------------------------------------------------------------


async def test_racing_writers_of_different_keys_all_keep_their_change(store: RedisStore) -> None:
    record = new_record()
    await store.establish(record)
    await asyncio.gather(*(store.save(record.key, update_of(record, now=NOW + 1, set={f"k{i}": i})) for i in range(50)))
    loaded = await store.load(record.key, NOW + 2)
    assert isinstance(loaded, SessionRecord)
    assert loaded.data == {f"k{i}": i for i in range(50)}
    assert loaded.version == 50


async def test_save_after_a_concurrent_logout_does_not_resurrect_the_session(store: RedisStore) -> None:
    record = new_record("alice")
    await store.establish(record)
    await store.end(tomb(record.key, user="alice"))
    assert not await store.save(record.key, update_of(record, now=NOW + 1, set={"x": 1}))
    loaded = await store.load(record.key, NOW + 2)
    assert isinstance(loaded, Tombstone)
    assert loaded.reason is EndReason.LOGGED_OUT


async def test_delete_removes_only_that_key(store: RedisStore) -> None:
    record = new_record(data={"a": 1, "b": 2})
    await store.establish(record)
    assert await store.save(record.key, update_of(record, now=NOW + 1, delete=frozenset({"a"})))
    loaded = await store.load(record.key, NOW + 2)
    assert isinstance(loaded, SessionRecord)
    assert loaded.data == {"b": 2}


# -- the user index --------------------------------------------------------------------------------


async def test_logout_leaves_no_orphan_in_the_user_index(store: RedisStore) -> None:
    records = [new_record("alice", at=NOW + i) for i in range(3)]
    for record in records:
        await store.establish(record)
    assert await raw_index(store, "alice") == [r.key for r in records]
    await store.end(tomb(records[1].key, user="alice"))
    assert await raw_index(store, "alice") == [records[0].key, records[2].key]
    assert [r.key for r in await store.end_user("alice", EndReason.REVOKED, NOW, NOW + TOMB_S)] == [
        records[0].key,
        records[2].key,
    ]
    assert await raw_index(store, "alice") == []


async def test_index_entries_of_sessions_redis_expired_are_pruned_when_listed(store: RedisStore) -> None:
    gone, kept = new_record("alice"), new_record("alice", at=NOW + 1)
    await store.establish(gone)
    await store.establish(kept)
    await store.client.delete(session_key(store.prefix, gone.key))  # as Redis does when the TTL runs out
    assert [r.key for r in await store.list_user("alice", NOW + 2)] == [kept.key]
    assert await raw_index(store, "alice") == [kept.key]


async def test_purge_prunes_index_entries_past_their_absolute_deadline(store: RedisStore) -> None:
    for i in range(5):
        await store.establish(new_record(f"user{i}"))
    assert await store.purge_expired(NOW + 60, batch_size=10) == 0
    assert await store.purge_expired(NOW + ABSOLUTE_S + 1, batch_size=3) == 3
    assert await store.purge_expired(NOW + ABSOLUTE_S + 1, batch_size=3) == 2
    assert await store.purge_expired(NOW + ABSOLUTE_S + 1, batch_size=3) == 0


async def test_user_index_expires_with_its_last_session(store: RedisStore) -> None:
    await store.establish(new_record("alice"))
    pttl = await store.client.pttl(user_keys(store.prefix, user_tag("alice"))[0])
    assert ABSOLUTE_S * 1000 < pttl <= ABSOLUTE_S * 1000 + 1000


async def test_user_names_with_braces_cannot_escape_their_hash_tag(store: RedisStore) -> None:
    for user in ("}x", "{a}", "a}b", "%7B", "ünï ☃"):
        record = new_record(user)
        await store.establish(record, limit=limit(1, prevent=False))
        assert [r.key for r in await store.list_user(user, NOW)] == [record.key]
    assert (await store.stats(NOW)).users == 5


# -- multiple-login control ------------------------------------------------------------------------


async def test_racing_logins_cannot_exceed_the_limit_first_wins(store: RedisStore) -> None:
    attempts = [new_record("alice", at=NOW + i / 100) for i in range(20)]
    results = await asyncio.gather(
        *(store.establish(r, limit=limit(3, prevent=True)) for r in attempts), return_exceptions=True
    )
    assert sum(1 for r in results if isinstance(r, LoginRefusedError)) == 17
    assert len(await store.list_user("alice", NOW + 1)) == 3


async def test_racing_logins_last_wins_keeps_exactly_the_limit(store: RedisStore) -> None:
    attempts = [new_record("alice", at=NOW + i / 100) for i in range(20)]
    results = await asyncio.gather(*(store.establish(r, limit=limit(2, prevent=False)) for r in attempts))
    assert sum(len(r.displaced) for r in results) == 18
    live = await store.list_user("alice", NOW + 1)
    assert len(live) == 2
    for record in attempts:
        entry = await store.load(record.key, NOW + 1)
        assert isinstance(entry, SessionRecord) == (record.key in {r.key for r in live})
        if isinstance(entry, Tombstone):
            assert entry.reason is EndReason.DISPLACED


async def test_an_idle_expired_session_does_not_block_a_first_wins_login(store: RedisStore) -> None:
    old = new_record("alice")
    await store.establish(old, limit=limit(1, prevent=True))
    await store.client.delete(session_key(store.prefix, old.key))  # Redis expired it (idle timeout)
    fresh = new_record("alice", at=NOW + IDLE_S + 1)
    await store.establish(fresh, limit=limit(1, prevent=True, now=NOW + IDLE_S + 1))
    assert await raw_index(store, "alice") == [fresh.key]


async def test_refused_login_writes_nothing(store: RedisStore) -> None:
    first = new_record("alice")
    await store.establish(first, limit=limit(1, prevent=True))
    anonymous = new_record()
    await store.establish(anonymous)
    refused = replace(new_record("alice", at=NOW + 1), key=storage_key(generate_id()))
    with pytest.raises(LoginRefusedError):
        await store.establish(refused, retire=tomb(anonymous.key, EndReason.SUPERSEDED), limit=limit(1, prevent=True))
    assert await store.load(refused.key, NOW + 2) is None
    assert isinstance(await store.load(anonymous.key, NOW + 2), SessionRecord)
    assert await raw_index(store, "alice") == [first.key]


async def test_rotation_moves_the_index_entry_to_the_new_key(store: RedisStore) -> None:
    old = new_record("alice")
    await store.establish(old)
    new = replace(new_record("alice", at=NOW + 5), key=storage_key(generate_id()))
    await store.establish(new, retire=tomb(old.key, EndReason.RENEWED, user="alice", now=NOW + 5))
    assert await raw_index(store, "alice") == [new.key]
    assert isinstance(await store.load(old.key, NOW + 6), Tombstone)


async def test_fixation_none_login_moves_the_key_between_users(store: RedisStore) -> None:
    record = new_record("bob")
    await store.establish(record)
    await store.establish(replace(record, meta=replace(record.meta, user="alice")), limit=limit(2, prevent=True))
    assert await raw_index(store, "bob") == []
    assert await raw_index(store, "alice") == [record.key]


# -- handles, admin revocation across slots ------------------------------------------------------------


async def test_revoke_by_handle_without_user_across_many_slots(store: RedisStore) -> None:
    records = [new_record(f"user{i % 7}", at=NOW + i) for i in range(40)]
    for record in records:
        await store.establish(record)
    for record in records[::3]:
        ended = await store.end_handle(record.handle, EndReason.REVOKED, NOW + 50, NOW + 50 + TOMB_S)
        assert ended is not None
        assert ended.key == record.key
    for index, record in enumerate(records):
        found = await store.find_handle(handle_of(record.key), NOW + 51)
        assert (found is None) == (index % 3 == 0)
    stats = await store.stats(NOW + 51)
    assert (stats.live_sessions, stats.tombstones, stats.users) == (26, 14, 7)


async def test_find_handle_refuses_what_is_not_a_handle(store: RedisStore) -> None:
    record = new_record()
    await store.establish(record)
    assert await store.find_handle(record.handle, NOW) is not None
    for bad in ("*", record.handle[:8], record.handle.upper(), record.handle + "0", "{x}"):
        assert await store.find_handle(bad, NOW) is None


# -- corruption ----------------------------------------------------------------------------------------


async def test_a_corrupt_hash_is_reported_then_ended_cleanly(store: RedisStore) -> None:
    record = new_record("alice")
    await store.establish(record)
    await store.client.hset(session_key(store.prefix, record.key), "m", b"\x00{not json")
    with pytest.raises(StoreError):
        await store.load(record.key, NOW)
    assert await store.end(tomb(record.key, EndReason.REVOKED)) is None
    assert isinstance(await store.load(record.key, NOW), Tombstone)
    assert await raw_index(store, "alice") == []


async def test_a_foreign_value_at_a_session_key_is_corrupt_and_ending_replaces_it(store: RedisStore) -> None:
    record = new_record()
    await store.client.set(session_key(store.prefix, record.key), "not a hash")
    with pytest.raises(StoreError) as raised:
        await store.load(record.key, NOW)
    assert not isinstance(raised.value, StoreUnavailableError)
    await store.end(tomb(record.key, EndReason.REVOKED))
    assert isinstance(await store.load(record.key, NOW), Tombstone)


# -- outages -------------------------------------------------------------------------------------------


async def test_a_stopped_server_is_unavailable_quickly_and_service_resumes(
    redis_url: str, redis_server: RedisServer
) -> None:
    store = open_store(redis_url)
    record = new_record()
    await store.establish(record)
    redis_server.stop()
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(StoreUnavailableError):
            await store.load(record.key, NOW)
        assert asyncio.get_running_loop().time() - started < 2.5
    finally:
        redis_server.start()
    await store.establish(record)  # the same client reconnects by itself
    assert isinstance(await store.load(record.key, NOW), SessionRecord)
    await store.close()


async def test_injected_client_is_used_as_given(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    store = RedisStore(client, key_prefix="app2:")
    assert not store.cluster
    record = new_record()
    await store.establish(record)
    assert await client.exists(f"app2:s:{{{record.key[:16]}}}{record.key}") == 1
    await store.close()


async def test_cluster_client_is_recognised(redis_cluster_url: str) -> None:
    store = open_store(redis_cluster_url)
    assert isinstance(store, RedisStore)
    assert isinstance(store.client, RedisCluster)
    assert store.cluster
    await store.close()


# -- the idle clock mirror of earlier versions ------------------------------------------------


async def test_a_legacy_idle_clock_field_counts_until_a_save_writes_the_metadata(store: RedisStore) -> None:
    """Hashes written by the earlier load-and-touch script kept the idle clock in ``a``."""
    record = new_record("alice")
    await store.establish(record)
    name = session_key(store.prefix, record.key)
    await store.client.hset(name, mapping={"a": repr(NOW + 100), "x": repr(record.meta.absolute_deadline)})
    loaded = await store.load(record.key, NOW + 101)
    assert isinstance(loaded, SessionRecord)
    assert loaded.meta.last_access_at == NOW + 100  # the later clock wins, the session is not idle
    meta = replace(loaded.meta, last_access_at=NOW + 200)
    update = Update(set={}, delete=frozenset(), meta=meta, expires_at=NOW + 200 + IDLE_S)
    assert await store.save(record.key, update)
    assert await store.client.hmget(name, ["a", "x"]) == [None, None]
    again = await store.load(record.key, NOW + 201)
    assert isinstance(again, SessionRecord)
    assert again.meta.last_access_at == NOW + 200
