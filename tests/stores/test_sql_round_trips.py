"""Round trips of the SQL store, counted: a read is one statement, no BEGIN, COMMIT or ping;
so is the write of a request's common case (a touch, a data write that finds its version).

Counted twice: SQLAlchemy's ``before_cursor_execute`` (every statement the store sends,
SQLite included) and, for PostgreSQL and MySQL, a TCP proxy between the store and the
server that counts turns (each time the client speaks after the server did): what the
network sees, whatever the driver does on its own (a ``BEGIN`` asyncpg sends, a ping, a
``ROLLBACK`` on a connection's return to the pool).

Also: a pooled connection the server has cut (a restart, a firewall) costs a read or an
uncommitted write nothing but a retry on a fresh connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import event

from faults.targets import through, upstream_of
from faults.tcp_proxy import TcpProxy
from sessionward._sync.stores.sql import SqlStore as SyncSqlStore
from sessionward.core.errors import ConfigError
from sessionward.core.records import SessionRecord
from sessionward.stores._sql_dialects import POOL_DEFAULTS, open_engine
from sessionward.stores._sql_fast import SqlitePath
from sessionward.stores.sql import SqlStore

from .builders import NOW, make_record, make_update

LATER = NOW + 1


def pg_message(data: bytes) -> str:
    """Name the first PostgreSQL frontend message of a turn: a simple query's text, else its kind."""
    kind = data[:1]
    if kind == b"Q":
        return data[5:].split(b"\0", 1)[0].decode(errors="replace").strip().upper()
    if kind == b"P":
        return "PREPARE " + data[5:].split(b"\0", 2)[1].decode(errors="replace").split(None, 1)[0].upper()
    if kind == b"B":
        return "EXECUTE"
    return f"MESSAGE {kind!r}"


def mysql_message(data: bytes) -> str:
    """Name the first MySQL command of a turn: a query's first word, else the command byte."""
    command = data[4:5]
    if command == b"\x03":
        return data[5:].decode(errors="replace").strip().split(None, 1)[0].upper()
    if command == b"\x0e":
        return "PING"
    return f"COMMAND {command!r}"


@dataclass
class TurnCounter:
    """A TCP proxy on this event loop that logs each client turn by what it sent first."""

    target: tuple[str, int]
    describe: Callable[[bytes], str]
    turns: list[str] = field(default_factory=list)
    port: int = 0
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    _relays: set[asyncio.Task[None]] = field(default_factory=set)

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        server_reader, server_writer = await asyncio.open_connection(*self.target)
        self._writers += [client_writer, server_writer]
        last = "server"

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter, side: str) -> None:
            nonlocal last
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    if side == "client" and last != "client":
                        self.turns.append(self.describe(data))
                    last = side
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pump(client_reader, server_writer, "client"), pump(server_reader, client_writer, "server"))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[TurnCounter]:
        server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            for writer in self._writers:
                writer.close()
            await asyncio.gather(*self._relays, return_exceptions=True)
            for writer in self._writers:
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
            await server.wait_closed()

    def proxied(self, url: str) -> str:
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        return parts._replace(netloc=f"{userinfo}@127.0.0.1:{self.port}").geturl()

    def taken(self) -> list[str]:
        """Return the turns since the last call, and forget them."""
        turns, self.turns = self.turns, []
        return turns


@dataclass
class Statements:
    """Every statement SQLAlchemy hands the driver, by its first word."""

    seen: list[str] = field(default_factory=list)

    def listen(self, engine: Any) -> None:
        def on_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            self.seen.append(statement.split(None, 1)[0].upper())

        event.listen(engine, "before_cursor_execute", on_statement)

    def taken(self) -> list[str]:
        seen, self.seen = self.seen, []
        return seen


def counted(store: SqlStore) -> Statements:
    statements = Statements()
    statements.listen(store.engine.sync_engine)  # the reads' engine too, where it is the same pool
    if store._own_reader is not None:  # MySQL: the reads' own pool
        statements.listen(store._own_reader.sync_engine)
    return statements


@pytest.fixture(
    params=[pytest.param("postgres", marks=pytest.mark.postgres), pytest.param("mysql", marks=pytest.mark.mysql)]
)
async def networked(request: pytest.FixtureRequest) -> AsyncIterator[tuple[SqlStore, TurnCounter]]:
    """A store on PostgreSQL or MySQL whose every byte goes through a turn counter."""
    url = request.getfixturevalue(f"{request.param}_url")
    describe = pg_message if request.param == "postgres" else mysql_message
    async with TurnCounter(upstream_of(url), describe).running() as counter:
        store = SqlStore.from_url(counter.proxied(url), table_prefix=f"sw_rt_{secrets.token_hex(4)}_")
        await store.setup()
        try:
            yield store, counter
        finally:
            await store.drop()
            await store.close()


async def warmed(store: SqlStore, counter: TurnCounter) -> str:
    """Store a session and read and write it until the connection has every statement prepared."""
    record = make_record(data={"n": 0})
    await store.establish(record)
    for n in range(2):
        loaded = await store.load(record.key, LATER)
        assert isinstance(loaded, SessionRecord)
        await store.save(record.key, make_update(loaded, set={"n": n}, now=LATER))
        await store.list_user("nobody", LATER)
        await store.stats(LATER)
    counter.taken()
    return record.key


async def test_a_read_is_one_round_trip_with_no_begin_commit_or_ping(networked: tuple[SqlStore, TurnCounter]) -> None:
    store, counter = networked
    statements = counted(store)
    key = await warmed(store, counter)
    statements.taken()

    for _ in range(3):
        entry = await store.load(key, LATER)
        assert entry is not None
        turns = counter.taken()
        assert len(turns) == 1, turns
        assert not {"BEGIN", "COMMIT", "ROLLBACK", "PING", ";"} & set(turns), turns
        if store.dialect == "postgresql":
            # asyncpg: sent on the driver itself (sessionward.stores._sql_fast), a prepared
            # SELECT bound and run in one turn; SQLAlchemy sees no statement.
            assert statements.taken() == []
            assert turns == ["EXECUTE"]
        else:
            assert statements.taken() == ["SELECT"]

    # Every read path is one statement: a listing, the statistics (counters included).
    await store.list_user("nobody", LATER)
    await store.stats(LATER)
    assert statements.taken() == ["SELECT", "SELECT"]
    assert len(counter.taken()) == 2


async def test_a_data_write_that_finds_its_version_is_one_round_trip_with_no_begin_or_commit(
    networked: tuple[SqlStore, TurnCounter],
) -> None:
    store, counter = networked
    statements = counted(store)
    key = await warmed(store, counter)
    for n in range(3):
        record = await store.load(key, LATER)
        assert isinstance(record, SessionRecord)
        counter.taken()
        statements.taken()

        assert await store.save(key, make_update(record, set={"n": n + 10}, now=LATER)) is True

        turns = counter.taken()
        assert len(turns) == 1, turns  # a read and a write: two round trips per request
        assert not {"BEGIN", "COMMIT", "ROLLBACK", "PING", ";"} & set(turns), turns
        if store.dialect == "postgresql":  # asyncpg: a prepared UPDATE on the driver itself
            assert statements.taken() == []
            assert turns == ["EXECUTE"]
        else:
            assert statements.taken() == ["UPDATE"]
    after = await store.load(key, LATER)
    assert isinstance(after, SessionRecord)
    assert after.data == {"n": 12}  # committed, with nothing around the statement


async def test_a_touch_of_the_idle_clock_is_one_round_trip(networked: tuple[SqlStore, TurnCounter]) -> None:
    store, counter = networked
    key = await warmed(store, counter)
    record = await store.load(key, LATER)
    assert isinstance(record, SessionRecord)
    assert await store.save(key, make_update(record, now=LATER + 1)) is True  # the statement prepared
    counter.taken()

    assert await store.save(key, make_update(record, now=LATER + 5)) is True

    turns = counter.taken()
    assert len(turns) == 1, turns
    reread = await store.load(key, LATER + 6)
    assert isinstance(reread, SessionRecord)
    assert reread.meta.last_access_at == LATER + 5


async def test_a_write_that_lost_its_version_falls_back_to_one_locked_transaction(
    networked: tuple[SqlStore, TurnCounter],
) -> None:
    store, counter = networked
    key = await warmed(store, counter)
    record = await store.load(key, LATER)
    assert isinstance(record, SessionRecord)
    assert await store.save(key, make_update(record, set={"other": 1}, now=LATER)) is True  # a racing writer
    counter.taken()

    assert await store.save(key, make_update(record, set={"n": 99}, now=LATER)) is True

    turns = counter.taken()
    assert any("COMMIT" in turn for turn in turns), turns  # the read FOR UPDATE and its write, in a transaction
    after = await store.load(key, LATER)
    assert isinstance(after, SessionRecord)
    assert after.data == {"n": 99, "other": 1}  # both writers' keys kept


async def test_sqlite_read_and_touch_are_one_statement_each_without_begin(tmp_path: Path) -> None:
    store = SqlStore.from_url(f"sqlite:///{tmp_path / 'sessions.db'}")
    await store.setup()
    statements = counted(store)
    try:
        record = make_record()
        await store.establish(record)
        assert await store.load(record.key, LATER) is not None  # opens the driver path's connection
        fast = store._fast
        assert isinstance(fast, SqlitePath)
        (connection,) = fast._idle
        sent: list[str] = []
        await connection.set_trace_callback(lambda sql: sent.append(sql.split()[0]))
        statements.taken()

        loaded = await store.load(record.key, LATER)
        assert isinstance(loaded, SessionRecord)
        assert sent == ["SELECT"]  # on the driver: no BEGIN, and nothing through SQLAlchemy
        assert statements.taken() == []
        assert await store.save(record.key, make_update(loaded, now=LATER + 1)) is True  # a touch
        assert sent == ["SELECT", "UPDATE"]
        assert statements.taken() == []

        await store.stats(LATER)  # any other read: one statement through SQLAlchemy, no BEGIN
        assert statements.taken() == ["SELECT"]
    finally:
        await store.close()


@pytest.mark.postgres
async def test_sync_store_read_and_write_are_one_round_trip_each_on_postgres(postgres_url: str) -> None:
    async with TurnCounter(upstream_of(postgres_url), pg_message).running() as counter:
        store = SyncSqlStore.from_url(counter.proxied(postgres_url), table_prefix=f"sw_rt_{secrets.token_hex(4)}_")
        try:
            await asyncio.to_thread(store.setup)
            record = make_record()
            await asyncio.to_thread(store.establish, record)
            await asyncio.to_thread(store.load, record.key, LATER)
            counter.taken()
            assert await asyncio.to_thread(store.load, record.key, LATER) is not None
            turns = counter.taken()
            assert len(turns) == 1, turns
            assert turns[0].endswith("SELECT"), turns  # psycopg: the query itself, no BEGIN
            loaded = await asyncio.to_thread(store.load, record.key, LATER)
            assert isinstance(loaded, SessionRecord)
            counter.taken()
            update = make_update(loaded, set={"n": 1}, now=LATER)
            assert await asyncio.to_thread(store.save, record.key, update) is True
            turns = counter.taken()
            assert len(turns) == 1, turns
            assert turns[0].endswith("UPDATE"), turns  # no BEGIN before it, no COMMIT after
        finally:
            await asyncio.to_thread(store.drop)
            await asyncio.to_thread(store.close)


# -- connections the server cut ---------------------------------------------------------------


@pytest.fixture(
    params=[pytest.param("postgres", marks=pytest.mark.postgres), pytest.param("mysql", marks=pytest.mark.mysql)]
)
async def behind_proxy(request: pytest.FixtureRequest) -> AsyncIterator[tuple[SqlStore, TcpProxy]]:
    url = request.getfixturevalue(f"{request.param}_url")
    with TcpProxy(*upstream_of(url)) as proxy:
        store = SqlStore.from_url(through(url, proxy), table_prefix=f"sw_rt_{secrets.token_hex(4)}_")
        await store.setup()
        try:
            yield store, proxy
        finally:
            proxy.pass_traffic()
            await store.drop()
            await store.close()


async def test_a_read_on_a_connection_the_server_cut_is_retried_on_a_fresh_one(
    behind_proxy: tuple[SqlStore, TcpProxy],
) -> None:
    store, proxy = behind_proxy
    record = make_record(data={"n": 1})
    await store.establish(record)
    assert await store.load(record.key, LATER) is not None  # the pool now holds connections

    proxy.reset()  # every open connection gets a TCP RST: a restart, a failover

    loaded = await store.load(record.key, LATER)
    assert isinstance(loaded, SessionRecord)
    assert loaded.data == {"n": 1}


async def test_a_write_on_a_connection_the_server_cut_before_commit_is_made_once(
    behind_proxy: tuple[SqlStore, TcpProxy],
) -> None:
    store, proxy = behind_proxy
    record = make_record(data={"n": 1})
    await store.establish(record)
    await store.save(record.key, make_update(record, set={"n": 1}, now=LATER))  # a pooled writer connection

    proxy.reset()

    loaded = await store.load(record.key, LATER)
    assert isinstance(loaded, SessionRecord)
    proxy.reset()  # and the writer's connection too, after the read

    assert await store.save(record.key, make_update(loaded, set={"n": 2}, now=LATER)) is True
    after = await store.load(record.key, LATER)
    assert isinstance(after, SessionRecord)
    assert after.data == {"n": 2}
    assert after.version == loaded.version + 1  # written once


# -- pool settings ------------------------------------------------------------------------------


def test_pool_sizes_come_from_the_url_query() -> None:
    engine = open_engine(
        "postgresql://app@127.0.0.1:1/app?pool_size=7&max_overflow=3&pool_recycle=60", setting="S", timeout_s=1
    )
    assert engine.pool.size() == 7  # type: ignore[attr-defined]
    assert engine.pool._max_overflow == 3  # type: ignore[attr-defined]
    assert engine.pool._recycle == 60
    assert "pool_size" not in engine.url.query  # not handed to the driver


def test_pool_defaults_keep_enough_connections_for_a_busy_server() -> None:
    engine = open_engine("postgresql://app@127.0.0.1:1/app", setting="S", timeout_s=1)
    assert engine.pool.size() == POOL_DEFAULTS["pool_size"] >= 16  # type: ignore[attr-defined]
    assert engine.pool._recycle == POOL_DEFAULTS["pool_recycle"] > 0
    assert not engine.pool._pre_ping


@pytest.mark.parametrize("query", ["pool_size=many", "max_overflow=-1", "pool_recycle=-5"])
def test_a_bad_pool_size_is_refused_naming_the_setting(query: str) -> None:
    with pytest.raises(ConfigError, match="SESSIONWARD_STORE"):
        open_engine(f"postgresql://app@127.0.0.1:1/app?{query}", setting="SESSIONWARD_STORE", timeout_s=1)


def test_in_memory_sqlite_keeps_its_one_connection_for_good() -> None:
    engine = open_engine("sqlite:///:memory:?pool_recycle=5", setting="S", timeout_s=1)
    assert engine.pool.size() == 1  # type: ignore[attr-defined]
    assert engine.pool._recycle == -1  # recycling would drop the database
