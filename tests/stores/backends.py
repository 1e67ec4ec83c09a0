"""Store backends for the conformance suite: how to open, dump and corrupt each one.

A :class:`Backend` opens store instances that share one namespace (several instances
make racing writers a real race: separate connections, separate file descriptors),
dumps the backend's raw contents (to prove no raw session ID is stored) and writes
garbage over an entry (to prove corruption is reported, not swallowed).

Each test gets a clean namespace: a fresh file or directory, fresh tables with a random
prefix on PostgreSQL and MariaDB (dropped afterwards), a flushed private Redis.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from sessionward._sync.stores import FileStore as SyncFileStore
from sessionward._sync.stores import MemoryStore as SyncMemoryStore
from sessionward._sync.stores import open_store as open_sync_store
from sessionward._sync.stores.sql import SqlStore as SyncSqlStore
from sessionward.core.errors import ConfigError
from sessionward.core.records import SessionRecord, Tombstone
from sessionward.stores import open_store
from sessionward.stores.base import SessionStore
from sessionward.stores.file import FileStore
from sessionward.stores.memory import MemoryStore
from sessionward.stores.sql import SqlStore
from support.helpers import service_missing

from .builders import NOW
from .sync_view import AsyncView

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("file", id="file"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
    pytest.param("redis_cluster", id="redis_cluster", marks=pytest.mark.redis),
]
# The sync stores (sessionward._sync.stores) against the same servers, through
# the thread-per-call AsyncView of sync_view.py: the suite's races become thread races.
BACKENDS += [pytest.param(f"sync:{p.values[0]}", id=f"sync-{p.id}", marks=p.marks) for p in BACKENDS]


@dataclass
class Backend:
    """One store backend under test.

    Attributes:
        name: The parameter id (``memory``, ``sqlite``, …).
        opener: Opens one more store instance on the same namespace (not set up).
        dumper: Returns what the backend holds (rows, files, keys and values) as bytes.
        corrupter: Writes garbage over the entry stored under a key; ``None`` where
            nothing outside the process can reach the data (memory).
        instances: How many separate instances make a real race on this backend.
    """

    name: str
    opener: Callable[[], SessionStore]
    dumper: Callable[[], Awaitable[bytes]]
    corrupter: Callable[[str], Awaitable[None]] | None
    instances: int = 4
    raw_dumper: Callable[[], Awaitable[bytes]] | None = None
    opened: list[SessionStore] = field(default_factory=list)
    sync_opener: Callable[[], SessionStore] | None = None
    """Opens the sync store on the same namespace, seen through ``AsyncView``."""
    cleanup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """Run after the test, once the opened stores are closed."""

    async def open(self) -> SessionStore:
        """Open, set up and remember one more instance (closed after the test)."""
        store = self.opener()
        self.opened.append(store)
        await store.setup()
        return store

    async def dump(self) -> bytes:
        """Return what the backend holds: every row, file, or key and value."""
        return await self.dumper()

    async def raw_dump(self) -> bytes:
        """Return the backend's contents as raw as they get (database files where there are some)."""
        return await (self.raw_dumper or self.dumper)()

    async def corrupt(self, key: str) -> None:
        """Write garbage over the entry under ``key``, straight into the backend."""
        if self.corrupter is None:
            pytest.skip(f"{self.name}: the data lives in the process; nothing outside it can corrupt it")
        await self.corrupter(key)


GARBAGE = "{not json: \u00ff"


# -- SQL ---------------------------------------------------------------------------------------


def _sql_backend(name: str, url: str, *, prefix: str, instances: int) -> Backend:
    first = SqlStore.from_url(url, table_prefix=prefix)

    async def dump() -> bytes:
        chunks: list[str] = []
        async with first.engine.connect() as connection:
            for table in (first.sessions, first.locks):
                chunks.extend(repr(tuple(row)) for row in await connection.execute(sa.select(table)))
        return "\n".join(chunks).encode()

    async def corrupt(key: str) -> None:
        async with first.engine.begin() as connection:
            c = first.sessions.c
            await connection.execute(
                sa.update(first.sessions).where(c.key == key).values(data=GARBAGE, meta=GARBAGE, tomb=None)
            )

    def opener() -> SessionStore:
        return first if not backend.opened else SqlStore.from_url(url, table_prefix=prefix)

    backend = Backend(name, opener, dump, corrupt, instances=instances)

    def sync_opener() -> SessionStore:
        if not backend.cleanup:
            # The async store that dumps and corrupts is never opened by the test here.
            if name in ("postgres", "mysql"):
                backend.cleanup.append(first.drop)
            backend.cleanup.append(first.close)
        return AsyncView(SyncSqlStore.from_url(url, table_prefix=prefix))

    backend.sync_opener = sync_opener
    return backend


def _sqlite_backend(path: Path) -> Backend:
    backend = _sql_backend("sqlite", f"sqlite:///{path}", prefix="sessionward_", instances=4)
    sql_dump = backend.dumper

    async def dump() -> bytes:
        # The database file and its WAL as they are on disk (free pages too), plus the rows.
        files = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        return files + await sql_dump()

    backend.raw_dumper = dump
    return backend


# -- files -------------------------------------------------------------------------------------


def _file_backend(root: Path) -> Backend:
    def opener() -> SessionStore:
        return FileStore(root)

    def read_all() -> bytes:
        chunks = []
        for directory, _subdirectories, names in os.walk(root):
            for name in names:
                path = Path(directory, name)
                chunks.append(str(path).encode() + b"\n" + path.read_bytes())
        return b"\n".join(chunks)

    async def dump() -> bytes:
        return read_all()

    async def corrupt(key: str) -> None:
        (root / "sessions" / key[:2] / key[2:4] / f"{key}.json").write_text(GARBAGE)

    backend = Backend("file", opener, dump, corrupt, instances=4)
    backend.sync_opener = lambda: AsyncView(SyncFileStore(root))
    return backend


# -- Redis -------------------------------------------------------------------------------------


def _redis_backend(name: str, url: str) -> Backend:
    import redis.asyncio as aioredis
    from redis.asyncio.cluster import RedisCluster

    parts = urlsplit(url)
    cluster = "cluster" in parts.scheme

    def client() -> Any:
        if cluster:
            return RedisCluster(host=parts.hostname or "127.0.0.1", port=parts.port or 6379)
        return aioredis.from_url(url.replace("redis+", "redis", 1) if url.startswith("redis+") else url)

    async def dump() -> bytes:
        redis = client()
        chunks: list[bytes] = []
        try:
            async for name in redis.scan_iter(count=1000):
                kind = (await redis.type(name)).decode()
                value: Any
                if kind == "string":
                    value = await redis.get(name)
                elif kind == "hash":
                    value = await redis.hgetall(name)
                elif kind == "set":
                    value = await redis.smembers(name)
                elif kind == "zset":
                    value = await redis.zrange(name, 0, -1, withscores=True)
                elif kind == "list":
                    value = await redis.lrange(name, 0, -1)
                else:
                    value = kind
                chunks.append(name + b" " + repr(value).encode())
        finally:
            await redis.aclose()
        return b"\n".join(chunks)

    async def corrupt(key: str) -> None:
        redis = client()
        try:
            found = False
            async for name in redis.scan_iter(match=f"*{key}*", count=1000):
                kind = (await redis.type(name)).decode()
                if kind == "string":
                    await redis.set(name, GARBAGE, keepttl=True)
                    found = True
                elif kind == "hash":
                    fields = await redis.hkeys(name)
                    await redis.hset(name, mapping=dict.fromkeys(fields, GARBAGE))
                    found = True
            if not found:
                raise AssertionError(f"no Redis key holding {key[:16]}… found to corrupt")
        finally:
            await redis.aclose()

    backend = Backend(name, lambda: open_store(url), dump, corrupt, instances=4)
    backend.sync_opener = lambda: AsyncView(open_sync_store(url))
    return backend


# -- choosing one ------------------------------------------------------------------------------


async def make_backend(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if name.startswith("sync:"):
        return await _sync_backend(name.removeprefix("sync:"), request, tmp_path)
    prefix = f"t{secrets.token_hex(4)}_"
    if name == "memory":
        only = MemoryStore()

        async def dump() -> bytes:
            return repr(vars(only.sync)).encode()

        return Backend("memory", lambda: only, dump, None, instances=1)
    if name == "sqlite":
        return _sqlite_backend(tmp_path / "sessions.db")
    if name == "file":
        return _file_backend(tmp_path / "store")
    if name == "postgres":
        return _sql_backend(name, request.getfixturevalue("postgres_url"), prefix=prefix, instances=4)
    if name == "mysql":
        return _sql_backend(name, request.getfixturevalue("mysql_url"), prefix=prefix, instances=4)
    fixture = "redis_url" if name == "redis" else "redis_cluster_url"
    try:
        url = request.getfixturevalue(fixture)
    except pytest.FixtureLookupError:
        service_missing(f"no {fixture!r} fixture: the Redis test servers (support/redis_servers.py) are not there")
    try:
        await open_store(url).close()
    except ConfigError as error:
        service_missing(f"the Redis store cannot open {url}: {error}")
    return _redis_backend(name, url)


async def _sync_backend(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The backend ``name`` with its sync store in place of the async one."""
    if name == "memory":
        only = AsyncView(SyncMemoryStore())

        async def dump() -> bytes:
            return repr(vars(only.sync)).encode()

        return Backend("memory", lambda: only, dump, None, instances=1)
    backend = await make_backend(name, request, tmp_path)
    assert backend.sync_opener is not None
    backend.opener = backend.sync_opener
    return backend


async def live(store: SessionStore, key: str, now: float = NOW) -> SessionRecord:
    """Load ``key`` and insist on a live record."""
    entry = await store.load(key, now)
    assert isinstance(entry, SessionRecord), f"expected a live record, got {entry!r}"
    return entry


async def ended(store: SessionStore, key: str, now: float = NOW) -> Tombstone:
    """Load ``key`` and insist on a tombstone."""
    entry = await store.load(key, now)
    assert isinstance(entry, Tombstone), f"expected a tombstone, got {entry!r}"
    return entry


async def instances(backend: Backend, store: SessionStore) -> list[SessionStore]:
    """The store plus more instances on the same namespace: separate connections or files."""
    return [store] + [await backend.open() for _ in range(backend.instances - 1)]
