"""A SQL store's request statements on the driver itself (``sessionward.stores._sql_fast``).

On PostgreSQL with asyncpg and on a SQLite file with aiosqlite, the read, the touch and
the version-guarded data write must do exactly what the ordinary path does, and whatever
goes wrong on them must end as the ordinary path would end: a retry on a fresh
connection, a missing schema named, an outage within the timeout, and never a connection
left half-read in the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from msgspec.structs import replace
from sqlalchemy.ext.asyncio import create_async_engine

from faults.targets import through, upstream_of
from faults.tcp_proxy import TcpProxy
from sessionward._sync.stores.sql import SqlStore as SyncSqlStore
from sessionward.core.errors import StoreError, StoreSchemaMissingError, StoreUnavailableError
from sessionward.core.records import Entry, SessionRecord, Tombstone, Update
from sessionward.stores import _sql_fast
from sessionward.stores._sql_dialects import open_sync_engine, tables
from sessionward.stores._sql_fast import (
    SQLITE_CONNECTIONS,
    AsyncpgPath,
    BlockingFastPath,
    FastPathFailed,
    SqlitePath,
)
from sessionward.stores._sql_rows import COLUMNS
from sessionward.stores.sql import SqlStore

from .builders import NOW, make_record, make_tombstone, make_update

DRIVERS = [pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"]


@contextlib.contextmanager
def ordinary(store: SqlStore) -> Iterator[None]:
    """Send through SQLAlchemy for the duration (the path every other driver takes)."""
    fast, store._fast = store._fast, None
    try:
        yield
    finally:
        store._fast = fast


@pytest.fixture(params=DRIVERS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        opened = SqlStore.from_url(url, table_prefix=f"sw_fast_{secrets.token_hex(4)}_")
    else:
        opened = SqlStore.from_url(f"sqlite:///{tmp_path / 'sessions.db'}")
    await opened.setup()
    try:
        yield opened
    finally:
        await opened.drop()
        await opened.close()


async def both_ways(store: SqlStore, key: str, now: float) -> tuple[Entry | None, Entry | None]:
    fast = await store.load(key, now)
    with ordinary(store):
        return fast, await store.load(key, now)


@pytest.mark.postgres
async def test_asyncpg_and_a_sqlite_file_take_the_driver_path(postgres_url: str, tmp_path: Path) -> None:
    assert isinstance(SqlStore.from_url(postgres_url)._fast, AsyncpgPath)
    psycopg = create_async_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        assert SqlStore(psycopg)._fast is None
    finally:
        await psycopg.dispose()
    assert isinstance(SqlStore.from_url(f"sqlite:///{tmp_path / 'x.db'}")._fast, SqlitePath)
    # An in-memory database lives in its one pooled connection: nothing to share it with.
    assert SqlStore.from_url("sqlite://")._fast is None
    assert SqlStore.from_url("sqlite:///:memory:")._fast is None


def same(found: Entry | None, stored: SessionRecord) -> bool:
    """Tell whether a load found ``stored`` (its retention reads back as its kept_until)."""
    return isinstance(found, SessionRecord) and found == replace(stored, retain_until=stored.kept_until)


async def test_the_driver_read_finds_what_the_ordinary_read_finds(store: SqlStore) -> None:
    signed_in = make_record(user="alice", data={"cart": [1, 2.5, "é"], "n": None, "deep": {"a": {"b": True}}})
    anonymous = make_record(data={})
    ended = make_record(user="bob")
    for record in (signed_in, anonymous, ended):
        await store.establish(record)
    await store.end(make_tombstone(ended.key, user="bob"))

    fast, slow = await both_ways(store, signed_in.key, NOW + 1)
    assert isinstance(fast, SessionRecord)
    assert fast == slow
    assert fast.data == signed_in.data
    assert fast.meta == signed_in.meta

    fast, slow = await both_ways(store, anonymous.key, NOW + 1)
    assert same(fast, anonymous)
    assert fast == slow

    fast, slow = await both_ways(store, ended.key, NOW + 1)
    assert isinstance(fast, Tombstone)
    assert fast == slow

    assert await both_ways(store, "0" * 64, NOW) == (None, None)
    # Past its retention a record is not returned, either way.
    assert await both_ways(store, anonymous.key, anonymous.kept_until + 1) == (None, None)


@pytest.mark.postgres
async def test_connections_go_back_to_the_pool_without_a_reset_error(
    postgres_store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    store = postgres_store
    # The pool resets a returned connection with the adapter's rollback, which would need
    # SQLAlchemy's greenlet if the adapter had a transaction open (aiosqlite's always
    # awaits one: that driver's path keeps connections of its own). asyncpg's has none.
    record = make_record(data={"n": 1})
    await store.establish(record)
    with caplog.at_level(logging.DEBUG, logger="sqlalchemy.pool"):
        for n in range(3):
            loaded_now = await store.load(record.key, NOW + 1)
            assert isinstance(loaded_now, SessionRecord)
            assert await store.save(record.key, make_update(loaded_now, set={"n": n}, now=NOW + 2)) is True
            assert await store.save(record.key, make_update(loaded_now, now=NOW + 3)) is True  # a touch
    assert not [entry for entry in caplog.records if entry.levelno >= logging.WARNING], caplog.text


async def test_the_driver_writes_do_what_the_ordinary_writes_do(store: SqlStore) -> None:
    fast_one, slow_one = make_record(user="alice", data={"n": 1}), make_record(user="alice", data={"n": 1})
    for record in (fast_one, slow_one):
        await store.establish(record)

    async def write_both(make: Callable[[SessionRecord], Update]) -> tuple[Entry | None, Entry | None]:
        fast_loaded, slow_loaded = await store.load(fast_one.key, NOW + 1), await store.load(slow_one.key, NOW + 1)
        assert isinstance(fast_loaded, SessionRecord)
        assert isinstance(slow_loaded, SessionRecord)
        assert await store.save(fast_one.key, make(fast_loaded)) is True
        with ordinary(store):
            assert await store.save(slow_one.key, make(slow_loaded)) is True
        return await store.load(fast_one.key, NOW + 9), await store.load(slow_one.key, NOW + 9)

    def unkeyed(entry: Entry | None) -> Entry | None:
        return replace(entry, key="") if isinstance(entry, SessionRecord) else entry

    # A touch of the idle clock: metadata and expiry only.
    fast, slow = await write_both(lambda loaded: make_update(loaded, now=NOW + 5))
    assert isinstance(fast, SessionRecord)
    assert fast.meta.last_access_at == NOW + 5
    assert unkeyed(fast) == unkeyed(slow)

    # A data write that finds its version: one statement, the version moves by one.
    fast, slow = await write_both(lambda loaded: make_update(loaded, set={"n": 2, "cart": [1]}, now=NOW + 6))
    assert isinstance(fast, SessionRecord)
    assert fast.data == {"n": 2, "cart": [1]}
    assert fast.version == 1
    assert unkeyed(fast) == unkeyed(slow)


async def test_a_driver_write_that_lost_its_version_keeps_both_writers_keys(store: SqlStore) -> None:
    record = make_record(data={"a": 0, "b": 0})
    await store.establish(record)
    first = await store.load(record.key, NOW + 1)
    second = await store.load(record.key, NOW + 1)
    assert isinstance(first, SessionRecord)
    assert isinstance(second, SessionRecord)

    assert await store.save(record.key, make_update(first, set={"a": 1}, now=NOW + 2)) is True
    assert await store.save(record.key, make_update(second, set={"b": 2}, now=NOW + 3)) is True  # lost its version

    after = await store.load(record.key, NOW + 4)
    assert isinstance(after, SessionRecord)
    assert after.data == {"a": 1, "b": 2}
    assert after.version == 2


async def test_a_driver_write_to_an_ended_session_brings_nothing_back(store: SqlStore) -> None:
    record = make_record(user="alice", data={"n": 1})
    await store.establish(record)
    loaded_before = await store.load(record.key, NOW + 1)
    assert isinstance(loaded_before, SessionRecord)
    await store.end(make_tombstone(record.key, user="alice", now=NOW + 2))  # a logout in between

    assert await store.save(record.key, make_update(loaded_before, now=NOW + 3)) is False
    assert await store.save(record.key, make_update(loaded_before, set={"n": 2}, now=NOW + 3)) is False
    assert isinstance(await store.load(record.key, NOW + 4), Tombstone)


async def test_a_corrupt_row_read_on_the_driver_is_corrupt_as_on_the_ordinary_path(store: SqlStore) -> None:
    record = make_record(user="alice")
    await store.establish(record)
    async with store.engine.begin() as connection:
        await connection.execute(
            sa.update(store.sessions).where(store.sessions.c.key == record.key).values(user_id="mallory")
        )

    with pytest.raises(StoreError, match="another user"):
        await store.load(record.key, NOW + 1)
    with ordinary(store), pytest.raises(StoreError, match="another user"):
        await store.load(record.key, NOW + 1)


@pytest.mark.parametrize("driver", DRIVERS)
async def test_a_missing_schema_on_the_driver_path_is_named_and_created_on_request(
    driver: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    prefix = f"sw_fast_{secrets.token_hex(4)}_"
    if driver == "postgres":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'sessions.db'}"
        sqlite3.connect(tmp_path / "sessions.db").close()  # the file, without the schema
    bare = SqlStore.from_url(url, table_prefix=prefix)
    try:
        with pytest.raises(StoreSchemaMissingError):
            await bare.load("0" * 64, NOW)
    finally:
        await bare.close()

    creating = SqlStore.from_url(url, table_prefix=prefix, create_schema=True)
    try:
        assert await creating.load("0" * 64, NOW) is None
        record = make_record()
        await creating.establish(record)
        assert same(await creating.load(record.key, NOW + 1), record)
    finally:
        await creating.drop()
        await creating.close()


@pytest.fixture
async def postgres_store(postgres_url: str) -> AsyncIterator[SqlStore]:
    opened = SqlStore.from_url(postgres_url, table_prefix=f"sw_fast_{secrets.token_hex(4)}_")
    await opened.setup()
    try:
        yield opened
    finally:
        await opened.drop()
        await opened.close()


@pytest.fixture
async def proxied(postgres_url: str) -> AsyncIterator[tuple[SqlStore, TcpProxy]]:
    with TcpProxy(*upstream_of(postgres_url)) as proxy:
        opened = SqlStore.from_url(
            through(postgres_url, proxy), table_prefix=f"sw_fast_{secrets.token_hex(4)}_", timeout_s=0.5
        )
        await opened.setup()
        try:
            yield opened, proxy
        finally:
            proxy.pass_traffic()
            await opened.drop()
            await opened.close()


@pytest.mark.postgres
async def test_a_read_cut_at_its_deadline_leaves_no_half_read_connection_in_the_pool(
    proxied: tuple[SqlStore, TcpProxy],
) -> None:
    store, proxy = proxied
    alice, bob = make_record(user="alice", data={"who": "alice"}), make_record(user="bob", data={"who": "bob"})
    await store.establish(alice)
    await store.establish(bob)
    assert same(await store.load(alice.key, NOW + 1), alice)  # a pooled connection, its statement prepared

    proxy.blackhole()  # alice's next read goes out and its answer is held
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match=r"did not answer within 0\.5 s"):
        await store.load(alice.key, NOW + 1)
    assert time.monotonic() - started < 1.5
    proxy.pass_traffic()  # the held answer to alice's read now arrives, late

    # Whatever connection each read now gets, it never carries that late answer.
    for _ in range(5):
        assert same(await store.load(bob.key, NOW + 1), bob)
        assert same(await store.load(alice.key, NOW + 1), alice)
    assert store.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


@pytest.mark.postgres
async def test_a_read_while_the_server_is_down_is_unavailable_and_service_resumes(
    proxied: tuple[SqlStore, TcpProxy],
) -> None:
    store, proxy = proxied
    record = make_record(data={"n": 1})
    await store.establish(record)
    assert same(await store.load(record.key, NOW + 1), record)

    proxy.reset()
    proxy.refuse()
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        await store.load(record.key, NOW + 1)
    assert time.monotonic() - started < 1.5

    proxy.pass_traffic()
    assert same(await store.load(record.key, NOW + 1), record)


def test_a_driver_row_has_every_column_of_the_table() -> None:
    _, sessions, _ = tables("sw_")
    assert tuple(column.name for column in sessions.columns) == COLUMNS


# -- SQLite: connections of the path's own -------------------------------------------------


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    opened = SqlStore.from_url(f"sqlite:///{tmp_path / 'sessions.db'}", timeout_s=0.5)
    await opened.setup()
    try:
        yield opened
    finally:
        await opened.close()


def sqlite_path(store: SqlStore) -> SqlitePath:
    assert isinstance(store._fast, SqlitePath)
    return store._fast


async def test_the_sqlite_driver_path_never_creates_the_database_file(tmp_path: Path) -> None:
    missing = tmp_path / "never-set-up.db"
    store = SqlStore.from_url(f"sqlite:///{missing}")
    try:
        threads = threading.active_count()
        with pytest.raises(FastPathFailed) as failed:
            await sqlite_path(store).row("0" * 64, 1.0)
        assert isinstance(failed.value.__cause__, sqlite3.OperationalError)
        assert not missing.exists()
        # The failed connection's thread is gone: it cannot call back into a closed loop.
        assert threading.active_count() == threads
    finally:
        await store.close()


async def test_sqlite_driver_writes_queue_on_the_stores_write_gate(sqlite_store: SqlStore) -> None:
    store = sqlite_store
    record = make_record(data={"n": 1})
    await store.establish(record)
    loaded_now = await store.load(record.key, NOW + 1)
    assert isinstance(loaded_now, SessionRecord)

    gate = store._write_gate
    assert gate is not None
    async with gate:  # a transaction of this process holds the gate
        write = asyncio.create_task(store.save(record.key, make_update(loaded_now, set={"n": 2}, now=NOW + 2)))
        for _ in range(100):  # until it is parked on the gate (a few loop turns)
            if gate._waiters:
                break
            await asyncio.sleep(0)
        assert gate._waiters is not None
        assert len(gate._waiters) == 1
        assert not write.done()
        still = await store.load(record.key, NOW + 2)
        assert isinstance(still, SessionRecord)
        assert still.data == {"n": 1}
    assert await write is True
    after = await store.load(record.key, NOW + 3)
    assert isinstance(after, SessionRecord)
    assert after.data == {"n": 2}


async def test_a_sqlite_write_lock_held_by_another_process_is_unavailable_in_time_and_service_resumes(
    sqlite_store: SqlStore, tmp_path: Path
) -> None:
    store = sqlite_store
    record = make_record(data={"n": 1})
    await store.establish(record)
    loaded_now = await store.load(record.key, NOW + 1)
    assert isinstance(loaded_now, SessionRecord)

    other = sqlite3.connect(tmp_path / "sessions.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock (a backup, a purge)
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            await store.save(record.key, make_update(loaded_now, set={"n": 2}, now=NOW + 2))
        assert time.monotonic() - started < 1.5
        # Reads go on in WAL mode while the lock is held.
        assert same(await store.load(record.key, NOW + 2), record)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert await store.save(record.key, make_update(loaded_now, set={"n": 3}, now=NOW + 3)) is True
    after = await store.load(record.key, NOW + 4)
    assert isinstance(after, SessionRecord)
    assert after.data == {"n": 3}


async def test_sqlite_driver_connections_are_bounded_shared_and_closed_with_the_store(tmp_path: Path) -> None:
    store = SqlStore.from_url(f"sqlite:///{tmp_path / 'sessions.db'}")
    await store.setup()
    records = [make_record(data={"i": i}) for i in range(8)]
    for record in records:
        await store.establish(record)
    path = sqlite_path(store)
    try:
        found = await asyncio.gather(*(store.load(records[i % 8].key, NOW + 1) for i in range(200)))
        for i, entry in enumerate(found):
            assert isinstance(entry, SessionRecord)
            assert entry.data == {"i": i % 8}
        assert 1 <= path._opened <= SQLITE_CONNECTIONS
        assert len(path._idle) == path._opened  # every one came back
        threads = [connection._thread for connection in path._idle]
    finally:
        await store.close()
    for thread in threads:
        thread.join(timeout=5)
        assert not thread.is_alive()
    assert path._opened == 0


# -- the blocking store (WSGI): sqlite3 and psycopg, borrowed from its pool ----------------


@pytest.fixture(params=DRIVERS)
def blocking_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SyncSqlStore]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        opened = SyncSqlStore.from_url(url, table_prefix=f"sw_fast_{secrets.token_hex(4)}_", timeout_s=1.0)
    else:
        opened = SyncSqlStore.from_url(f"sqlite:///{tmp_path / 'sessions.db'}", timeout_s=0.5)
    opened.setup()
    try:
        yield opened
    finally:
        opened.drop()
        opened.close()


@contextlib.contextmanager
def blocking_ordinary(store: SyncSqlStore) -> Iterator[None]:
    fast, store._fast = store._fast, None
    try:
        yield
    finally:
        store._fast = fast


@pytest.mark.postgres
def test_the_blocking_store_takes_the_driver_path_on_sqlite3_and_psycopg(postgres_url: str, tmp_path: Path) -> None:
    assert isinstance(SyncSqlStore.from_url(postgres_url)._fast, BlockingFastPath)
    assert isinstance(SyncSqlStore.from_url(f"sqlite:///{tmp_path / 'x.db'}")._fast, BlockingFastPath)
    # An in-memory database lives in its one pooled connection, which an error must never drop.
    assert SyncSqlStore.from_url("sqlite://")._fast is None


def test_the_blocking_driver_path_reads_and_writes_as_the_ordinary_path(blocking_store: SyncSqlStore) -> None:
    store = blocking_store
    fast_one = make_record(user="alice", data={"n": 1, "cart": [1, 2.5, "é"]})
    slow_one = make_record(user="alice", data={"n": 1, "cart": [1, 2.5, "é"]})
    ended = make_record(user="bob")
    for record in (fast_one, slow_one, ended):
        store.establish(record)
    store.end(make_tombstone(ended.key, user="bob"))

    fast = store.load(fast_one.key, NOW + 1)
    with blocking_ordinary(store):
        slow = store.load(fast_one.key, NOW + 1)
        ended_slow = store.load(ended.key, NOW + 1)
    assert isinstance(fast, SessionRecord)
    assert fast == slow
    assert isinstance(store.load(ended.key, NOW + 1), Tombstone)
    assert store.load(ended.key, NOW + 1) == ended_slow
    assert store.load("0" * 64, NOW) is None

    def write_both(make: Callable[[SessionRecord], Update]) -> tuple[Entry | None, Entry | None]:
        fast_loaded, slow_loaded = store.load(fast_one.key, NOW + 1), store.load(slow_one.key, NOW + 1)
        assert isinstance(fast_loaded, SessionRecord)
        assert isinstance(slow_loaded, SessionRecord)
        assert store.save(fast_one.key, make(fast_loaded)) is True
        with blocking_ordinary(store):
            assert store.save(slow_one.key, make(slow_loaded)) is True
        return store.load(fast_one.key, NOW + 9), store.load(slow_one.key, NOW + 9)

    def unkeyed(entry: Entry | None) -> Entry | None:
        return replace(entry, key="") if isinstance(entry, SessionRecord) else entry

    touched, touched_slow = write_both(lambda loaded: make_update(loaded, now=NOW + 5))
    assert isinstance(touched, SessionRecord)
    assert touched.meta.last_access_at == NOW + 5
    assert unkeyed(touched) == unkeyed(touched_slow)
    written, written_slow = write_both(lambda loaded: make_update(loaded, set={"n": 2}, now=NOW + 6))
    assert isinstance(written, SessionRecord)
    assert written.data == {"n": 2, "cart": [1, 2.5, "é"]}
    assert written.version == 1
    assert unkeyed(written) == unkeyed(written_slow)

    # A write that lost its version keeps both writers' keys; one to an ended session brings nothing back.
    first, second = store.load(fast_one.key, NOW + 7), store.load(fast_one.key, NOW + 7)
    assert isinstance(first, SessionRecord)
    assert isinstance(second, SessionRecord)
    assert store.save(fast_one.key, make_update(first, set={"a": 1}, now=NOW + 8)) is True
    assert store.save(fast_one.key, make_update(second, set={"b": 2}, now=NOW + 8)) is True
    both = store.load(fast_one.key, NOW + 9)
    assert isinstance(both, SessionRecord)
    assert (both.data["a"], both.data["b"], both.version) == (1, 2, 3)
    store.end(make_tombstone(fast_one.key, user="alice", now=NOW + 10))
    assert store.save(fast_one.key, make_update(both, set={"n": 3}, now=NOW + 11)) is False
    assert isinstance(store.load(fast_one.key, NOW + 12), Tombstone)

    assert store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert store._reader.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_a_sqlite_write_lock_held_elsewhere_fails_the_blocking_store_once_not_twice(tmp_path: Path) -> None:
    store = SyncSqlStore.from_url(f"sqlite:///{tmp_path / 'sessions.db'}", timeout_s=0.5)
    store.setup()
    try:
        record = make_record(data={"n": 1})
        store.establish(record)
        loaded_now = store.load(record.key, NOW + 1)
        assert isinstance(loaded_now, SessionRecord)
        other = sqlite3.connect(tmp_path / "sessions.db", isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError, match="locked"):
                store.save(record.key, make_update(loaded_now, set={"n": 2}, now=NOW + 2))
            # One busy wait of 0.5 s, not a second one on the ordinary path.
            assert time.monotonic() - started < 0.95
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert store.save(record.key, make_update(loaded_now, set={"n": 3}, now=NOW + 3)) is True
    finally:
        store.close()


@pytest.mark.postgres
def test_a_postgres_row_lock_held_elsewhere_fails_the_blocking_store_at_its_statement_timeout(
    postgres_url: str,
) -> None:
    store = SyncSqlStore.from_url(postgres_url, table_prefix=f"sw_fast_{secrets.token_hex(4)}_", timeout_s=1.0)
    store.setup()
    try:
        record = make_record(data={"n": 1})
        store.establish(record)
        loaded_now = store.load(record.key, NOW + 1)
        assert isinstance(loaded_now, SessionRecord)
        with store.engine.connect() as holder:
            holder.execute(sa.select(store.sessions).where(store.sessions.c.key == record.key).with_for_update())
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError):
                store.save(record.key, make_update(loaded_now, set={"n": 2}, now=NOW + 2))
            assert time.monotonic() - started < 1.9  # one statement timeout, not two
            holder.rollback()
        assert store.save(record.key, make_update(loaded_now, set={"n": 3}, now=NOW + 3)) is True
        with store.engine.connect() as connection:  # every pooled connection is back out of autocommit
            assert connection.connection.driver_connection.autocommit is False  # type: ignore[union-attr]
    finally:
        store.drop()
        store.close()


async def parked(path: SqlitePath, count: int) -> None:
    """Return once ``count`` statements wait for a connection (a few loop turns)."""
    for _ in range(200):
        if sum(not waiter.done() for waiter in path._waiting) >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{count} waiters never parked")


async def test_a_waiter_cancelled_as_it_is_woken_passes_the_connection_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sql_fast, "SQLITE_CONNECTIONS", 1)
    store = SqlStore.from_url(f"sqlite:///{tmp_path / 'sessions.db'}", timeout_s=1.0)
    await store.setup()
    record = make_record(data={"n": 1})
    await store.establish(record)
    path = sqlite_path(store)
    try:
        held = await path._borrow()  # a statement holds the only connection
        first = asyncio.create_task(store.load(record.key, NOW + 1))
        await parked(path, 1)
        second = asyncio.create_task(store.load(record.key, NOW + 1))
        await parked(path, 2)
        first.cancel()  # its client went away in the same loop turn as the connection came back
        path._return(held)
        with pytest.raises(asyncio.CancelledError):
            await first
        assert same(await second, record)  # not a 503 after a second's wait beside an idle connection
    finally:
        await store.close()


async def test_first_reads_racing_on_a_missing_database_all_get_the_schema_answer(tmp_path: Path) -> None:
    store = SqlStore.from_url(f"sqlite:///{tmp_path / 'sessions.db'}", timeout_s=1.0)
    try:
        found = await asyncio.gather(*(store.load("0" * 64, NOW) for _ in range(8)), return_exceptions=True)
        # Each failed connect frees its slot for a waiter, which fails over too: no 503.
        assert all(isinstance(answer, StoreSchemaMissingError) for answer in found), found
    finally:
        await store.close()


async def test_close_waits_for_a_statement_in_flight_and_stops_its_connection(tmp_path: Path) -> None:
    store = SqlStore.from_url(f"sqlite:///{tmp_path / 'sessions.db'}", timeout_s=2.0)
    await store.setup()
    path = sqlite_path(store)
    lent = await path._borrow()  # a request's statement is in flight
    closing = asyncio.create_task(store.close())
    for _ in range(20):
        await asyncio.sleep(0)
    assert not closing.done()
    path._return(lent)  # the statement ends
    await closing
    lent._thread.join(timeout=5)
    assert not lent._thread.is_alive()
    assert path._idle == []
    assert path._opened == 0


async def test_a_write_cut_at_its_deadline_is_stopped_before_close_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread_errors: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda failed: thread_errors.append(failed.exc_value))
    store = SqlStore.from_url(f"sqlite:///{tmp_path / 'sessions.db'}", timeout_s=0.3)
    await store.setup()
    record = make_record(data={"n": 1})
    await store.establish(record)
    loaded_now = await store.load(record.key, NOW + 1)
    assert isinstance(loaded_now, SessionRecord)
    path = sqlite_path(store)
    (connection,) = path._idle
    other = sqlite3.connect(tmp_path / "sessions.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(StoreUnavailableError):
            await store.save(record.key, make_update(loaded_now, set={"n": 2}, now=NOW + 2))
        # The cut statement may still wait in SQLite's busy handler, in its thread: close
        # waits for it, so no thread is left to call back into a closed event loop.
        await store.close()
    finally:
        other.execute("ROLLBACK")
        other.close()
    connection._thread.join(timeout=5)
    assert not connection._thread.is_alive()
    assert path._opened == 0
    assert thread_errors == []


def test_a_sqlite_uri_filename_keeps_the_ordinary_path(tmp_path: Path) -> None:
    assert SqlStore.from_url(f"sqlite:///file:{tmp_path / 'x.db'}?uri=true")._fast is None


def write_raw_text(store: SyncSqlStore, key: str, raw: bytes) -> None:
    """Put bytes that are not UTF-8 into a SQLite row's data column (a corrupt row)."""
    with store.engine.begin() as connection:
        connection.exec_driver_sql(
            f"UPDATE {store.sessions.name} SET data = CAST(X'{raw.hex()}' AS TEXT) WHERE key = ?", (key,)
        )


def test_a_corrupt_row_in_an_in_memory_database_leaves_the_other_sessions_alone() -> None:
    store = SyncSqlStore.from_url("sqlite://")
    store.setup()
    try:
        good, bad = make_record(data={"n": 1}), make_record(data={"n": 1})
        store.establish(good)
        store.establish(bad)
        write_raw_text(store, bad.key, b'{"n":\xff}')
        with pytest.raises(StoreError, match="corrupt"):
            store.load(bad.key, NOW + 1)
        assert same(store.load(good.key, NOW + 1), good)  # the database lives on in its one connection
    finally:
        store.close()


def test_a_corrupt_row_whose_text_says_busy_is_corrupt_not_an_outage(tmp_path: Path) -> None:
    store = SyncSqlStore.from_url(f"sqlite:///{tmp_path / 'sessions.db'}")
    store.setup()
    try:
        record = make_record(data={"status": "x"})
        store.establish(record)
        write_raw_text(store, record.key, b'{"status":"busy, locked\xff"}')  # sqlite3 quotes it in its error
        with pytest.raises(StoreError, match="corrupt"):
            store.load(record.key, NOW + 1)
    finally:
        store.close()


def test_an_exhausted_pool_is_waited_for_once_by_the_blocking_store(tmp_path: Path) -> None:
    store = SyncSqlStore.from_url(f"sqlite:///{tmp_path / 'sessions.db'}?pool_size=1&max_overflow=0", timeout_s=0.5)
    store.setup()
    held = store.engine.connect()  # another thread holds the pool's only connection
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            store.load("0" * 64, NOW)
        assert time.monotonic() - started < 0.9  # one wait of 0.5 s, not a second one
    finally:
        held.close()
        store.close()


@pytest.mark.postgres
def test_a_reader_in_autocommit_stays_in_autocommit_and_its_writes_are_kept(postgres_url: str) -> None:
    url = postgres_url + ("&" if "?" in postgres_url else "?") + "pool_size=1&max_overflow=0"
    engine = open_sync_engine(url, setting="S", timeout_s=2.0)
    reader = open_sync_engine(url, setting="S", timeout_s=2.0, autocommit=True)
    store = SyncSqlStore(engine, reader=reader, table_prefix=f"sw_fast_{secrets.token_hex(4)}_")
    store.setup()
    try:
        record = make_record()
        store.establish(record)
        loaded_now = store.load(record.key, NOW + 1)  # the driver path, on the reader's only connection
        assert isinstance(loaded_now, SessionRecord)
        with blocking_ordinary(store):  # as after any FastPathFailed: a single statement, no COMMIT
            assert store.save(record.key, make_update(loaded_now, now=NOW + 500)) is True
        after = store.load(record.key, NOW + 501)
        assert isinstance(after, SessionRecord)
        assert after.meta.last_access_at == NOW + 500
    finally:
        store.drop()
        store.close()


class Interrupted(BaseException):
    """What a watchdog or a green-thread timeout raises in the middle of a statement."""


@pytest.mark.postgres
def test_an_interruption_mid_statement_goes_through_and_the_statement_is_not_sent_again(
    postgres_url: str,
) -> None:
    store = SyncSqlStore.from_url(postgres_url, table_prefix=f"sw_fast_{secrets.token_hex(4)}_", timeout_s=3.0)
    store.setup()

    def interrupt(*_: object) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        record = make_record()
        store.establish(record)
        fast = store._fast
        assert isinstance(fast, BlockingFastPath)
        fast.load.sql = "SELECT pg_sleep(0.5), " + fast.load.sql.removeprefix("SELECT ")
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(Interrupted):
            store.load(record.key, NOW + 1)
        signal.setitimer(signal.ITIMER_REAL, 0)
        assert store._reader.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        store.drop()
        store.close()
