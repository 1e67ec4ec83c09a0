"""The SQL store answers at its timeout, not after its driver has finished tidying up (F19).

Found by the fault campaign: when a call overran its timeout, SQLAlchemy invalidated the
connection and closed it gracefully, shielded from cancellation, and the call waited for
that: on a hanging PostgreSQL, asyncpg's close waits up to 2 s more for the server; on a
locked SQLite file, aiosqlite's thread stays in SQLite's busy wait for up to the busy
timeout. With the default 2 s timeout the demo answered 503 after 4 s.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from faults.targets import through, upstream_of
from faults.tcp_proxy import TcpProxy
from sessionward.core.errors import StoreUnavailableError
from sessionward.stores.sql import SqlStore

TIMEOUT_S = 1.0
SLACK_S = 0.4
"""Scheduling on a busy machine; well below the second or so the driver's cleanup added."""
KEY = "ab" * 32


async def timed_failure(store: SqlStore, *, write: bool) -> float:
    """Seconds until one call fails with StoreUnavailableError (a write: a purge)."""
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        await (store.purge_expired(time.time(), 10) if write else store.load(KEY, time.time()))
    return time.monotonic() - started


@pytest.fixture
async def postgres_behind_proxy(postgres_url: str) -> AsyncIterator[tuple[SqlStore, TcpProxy]]:
    with TcpProxy(*upstream_of(postgres_url)) as proxy:
        prefix = f"sw_fc_{secrets.token_hex(4)}_"
        store = SqlStore.from_url(through(postgres_url, proxy), timeout_s=TIMEOUT_S, table_prefix=prefix)
        await store.setup()
        try:
            yield store, proxy
        finally:
            proxy.pass_traffic()
            await store.drop()
            await store.close()


@pytest.mark.postgres
async def test_a_call_into_a_hanging_postgres_fails_at_its_timeout_not_after_the_graceful_close(
    postgres_behind_proxy: tuple[SqlStore, TcpProxy],
) -> None:
    store, proxy = postgres_behind_proxy
    assert await store.load(KEY, time.time()) is None  # a pooled connection, as under load
    proxy.blackhole()
    assert await timed_failure(store, write=False) < TIMEOUT_S + SLACK_S
    proxy.pass_traffic()
    assert await store.load(KEY, time.time()) is None  # and the store serves again at once


async def test_a_writer_queued_behind_a_locked_sqlite_fails_at_its_own_timeout(tmp_path: Path) -> None:
    database = tmp_path / "sessions.db"
    store = SqlStore.from_url(f"sqlite:///{database}", timeout_s=TIMEOUT_S)
    await store.setup()
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's long write: a backup, a purge
    try:
        first = asyncio.create_task(timed_failure(store, write=True))
        # The second writer comes while the first waits for the lock: it queues behind
        # the first and gets its turn when the first gives up, then waits for the lock
        # itself, past its own deadline.
        await asyncio.sleep(TIMEOUT_S / 10)
        second = await timed_failure(store, write=True)
        assert await first < TIMEOUT_S + SLACK_S
        assert second < TIMEOUT_S + SLACK_S
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    await store.purge_expired(time.time(), 10)  # the lock is gone: writes work again
    await store.close()
