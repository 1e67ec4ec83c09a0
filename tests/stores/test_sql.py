"""What only the SQL stores have: URLs, timeouts against dead and slow servers, indexes.

The shared guarantees are in ``test_contract.py``; here are the failure modes of a
database server (F19) and the dialect details the contract suite cannot see.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import exc

from sessionward.core.errors import ConfigError, StoreError, StoreUnavailableError
from sessionward.stores import open_store
from sessionward.stores._sql_dialects import is_retryable
from sessionward.stores.sql import SqlStore

from .builders import NOW, make_record, make_update


@pytest.fixture
async def black_hole() -> AsyncIterator[int]:
    """A port on 127.0.0.1 that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


# -- URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["not a url", "oracle://scott@db/orcl", "mssql+pyodbc://u@h/db", "postgresql://u@h:notaport/db"]
)
def test_bad_database_url_is_refused_naming_the_setting(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        SqlStore.from_url(url, setting="SESSIONWARD_STORE")
    assert caught.value.setting == "SESSIONWARD_STORE"


@pytest.mark.parametrize(
    ("url", "dialect"),
    [
        ("sqlite:///{tmp}/s.db", "sqlite"),
        ("postgresql://u@127.0.0.1/db", "postgresql"),
        ("postgres://u@127.0.0.1/db", "postgresql"),
        ("mysql://u:pw@127.0.0.1/db", "mysql"),
        ("mariadb://u@127.0.0.1/db", "mysql"),
    ],
)
async def test_store_urls_pick_the_async_driver(url: str, dialect: str, tmp_path: Path) -> None:
    store = open_store(url.format(tmp=tmp_path))
    try:
        assert isinstance(store, SqlStore)
        assert store.dialect == dialect
        assert store.engine.dialect.is_async
    finally:
        await store.close()


# -- fail closed (F19) -----------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgresql://postgres", "mysql://root"])
async def test_unreachable_server_is_unavailable_within_the_timeout(scheme: str) -> None:
    store = SqlStore.from_url(f"{scheme}@127.0.0.1:1/sessions", timeout_s=1.0)
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailableError):
            await store.load("0" * 64, NOW)
    finally:
        await store.close()
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("scheme", ["postgresql://postgres", "mysql://root"])
async def test_silent_server_is_unavailable_within_the_timeout_not_hung(scheme: str, black_hole: int) -> None:
    store = SqlStore.from_url(f"{scheme}@127.0.0.1:{black_hole}/sessions", timeout_s=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailableError):
            await store.load("0" * 64, NOW)
    finally:
        await store.close()
    assert time.monotonic() - started < 2.5


async def test_store_without_schema_is_unavailable_not_empty(tmp_path: Path) -> None:
    # Before `sessionward store init`, a load must not read as "no such session".
    store = SqlStore.from_url(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        with pytest.raises(StoreUnavailableError, match="no such table"):
            await store.load("0" * 64, NOW)
    finally:
        await store.close()


async def _hold_table_lock(store: SqlStore, url: str, release: asyncio.Event, held: asyncio.Event) -> None:
    """From a separate connection, lock the sessions table until ``release`` is set."""
    other = SqlStore.from_url(url, table_prefix=store.sessions.name.removesuffix("sessions"))
    try:
        async with other.engine.connect() as connection:
            if other.dialect == "postgresql":
                await connection.execute(sa.text(f'LOCK TABLE "{store.sessions.name}" IN ACCESS EXCLUSIVE MODE'))
            else:
                await connection.execute(sa.text(f"LOCK TABLES `{store.sessions.name}` WRITE"))
            held.set()
            await release.wait()
            if other.dialect == "mysql":
                await connection.execute(sa.text("UNLOCK TABLES"))
            await connection.rollback()
    finally:
        await other.close()


@pytest.mark.parametrize(
    "service", [pytest.param("postgres", marks=pytest.mark.postgres), pytest.param("mysql", marks=pytest.mark.mysql)]
)
async def test_slow_server_is_unavailable_after_the_timeout_and_recovers(
    service: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(f"{service}_url")
    store = SqlStore.from_url(url, table_prefix="slow_", timeout_s=0.5)
    await store.setup()
    record = make_record()
    await store.establish(record)
    release, held = asyncio.Event(), asyncio.Event()
    locker = asyncio.create_task(_hold_table_lock(store, url, release, held))
    try:
        await held.wait()
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            await store.save(record.key, make_update(record, set={"a": 1}))
        assert time.monotonic() - started < 2.5
    finally:
        release.set()
        await locker
    try:
        # Service resumes by itself: the timed-out connection was not left half-used.
        assert await store.save(record.key, make_update(record, set={"b": 2}, stale=True)) is True
        loaded = await store.load(record.key, NOW)
        assert loaded is not None
        assert "b" in getattr(loaded, "data", {})
    finally:
        await store.drop()
        await store.close()


@pytest.mark.postgres
async def test_value_the_database_refuses_is_a_store_error_not_an_outage(postgres_url: str) -> None:
    store = SqlStore.from_url(postgres_url, table_prefix="refuse_")
    await store.setup()
    try:
        with pytest.raises(StoreError) as caught:
            await store.establish(make_record(user="u" * 300))  # longer than the user_id column
        assert not isinstance(caught.value, StoreUnavailableError)
    finally:
        await store.drop()
        await store.close()


def _dbapi_error(orig: Any) -> exc.DBAPIError:
    return exc.DBAPIError("UPDATE …", {}, orig)


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("orig", "retry"),
    [
        (_PgError("40P01"), True),  # deadlock_detected
        (_PgError("40001"), True),  # serialization_failure
        (_PgError("23505"), False),  # unique_violation
        (Exception(1213, "Deadlock found when trying to get lock"), True),
        (Exception(1205, "Lock wait timeout exceeded"), False),
        (Exception("server closed the connection"), False),
    ],
)
def test_only_deadlocks_and_serialization_failures_are_retried(orig: Exception, retry: bool) -> None:
    assert is_retryable(_dbapi_error(orig)) is retry


# -- SQLite ----------------------------------------------------------------------------------


async def test_in_memory_sqlite_runs_concurrent_transactions_one_at_a_time() -> None:
    # One shared connection handed to concurrent transactions would interleave them.
    store = SqlStore.from_url("sqlite://")
    await store.setup()
    try:
        record = make_record()
        await store.establish(record)
        results = await asyncio.gather(
            *(store.save(record.key, make_update(record, set={f"k{i}": i})) for i in range(20))
        )
        assert all(results)
        loaded = await store.load(record.key, NOW)
        assert loaded is not None
        assert len(getattr(loaded, "data", {})) == 20
    finally:
        await store.close()


# -- purge cost: the kept_until index ----------------------------------------------------------


async def test_sqlite_purge_batch_is_a_range_scan_of_the_retention_index(tmp_path: Path) -> None:
    store = SqlStore.from_url(f"sqlite:///{tmp_path / 'plan.db'}")
    await store.setup()
    try:
        query = store.expired_keys_query(NOW, 500).compile(store.engine, compile_kwargs={"literal_binds": True})
        async with store.engine.connect() as connection:
            plan = " ".join(str(row[-1]) for row in await connection.execute(sa.text(f"EXPLAIN QUERY PLAN {query}")))
    finally:
        await store.close()
    assert "USING INDEX ix_sessionward_sessions_kept_until (kept_until<?)" in plan.replace("COVERING ", ""), plan
    assert "TEMP B-TREE" not in plan, plan  # ordered by the index itself, no sort of the table


@pytest.mark.postgres
async def test_postgres_purge_batch_can_use_the_retention_index(postgres_url: str) -> None:
    store = SqlStore.from_url(postgres_url, table_prefix="plan_")
    await store.setup()
    try:
        query = store.expired_keys_query(NOW, 500).compile(store.engine, compile_kwargs={"literal_binds": True})
        async with store.engine.connect() as connection:
            # An empty table is cheapest to scan; forbid that to see whether the index serves.
            await connection.execute(sa.text("SET LOCAL enable_seqscan = off"))
            await connection.execute(sa.text("SET LOCAL enable_bitmapscan = off"))
            plan = "\n".join(str(row[0]) for row in await connection.execute(sa.text(f"EXPLAIN {query}")))
            await connection.rollback()
    finally:
        await store.drop()
        await store.close()
    assert "ix_plan_sessions_kept_until" in plan, plan
    assert "Sort" not in plan, plan
