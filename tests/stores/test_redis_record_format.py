"""How the Redis stores write metadata and tombstones: compact by default, JSON for 0.1 servers.

Redis keeps a hash as a listpack (about half the memory of a hashtable) only while every
value is at most 64 bytes; a browser's User-Agent alone is longer, and so is a renewal's
tombstone with its successor's key. The compact format packs each and splits it into
fields of at most 64 bytes. ``record_format=json`` writes them as sessionward 0.1 did,
one JSON field each that 0.1 reads, for a fleet upgraded server by server; either store
reads what the other wrote.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from msgspec.structs import replace

from sessionward.core.errors import ConfigError
from sessionward.core.ids import generate_id, seal_successor, storage_key
from sessionward.core.records import (
    EndReason,
    SessionMeta,
    SessionRecord,
    Tombstone,
    Update,
    meta_from_json,
    meta_to_json,
    tombstone_from_json,
)
from sessionward.stores import open_store
from sessionward.stores._redis_layout import session_key
from sessionward.stores.redis import RedisStore

pytestmark = pytest.mark.redis

NOW = 1_700_000_000.123456
BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)

Opener = Callable[[str], AsyncIterator[RedisStore]]


def browser_record(user: str = "alice", *, agent: str = BROWSER) -> SessionRecord:
    meta = SessionMeta(
        created_at=NOW,
        last_access_at=NOW + 0.25,
        rotated_at=NOW,
        absolute_deadline=NOW + 8 * 3600,
        user=user,
        auth_at=NOW,
        ip="2001:db8::7",
        user_agent=agent,
        csrf_token="8unX0H5Bj2mbK69Xi8TUuezyBZAlOC51lK-g7mKur1Y",
    )
    return SessionRecord(key=storage_key(generate_id()), meta=meta, data={"n": 1}, expires_at=NOW + 1800)


def touch(record: SessionRecord, meta: SessionMeta) -> Update:
    return Update(set={"n": 2}, delete=frozenset(), meta=meta, expires_at=meta.last_access_at + 1800)


@pytest.fixture(params=["standalone", "cluster"])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    """A compact store and a JSON one on the same server (one fleet, mid-upgrade)."""
    url = request.getfixturevalue("redis_url" if request.param == "standalone" else "redis_cluster_url")
    compact, as_json = open_store(url), open_store(url + "?record_format=json")
    assert isinstance(compact, RedisStore)
    assert isinstance(as_json, RedisStore)
    for store in (compact, as_json):
        await store.setup()
    yield compact, as_json
    for store in (compact, as_json):
        await store.close()


async def fields_of(store: RedisStore, key: str) -> dict[bytes, bytes]:
    fields: Any = await store.client.hgetall(session_key(store.prefix, key))
    return dict(fields)


async def encoding_of(store: RedisStore, key: str) -> bytes:
    encoding: Any = await store.client.object("encoding", session_key(store.prefix, key))
    return encoding if isinstance(encoding, bytes) else str(encoding).encode()


async def test_a_browser_session_is_kept_as_a_listpack_in_fields_of_at_most_64_bytes(
    stores: tuple[RedisStore, RedisStore],
) -> None:
    compact, _ = stores
    record = browser_record()
    await compact.establish(record)

    fields = await fields_of(compact, record.key)
    assert {b"m", b"m1", b"m2"} <= set(fields)
    assert max(len(value) for value in fields.values()) <= 64
    assert await encoding_of(compact, record.key) == b"listpack"
    assert await compact.load(record.key, NOW + 1) == record


async def test_a_save_that_shortens_the_metadata_removes_the_fields_it_no_longer_needs(
    stores: tuple[RedisStore, RedisStore],
) -> None:
    compact, _ = stores
    record = browser_record(agent=BROWSER * 3)  # the device list keeps a long agent, within its cap
    await compact.establish(record)
    longest = {name for name in await fields_of(compact, record.key) if name[:1] == b"m"}
    meta = replace(record.meta, user_agent="curl/8.5.0", last_access_at=NOW + 60)

    assert await compact.save(record.key, touch(record, meta))

    kept = {name for name in await fields_of(compact, record.key) if name[:1] == b"m"}
    assert kept < longest
    assert kept == {b"m", b"m1"}
    loaded = await compact.load(record.key, NOW + 61)
    assert isinstance(loaded, SessionRecord)
    assert (loaded.meta, loaded.data) == (meta, {"n": 2})


async def test_the_json_format_writes_one_field_that_sessionward_0_1_reads(
    stores: tuple[RedisStore, RedisStore],
) -> None:
    _, as_json = stores
    record = browser_record()
    await as_json.establish(record)

    fields = await fields_of(as_json, record.key)
    assert not any(name[:1] == b"m" and name != b"m" for name in fields)
    assert meta_from_json(fields[b"m"]) == record.meta


async def test_a_fleet_mid_upgrade_reads_and_writes_each_others_sessions(
    stores: tuple[RedisStore, RedisStore],
) -> None:
    compact, as_json = stores
    record = browser_record()
    await as_json.establish(record)
    assert await compact.load(record.key, NOW + 1) == record

    # A compact server touches a session a JSON server wrote, then a JSON server touches it back.
    meta = replace(record.meta, last_access_at=NOW + 60)
    assert await compact.save(record.key, touch(record, meta))
    assert await encoding_of(compact, record.key) == b"listpack"
    meta = replace(meta, last_access_at=NOW + 120)
    assert await as_json.save(record.key, touch(record, meta))

    fields = await fields_of(compact, record.key)
    assert [name for name in fields if name[:1] == b"m"] == [b"m"]
    for store in (compact, as_json):
        loaded = await store.load(record.key, NOW + 121)
        assert isinstance(loaded, SessionRecord)
        assert loaded.meta == meta


async def test_a_json_field_beside_stale_compact_fields_reads_as_the_json(
    stores: tuple[RedisStore, RedisStore],
) -> None:
    # A 0.1 server's save writes only "m": what a compact write had in m1, m2... stays
    # behind until the next compact write, and must not be read as part of the JSON.
    compact, _as_json = stores
    record = browser_record()
    await compact.establish(record)
    await compact.client.hset(session_key(compact.prefix, record.key), "m", meta_to_json(record.meta))

    loaded = await compact.load(record.key, NOW + 1)
    assert isinstance(loaded, SessionRecord)
    assert loaded.meta == record.meta
    meta = replace(record.meta, last_access_at=NOW + 60)
    assert await compact.save(record.key, touch(record, meta))
    assert await compact.load(record.key, NOW + 61) == replace(
        record, meta=meta, data={"n": 2}, expires_at=NOW + 60 + 1800, version=1
    )


async def test_a_logout_leaves_a_tombstone_of_one_short_field(stores: tuple[RedisStore, RedisStore]) -> None:
    compact, _ = stores
    record = browser_record()
    await compact.establish(record)
    tomb = Tombstone(
        key=record.key, reason=EndReason.LOGGED_OUT, user="alice", ended_at=NOW + 5, expires_at=NOW + 86_400
    )

    await compact.end(tomb)

    fields = await fields_of(compact, record.key)
    assert set(fields) == {b"t", b"e"}
    assert len(fields[b"t"]) <= 64
    assert await encoding_of(compact, record.key) == b"listpack"
    assert await compact.load(record.key, NOW + 6) == tomb


def renewal_of(record: SessionRecord) -> tuple[SessionRecord, Tombstone]:
    successor = replace(browser_record(), meta=replace(record.meta, rotated_at=NOW + 10))
    tomb = Tombstone(
        key=record.key,
        reason=EndReason.RENEWED,
        user="alice",
        ended_at=NOW + 10,
        expires_at=NOW + 86_400,
        successor_key=successor.key,
        sealed_successor=seal_successor("old-id-" + "x" * 40, "new-id-" + "y" * 40),
        grace_until=NOW + 40,
    )
    return successor, tomb


@pytest.mark.parametrize("writer", ["compact", "json"])
async def test_a_renewal_tombstone_keeps_its_successor_and_the_old_handle_leads_there(
    stores: tuple[RedisStore, RedisStore], writer: str
) -> None:
    compact, as_json = stores
    store = compact if writer == "compact" else as_json
    record = browser_record()
    await store.establish(record)
    successor, tomb = renewal_of(record)

    await store.establish(successor, retire=tomb)

    fields = await fields_of(store, record.key)
    if writer == "compact":
        assert set(fields) == {b"t", b"t1", b"e"}  # the successor's 64-hex key makes it long
        assert await encoding_of(store, record.key) == b"listpack"
    else:
        assert set(fields) == {b"t", b"e"}
        assert tombstone_from_json(fields[b"t"], record.key) == tomb.unsealed()  # as 0.1 reads it
    for reader in (compact, as_json):
        assert await reader.load(record.key, NOW + 11) == tomb  # the seal joined back, in the grace
        # A device list drawn before the renewal revokes by the old handle: it must still
        # find where the session went.
        moved = await reader.find_moved(record.handle, NOW + 11)
        assert moved is not None
        assert moved.successor_key == successor.key


def test_an_unknown_record_format_is_refused() -> None:
    with pytest.raises(ConfigError) as raised:
        open_store("redis://127.0.0.1:6379/0?record_format=msgpack", setting="SESSIONWARD_STORE")
    assert raised.value.setting == "SESSIONWARD_STORE"
    assert "record_format" in str(raised.value)
    from redis.asyncio import Redis

    with pytest.raises(ValueError, match="record_format"):
        RedisStore(Redis(), record_format="pickle")


async def test_a_session_of_thousands_of_fields_is_rewritten_compact_over_json(
    stores: tuple[RedisStore, RedisStore],
) -> None:
    # Compact over JSON rewrites the whole hash; Lua's unpack() stops near 8,000 values,
    # so a big session must be written back in batches, not fail every save from then on.
    compact, as_json = stores
    record = browser_record()
    await as_json.establish(record)
    data: dict[str, Any] = {}
    for batch in range(5):
        added = {f"k{batch}-{i}": i for i in range(1000)}
        data.update(added)
        only_data = Update(
            set=added, delete=frozenset(), meta=record.meta, expires_at=record.expires_at, meta_changed=False
        )
        assert await as_json.save(record.key, only_data)
    meta = replace(record.meta, last_access_at=NOW + 60)

    assert await compact.save(record.key, touch(record, meta))

    loaded = await compact.load(record.key, NOW + 61)
    assert isinstance(loaded, SessionRecord)
    assert loaded.meta == meta
    assert loaded.data == {**data, "n": 2}
    assert b"m1" in await fields_of(compact, record.key)


async def test_a_user_name_of_thousands_of_metadata_fields_signs_in_and_ends(
    stores: tuple[RedisStore, RedisStore],
) -> None:
    compact, _ = stores
    user = "u" * 300_000  # about 4,700 fields of 64 bytes, in the metadata and the tombstone
    record = browser_record(user)

    await compact.establish(record)
    assert await compact.load(record.key, NOW + 1) == record
    tomb = Tombstone(key=record.key, reason=EndReason.LOGGED_OUT, user=user, ended_at=NOW + 2, expires_at=NOW + 3600)
    await compact.end(tomb)
    assert await compact.load(record.key, NOW + 3) == tomb


async def test_a_far_absolute_deadline_reads_back_as_written(stores: tuple[RedisStore, RedisStore]) -> None:
    # An absolute timeout of "never" (1e15 s) is finite: JSON kept it, so must the compact format.
    compact, _ = stores
    record = browser_record()
    record = replace(record, meta=replace(record.meta, absolute_deadline=1e15))

    await compact.establish(record)

    assert await compact.load(record.key, NOW + 1) == record


@pytest.mark.parametrize("kind", ["async", "blocking"])
def test_a_client_that_decodes_replies_to_text_is_refused_at_once(kind: str) -> None:
    # Compact records are binary: such a client would fail on every read, mid-request.
    import redis
    import redis.asyncio

    from sessionward._sync.stores.redis import RedisStore as BlockingRedisStore

    store_type: Any = RedisStore if kind == "async" else BlockingRedisStore
    client: Any = (redis.asyncio.Redis if kind == "async" else redis.Redis)(decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses=False"):
        store_type(client)
