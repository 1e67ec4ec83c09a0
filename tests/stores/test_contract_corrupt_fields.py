"""Corrupt records, field by field (SPEC §7): never a 500, always invalid, logged and removed.

Whole-entry garbage is covered by the contract suite; here each stored field in turn gets
a value of the wrong type or out of range, the way a buggy migration, a hand edit or an
attacker with write access to the store would leave it: a tombstone whose
``grace_until`` is ``"soon"``, SQLite text in a REAL column, PostgreSQL's NaN, a Redis
version that is not a number. Every one must load as :class:`StoreError` (not a
``TypeError`` three calls later), and :meth:`SessionStore.discard` must leave a sound
tombstone where it was, with the session's data gone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import orjson
import pytest
import sqlalchemy as sa

from sessionward import ManualClock
from sessionward.core.errors import StoreError, StoreUnavailableError
from sessionward.core.ids import seal_successor, storage_key
from sessionward.core.records import PACKED_MARK, EndReason, SessionRecord, Tombstone
from sessionward.stores._redis_layout import chunks, decode_meta, decode_tombstone, session_key
from sessionward.stores.base import SessionStore
from sessionward.stores.sql import SqlStore
from support.helpers import client_for, make_app, set_cookie_value

from .backends import BACKENDS, Backend, ended
from .builders import NOW, make_record, make_tombstone, new_key

CANARY = "zq-canary-4417"
"""A data value to look for in a dump: after the discard it must be gone."""

Corrupter = Callable[[Backend, SessionStore, str], Awaitable[None]]


# -- writing a bad value straight into each backend -------------------------------------------


async def _sql_set(backend: Backend, store: SessionStore, key: str, **values: Any) -> None:
    sql: Any = getattr(store, "sync", store)  # the generated sync store speaks the same tables
    # Text goes in as text (SQLite keeps it in a REAL column), past SQLAlchemy's float binding.
    raw = {name: sa.literal(value, sa.String()) if isinstance(value, str) else value for name, value in values.items()}
    update = sa.update(sql.sessions).where(sql.sessions.c.key == key).values(**raw)
    if isinstance(sql, SqlStore):
        async with sql.engine.begin() as connection:
            assert (await connection.execute(update)).rowcount == 1
    else:
        with sql.engine.begin() as connection:
            assert connection.execute(update).rowcount == 1


async def _sql_text(store: SessionStore, key: str, column: str) -> str:
    sql: Any = getattr(store, "sync", store)
    query = sa.select(sql.sessions.c[column]).where(sql.sessions.c.key == key)
    if isinstance(sql, SqlStore):
        async with sql.engine.connect() as connection:
            text = (await connection.execute(query)).scalar()
    else:
        with sql.engine.connect() as connection:
            text = connection.execute(query).scalar()
    assert isinstance(text, str)
    return text


async def _sql_json(backend: Backend, store: SessionStore, key: str, column: str, change: dict[str, Any]) -> None:
    text = await _sql_text(store, key, column)
    await _sql_set(backend, store, key, **{column: orjson.dumps({**orjson.loads(text), **change}).decode()})


async def _redis_hash(store: SessionStore, key: str) -> tuple[Any, str]:
    inner: Any = getattr(store, "sync", store)
    name = session_key(inner.prefix, key)
    assert await _maybe(inner.client.exists(name)) == 1
    return inner.client, name


async def _maybe(value: Any) -> Any:
    return await value if isinstance(value, Awaitable) else value


async def _redis_set(backend: Backend, store: SessionStore, key: str, **fields: bytes) -> None:
    client, name = await _redis_hash(store, key)
    await _maybe(client.hset(name, mapping=fields))


async def _redis_chunks(store: SessionStore, key: str, first: bytes = b"m") -> tuple[Any, str, dict[bytes, bytes]]:
    """The fields of a value split from field ``first`` on (``m``, ``m1``... or ``t``, ``t1``...)."""
    client, name = await _redis_hash(store, key)
    fields = await _maybe(client.hgetall(name))
    return client, name, {field: value for field, value in fields.items() if field[:1] == first}


async def _redis_packed(
    backend: Backend, store: SessionStore, key: str, position: int | slice, value: Any, first: bytes = b"m"
) -> None:
    """Change item ``position`` of the compact metadata (or tombstone: ``first`` ``t``), keeping it compact."""
    client, name, parts = await _redis_chunks(store, key, first)
    packed = b"".join(parts[first + b"%d" % i if i else first] for i in range(len(parts)))
    assert packed[:1] == PACKED_MARK
    items = msgspec.msgpack.decode(packed[1:])
    items[position] = value
    await _maybe(client.hdel(name, *parts))
    await _maybe(client.hset(name, mapping=_flat_pairs(chunks(first, PACKED_MARK + msgspec.msgpack.encode(items)))))


def _flat_pairs(flat: list[Any]) -> dict[Any, Any]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


async def _redis_as_json(backend: Backend, store: SessionStore, key: str, change: dict[str, Any]) -> None:
    """Write the metadata as sessionward 0.1 did (one JSON field ``m``), with ``change`` made."""
    client, name, parts = await _redis_chunks(store, key)
    meta = decode_meta(parts.pop(b"m"), parts)
    await _maybe(client.hdel(name, *parts))
    await _maybe(client.hset(name, "m", orjson.dumps({**msgspec.structs.asdict(meta), **change})))


async def _redis_tomb_as_json(backend: Backend, store: SessionStore, key: str, change: dict[str, Any]) -> None:
    """Write the tombstone as sessionward 0.1 did (one JSON field ``t``, no key), with ``change`` made."""
    client, name, parts = await _redis_chunks(store, key, b"t")
    fields = msgspec.structs.asdict(decode_tombstone(key, parts.pop(b"t"), parts))
    del fields["key"]
    await _maybe(client.hdel(name, *parts))
    await _maybe(client.hset(name, "t", orjson.dumps({**fields, **change})))


async def _redis_json_tomb_and(backend: Backend, store: SessionStore, key: str, **fields: bytes) -> None:
    """A 0.1 JSON tombstone, with ``fields`` beside it (sessionward writes a tombstone whole)."""
    await _redis_tomb_as_json(backend, store, key, {})
    await _redis_hash_fields(backend, store, key, **fields)


async def _redis_hash_fields(backend: Backend, store: SessionStore, key: str, **fields: bytes | None) -> None:
    client, name = await _redis_hash(store, key)
    for field, value in fields.items():
        await _maybe(client.hdel(name, field) if value is None else client.hset(name, field, value))


def _file_path(store: SessionStore, key: str) -> Any:
    inner: Any = getattr(store, "sync", store)
    return inner.root / "sessions" / key[:2] / key[2:4] / f"{key}.json"


async def _file_json(backend: Backend, store: SessionStore, key: str, path: tuple[str, ...], value: Any) -> None:
    file = _file_path(store, key)
    fields = orjson.loads(file.read_bytes())
    target = fields
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    file.write_bytes(orjson.dumps(fields))


# Each case: (backends it applies to, does it need a tombstone rather than a live record, corrupter)
SQL = ("sqlite", "postgres", "mysql")
REDIS = ("redis", "redis_cluster")
CASES: dict[str, tuple[tuple[str, ...], bool, Corrupter]] = {
    "sqlite_last_access_at_text": (
        ("sqlite",),
        False,
        lambda b, s, k: _sql_set(b, s, k, last_access_at="abc"),
    ),
    "sqlite_kept_until_text": (("sqlite",), False, lambda b, s, k: _sql_set(b, s, k, kept_until="abc")),
    "sqlite_version_text": (("sqlite",), False, lambda b, s, k: _sql_set(b, s, k, version="abc")),
    # A version no count reaches (SQLite keeps any 64-bit integer; the others declare 32 bits):
    # the next write's version would not fit.
    "sqlite_version_past_any_count": (("sqlite",), False, lambda b, s, k: _sql_set(b, s, k, version=2**63 - 1)),
    "sql_version_negative": (SQL, False, lambda b, s, k: _sql_set(b, s, k, version=-1)),
    "sqlite_expires_at_text": (("sqlite",), False, lambda b, s, k: _sql_set(b, s, k, expires_at="abc")),
    "sqlite_meta_invalid_utf8": (
        ("sqlite",),
        False,
        lambda b, s, k: _sql_set(b, s, k, meta=sa.cast(sa.literal(b"\xff\xfe{", sa.LargeBinary()), sa.Text())),
    ),
    "postgres_last_access_at_nan": (
        ("postgres",),
        False,
        lambda b, s, k: _sql_set(b, s, k, last_access_at=float("nan")),
    ),
    "postgres_expires_at_infinity": (
        ("postgres",),
        False,
        lambda b, s, k: _sql_set(b, s, k, expires_at=float("inf")),
    ),
    "sql_meta_created_at_text": (
        SQL,
        False,
        lambda b, s, k: _sql_json(b, s, k, "meta", {"created_at": "yesterday"}),
    ),
    "sql_tombstone_grace_until_text": (
        SQL,
        True,
        lambda b, s, k: _sql_json(b, s, k, "tomb", {"grace_until": "soon"}),
    ),
    "sql_tombstone_sealed_successor_number": (
        SQL,
        True,
        lambda b, s, k: _sql_json(b, s, k, "tomb", {"sealed_successor": 5}),
    ),
    # The columns the store queries on must say what the JSON says: a row found by another
    # handle, listed and ended under another user, or purged on another schedule is corrupt.
    "sql_user_id_disagrees_with_meta": (SQL, False, lambda b, s, k: _sql_set(b, s, k, user_id="mallory")),
    "sql_handle_not_of_key": (SQL, False, lambda b, s, k: _sql_set(b, s, k, handle="0123456789abcdef")),
    "sql_tombstone_filed_under_a_user": (SQL, True, lambda b, s, k: _sql_set(b, s, k, user_id="alice")),
    "sql_tombstone_handle_not_of_key": (SQL, True, lambda b, s, k: _sql_set(b, s, k, handle="0123456789abcdef")),
    "sql_tombstone_expires_at_disagrees": (SQL, True, lambda b, s, k: _sql_set(b, s, k, expires_at=NOW + 60)),
    "sql_tombstone_kept_until_disagrees": (SQL, True, lambda b, s, k: _sql_set(b, s, k, kept_until=NOW + 7200)),
    "redis_expiry_text": (REDIS, False, lambda b, s, k: _redis_set(b, s, k, e=b"soon")),
    "redis_expiry_nan": (REDIS, False, lambda b, s, k: _redis_set(b, s, k, e=b"nan")),
    "redis_version_text": (REDIS, False, lambda b, s, k: _redis_set(b, s, k, v=b"abc")),
    "redis_version_past_any_count": (REDIS, False, lambda b, s, k: _redis_set(b, s, k, v=b"9223372036854775807")),
    "redis_retention_infinite": (REDIS, False, lambda b, s, k: _redis_set(b, s, k, r=b"inf")),
    "redis_meta_created_at_text": (REDIS, False, lambda b, s, k: _redis_packed(b, s, k, 0, "yesterday")),
    "redis_meta_created_at_nan": (REDIS, False, lambda b, s, k: _redis_packed(b, s, k, 0, float("nan"))),
    "redis_meta_user_number": (REDIS, False, lambda b, s, k: _redis_packed(b, s, k, 4, 5)),
    "redis_meta_a_field_short": (REDIS, False, lambda b, s, k: _redis_packed(b, s, k, slice(10, None), [])),
    # The metadata spans fields m, m1, m2...: one missing, or one after a gap, is corrupt.
    "redis_meta_middle_field_missing": (REDIS, False, lambda b, s, k: _redis_hash_fields(b, s, k, m1=None)),
    "redis_meta_stray_field_after_a_gap": (REDIS, False, lambda b, s, k: _redis_hash_fields(b, s, k, m9=b"\x00")),
    "redis_meta_unknown_format": (REDIS, False, lambda b, s, k: _redis_hash_fields(b, s, k, m=b"\x07\x90")),
    "redis_json_meta_created_at_text": (
        REDIS,
        False,
        lambda b, s, k: _redis_as_json(b, s, k, {"created_at": "yesterday"}),
    ),
    # A compact tombstone: successor, reason, user, ended_at, expires_at, grace_until.
    "redis_tombstone_grace_until_text": (REDIS, True, lambda b, s, k: _redis_packed(b, s, k, 5, "soon", b"t")),
    "redis_tombstone_reason_number": (REDIS, True, lambda b, s, k: _redis_packed(b, s, k, 1, 5, b"t")),
    "redis_tombstone_reason_unknown": (REDIS, True, lambda b, s, k: _redis_packed(b, s, k, 1, "bored", b"t")),
    "redis_tombstone_ended_at_nan": (REDIS, True, lambda b, s, k: _redis_packed(b, s, k, 3, float("nan"), b"t")),
    "redis_tombstone_successor_number": (REDIS, True, lambda b, s, k: _redis_packed(b, s, k, 0, 5, b"t")),
    "redis_tombstone_a_field_short": (REDIS, True, lambda b, s, k: _redis_packed(b, s, k, slice(5, None), [], b"t")),
    "redis_tombstone_middle_field_missing": (REDIS, True, lambda b, s, k: _redis_hash_fields(b, s, k, t1=None)),
    "redis_tombstone_stray_field_after_a_gap": (REDIS, True, lambda b, s, k: _redis_hash_fields(b, s, k, t7=b"\x00")),
    "redis_json_tombstone_with_a_field_t1": (REDIS, True, lambda b, s, k: _redis_json_tomb_and(b, s, k, t1=b"\x00")),
    "redis_json_tombstone_grace_until_text": (
        REDIS,
        True,
        lambda b, s, k: _redis_tomb_as_json(b, s, k, {"grace_until": "soon"}),
    ),
    "redis_json_tombstone_sealed_successor_number": (
        REDIS,
        True,
        lambda b, s, k: _redis_tomb_as_json(b, s, k, {"sealed_successor": 5}),
    ),
    "redis_json_tombstone_reason_number": (
        REDIS,
        True,
        lambda b, s, k: _redis_tomb_as_json(b, s, k, {"reason": 5}),
    ),
    # The user tag that "end all of a user's sessions" and the login limit go by.
    "redis_user_tag_of_another_user": (REDIS, False, lambda b, s, k: _redis_set(b, s, k, u=b"mallory")),
    "redis_garbage_tombstone_beside_the_data": (
        REDIS,
        False,
        lambda b, s, k: _redis_set(b, s, k, t=b"{not json"),
    ),
    "file_meta_created_at_text": (
        ("file",),
        False,
        lambda b, s, k: _file_json(b, s, k, ("meta", "created_at"), "yesterday"),
    ),
    "file_version_text": (("file",), False, lambda b, s, k: _file_json(b, s, k, ("version",), "abc")),
    "file_expiry_text": (("file",), False, lambda b, s, k: _file_json(b, s, k, ("expires_at",), "soon")),
    "file_tombstone_grace_until_text": (
        ("file",),
        True,
        lambda b, s, k: _file_json(b, s, k, ("tomb", "grace_until"), "soon"),
    ),
}


async def _prepare(store: SessionStore, *, tombstone: bool) -> str:
    """Store alice's session (live, or ended by a renewal with a grace) and return its key."""
    record = make_record(user="alice", data={"note": CANARY})
    await store.establish(record)
    if tombstone:
        successor = new_key()
        renewed = Tombstone(
            key=record.key,
            reason=EndReason.RENEWED,
            user="alice",
            ended_at=NOW,
            expires_at=NOW + 3600,
            successor_key=successor,
            sealed_successor=seal_successor("old-id-" + "x" * 40, "new-id-" + "y" * 40),
            grace_until=NOW + 30,
        )
        await store.establish(make_record(key=successor, user="alice"), retire=renewed)
    return record.key


def _pairs(cases: list[str], *, sync: bool = True) -> list[Any]:
    """Each case with each backend it is about (async and, if ``sync``, the generated sync store)."""
    pairs = []
    for case in cases:
        for backend in BACKENDS:
            name = str(backend.values[0])
            if name.removeprefix("sync:") in CASES[case][0] and (sync or not name.startswith("sync:")):
                pairs.append(pytest.param(case, name, id=f"{backend.id}-{case}", marks=backend.marks))
    return pairs


@pytest.mark.parametrize(("case", "backend"), _pairs(sorted(CASES)), indirect=["backend"])
async def test_a_corrupt_field_loads_as_store_error_and_discard_removes_it(
    case: str, backend: Backend, store: SessionStore
) -> None:
    _, tombstone, corrupt = CASES[case]
    key = await _prepare(store, tombstone=tombstone)
    await corrupt(backend, store, key)

    with pytest.raises(StoreError) as caught:
        await store.load(key, NOW + 1)
    assert not isinstance(caught.value, StoreUnavailableError)

    await store.discard(make_tombstone(key, EndReason.REVOKED, now=NOW + 1))

    assert (await ended(store, key, NOW + 1)).reason is EndReason.REVOKED
    assert all(record.key != key for record in await store.list_user("alice", NOW + 1))
    if not tombstone:
        assert CANARY.encode() not in await backend.dump()


async def test_discard_leaves_a_sound_tombstone_alone_only_when_it_is_sound(store: SessionStore) -> None:
    # discard is for what did not decode; on a sound tombstone it must not lose the first reason.
    record = make_record(user="alice")
    await store.establish(record)
    await store.end(make_tombstone(record.key, EndReason.LOGGED_OUT))

    await store.discard(make_tombstone(record.key, EndReason.REVOKED))

    assert (await ended(store, record.key)).reason in (EndReason.LOGGED_OUT, EndReason.REVOKED)


# -- through the middleware: the answer a client with that cookie gets -----------------------


@pytest.mark.parametrize(
    ("case", "backend"),
    _pairs(
        ["sqlite_last_access_at_text", "sqlite_kept_until_text", "sqlite_version_text", "sqlite_meta_invalid_utf8"],
        sync=False,
    ),
    indirect=["backend"],
)
async def test_a_request_with_a_corrupt_sqlite_row_is_answered_not_a_500(
    case: str, backend: Backend, store: SessionStore
) -> None:
    await _through_the_middleware(case, backend, store)


@pytest.mark.parametrize(
    ("case", "backend"),
    _pairs(
        ["redis_tombstone_grace_until_text", "redis_garbage_tombstone_beside_the_data", "redis_version_text"],
        sync=False,
    ),
    indirect=["backend"],
)
async def test_a_request_with_a_corrupt_redis_hash_is_answered_not_a_500(
    case: str, backend: Backend, store: SessionStore
) -> None:
    await _through_the_middleware(case, backend, store)


async def _through_the_middleware(case: str, backend: Backend, store: SessionStore) -> None:
    _, tombstone, corrupt = CASES[case]
    clock = ManualClock(NOW)
    app, _ = make_app(store, clock=clock)
    async with client_for(app) as client:
        response = await client.post("/login")
        raw_id = set_cookie_value(response)
        assert raw_id
        await client.post("/set", params={"note": CANARY})
        key = storage_key(raw_id)
        if tombstone:
            await store.end(
                Tombstone(
                    key=key,
                    reason=EndReason.RENEWED,
                    user="alice",
                    ended_at=NOW,
                    expires_at=NOW + 3600,
                    successor_key=new_key(),
                    grace_until=NOW + 30,
                )
            )
        await corrupt(backend, store, key)

        response = await client.get("/whoami")

        assert response.status_code in (200, 401), response.text
        assert set_cookie_value(response) == ""  # the cookie is cleared
        entry = await store.load(key, NOW)
        assert isinstance(entry, Tombstone)  # removed: the next request reads a sound tombstone
        assert not isinstance(entry, SessionRecord)
    assert CANARY.encode() not in await backend.dump()
