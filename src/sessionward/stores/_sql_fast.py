"""A request's own statements sent on the driver itself (asyncpg, aiosqlite).

A request makes at most two statements: the read of its session by key, and in the
common case one ``UPDATE`` (a touch of the idle clock, or a data write that finds the
version it read). Through SQLAlchemy's async engine each costs several times the
statement itself: a greenlet switch into the sync core, an execution context, connection
events, the isolation level set and reset, result processing. Measured in process with 32
reads in flight, a PostgreSQL read took 874 µs of CPU through ``AsyncConnection.execute``
and 211 µs sent with asyncpg's ``fetchrow`` on a connection checked out of the same pool;
a SQLite read 457 µs, and 73 µs sent with aiosqlite on a connection of its own.

So a :class:`FastPath` sends only these statements on the driver's own connection. Each
statement is the store's own, compiled by SQLAlchemy for the driver, and a row is checked
by the same decoder. Anything but an answer (a connection cut, a missing table, a
database file that is not there, any error of the driver) is :class:`FastPathFailed`: the
connection is dropped, and the store sends the same statement again its ordinary way,
which retries, reports and maps errors as every other operation does. All three are safe
to send twice: the read changes nothing, a touch writes the same values again, and a data
write is guarded by the version it read (when it had gone through, the second finds the
version moved and the store's fallback applies the same keys again). A statement that
runs out of time is not sent again: it is
:class:`~sessionward.core.errors.StoreUnavailableError` at once.

* :class:`AsyncpgPath` borrows its connections from the store's SQLAlchemy pool (its sizes,
  recycling and timeouts).
* :class:`SqlitePath` keeps a few aiosqlite connections of its own: one borrowed from
  SQLAlchemy's pool is rolled back on its return, which only SQLAlchemy's greenlet can
  await. They are set up as the pool's (autocommit, WAL, the busy timeout), open the
  database file read-write without ever creating it, and queue their writes on the
  store's write gate, as its other writers do.
* :class:`BlockingFastPath` is the same for the blocking store (WSGI) on sqlite3 and
  psycopg, with connections borrowed from its SQLAlchemy pool: 69 µs of CPU per read
  through SQLAlchemy against 8 µs on sqlite3 itself. A blocking call cannot be cut at a
  deadline; the drivers' own timeouts (SQLite's busy timeout, PostgreSQL's
  ``statement_timeout``) bound it, and running out of one is
  :class:`~sessionward.core.errors.StoreUnavailableError` at once, not a second wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections import deque
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from sessionward.core.errors import StoreUnavailableError
from sessionward.io import _blocking
from sessionward.io._store_calls import unwaited_cleanup
from sessionward.stores._sql_rows import ColumnValues

logger = logging.getLogger("sessionward")

T = TypeVar("T")

SQLITE_CONNECTIONS = 4
"""The most aiosqlite connections :class:`SqlitePath` keeps (each is a thread). A statement
takes microseconds in SQLite, and reads do not wait on the write lock in WAL mode, so a
few serve 32 requests in flight; with 4 rather than 16, 32 reads in flight cost 15 % less
CPU and their p99 was a quarter lower (fewer threads taking turns at the GIL). Past it, a
statement waits for a connection to come back."""


def sqlite_file(url: sa.URL) -> bool:
    """Tell whether a SQLite URL names a plain database file, which a driver path may share.

    An in-memory database lives in its one pooled connection, which nothing else may use
    or an error drop; a URI filename (``?uri=true``) is SQLite's to parse.
    """
    return (url.database or "") not in ("", ":memory:") and not url.query.get("uri")


class FastPathFailed(Exception):
    """The driver gave no answer; send the statement the ordinary way instead."""


class Compiled:
    """A statement as the driver takes it: its SQL text and its parameters' names.

    asyncpg and sqlite3 take parameters by position (``$1``, ``?``), psycopg by name
    (``%(p_key)s``).
    """

    __slots__ = ("by_name", "names", "sql")

    def __init__(self, engine: AsyncEngine | sa.Engine, statement: sa.Select[Any] | sa.Update) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        self.sql = str(compiled)
        self.by_name = compiled.positiontup is None
        self.names: tuple[str, ...] = tuple(compiled.binds if self.by_name else compiled.positiontup or ())

    def arguments(self, values: Mapping[str, Any]) -> Any:
        """Return ``values`` (by parameter name) as the arguments of the SQL."""
        if self.by_name:
            return {name: values[name] for name in self.names}
        return [values[name] for name in self.names]


class FastPath:
    """The store's read and common-case writes sent on the driver.

    Args:
        engine: The store's async engine.
        load: The read of a session by key (one bound parameter, ``p_key``).
        touch: The ``UPDATE`` of a touch.
        save_seen: The ``UPDATE`` of a data write guarded by the version read.
    """

    def __init__(self, engine: AsyncEngine, load: sa.Select[Any], touch: sa.Update, save_seen: sa.Update) -> None:
        self._engine = engine
        self._name = engine.dialect.name
        self.load = Compiled(engine, load)
        self.touch = Compiled(engine, touch)
        self.save_seen = Compiled(engine, save_seen)

    @classmethod
    def on(
        cls,
        engine: AsyncEngine,
        load: sa.Select[Any],
        touch: sa.Update,
        save_seen: sa.Update,
        *,
        write_gate: asyncio.Lock | None,
        timeout_s: float,
    ) -> FastPath | None:
        """Return the fast path for ``engine``'s driver, or ``None`` when it has none.

        ``write_gate`` is the lock the store's writers queue on (SQLite); ``timeout_s``
        the store's timeout, which SQLite's busy handler waits at most.
        """
        driver = engine.dialect.driver
        if driver == "asyncpg":
            return AsyncpgPath(engine, load, touch, save_seen)
        if driver == "aiosqlite" and sqlite_file(engine.url) and write_gate is not None:
            busy_timeout_ms = int(timeout_s * 1000)
            return SqlitePath(engine, load, touch, save_seen, write_gate=write_gate, busy_timeout_ms=busy_timeout_ms)
        return None

    async def row(self, key: str, timeout_s: float) -> ColumnValues | None:
        """Return the row of ``key``, or ``None`` if there is none.

        Raises:
            StoreUnavailableError: no answer within ``timeout_s``.
            FastPathFailed: anything else went wrong; read the ordinary way.
        """
        record = await self._bounded(self._fetch(self.load.sql, [key]), timeout_s)
        return None if record is None else ColumnValues(record)

    async def update(self, statement: Compiled, values: Mapping[str, Any], timeout_s: float) -> int:
        """Run one of the ``UPDATE`` statements; return how many rows it matched.

        Raises:
            StoreUnavailableError: no answer within ``timeout_s``.
            FastPathFailed: anything else went wrong; write the ordinary way.
        """
        return await self._bounded(self._execute(statement.sql, statement.arguments(values)), timeout_s)

    async def close(self) -> None:
        """Close the connections of the fast path's own (none unless it keeps some)."""

    async def _fetch(self, sql: str, arguments: list[Any]) -> Any:
        """Return the row the read finds (by column name), or ``None``."""
        raise NotImplementedError

    async def _execute(self, sql: str, arguments: list[Any]) -> int:
        """Run an ``UPDATE``; return how many rows it matched."""
        raise NotImplementedError

    async def _bounded(self, work: Coroutine[Any, Any, T], timeout_s: float) -> T:
        try:
            async with asyncio.timeout(timeout_s):
                return await unwaited_cleanup(work)
        except TimeoutError:
            raise StoreUnavailableError(f"SQL store ({self._name}) did not answer within {timeout_s} s") from None
        except Exception as error:
            kind = type(error).__name__
            logger.debug("SQL store (%s): the driver's statement failed (%s); sending it again", self._name, kind)
            raise FastPathFailed from error


class AsyncpgPath(FastPath):
    """PostgreSQL on asyncpg, with connections borrowed from the store's SQLAlchemy pool."""

    async def _fetch(self, sql: str, arguments: list[Any]) -> Any:
        return await self._send(sql, arguments, fetch=True)

    async def _execute(self, sql: str, arguments: list[Any]) -> int:
        status: str = await self._send(sql, arguments, fetch=False)
        return int(status.rpartition(" ")[2])  # "UPDATE <rows>"

    async def _send(self, sql: str, arguments: list[Any], *, fetch: bool) -> Any:
        connection = await self._engine.raw_connection()
        try:
            driver: Any = connection.driver_connection
            return await (driver.fetchrow(sql, *arguments) if fetch else driver.execute(sql, *arguments))
        except BaseException:
            # Cut, cancelled or refused: its state is unknown, so it never goes back to the
            # pool. Invalidating outside SQLAlchemy's greenlet terminates it at once.
            connection.invalidate()
            raise
        finally:
            connection.close()  # back to the pool (an invalidated one is discarded)


class SqlitePath(FastPath):
    """SQLite on aiosqlite, with a few connections of its own (see the module docstring).

    A connection is idle (``_idle``), lent to one statement (``_lent``), or stopping: one
    whose statement was cut or failed is never reused, and one lent when the store closed
    is stopped when it comes back. :meth:`close` waits for every one of them, so no
    connection thread outlives the store's event loop.

    Args:
        write_gate: The lock the store's writers queue on; the writes here queue on it too.
        busy_timeout_ms: How long a statement waits for another process's write lock.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        load: sa.Select[Any],
        touch: sa.Update,
        save_seen: sa.Update,
        *,
        write_gate: asyncio.Lock,
        busy_timeout_ms: int,
    ) -> None:
        super().__init__(engine, load, touch, save_seen)
        self._write_gate = write_gate
        self._busy_timeout_ms = busy_timeout_ms
        # The file SQLAlchemy opens (a relative path from the working directory, no ``~``),
        # read-write: it is opened, never created (creating it is setup's work).
        self._uri = Path(engine.url.database or "").absolute().as_uri() + "?mode=rw"
        self._idle: list[Any] = []
        self._lent: set[Any] = set()
        self._opening = 0
        self._epoch = 0  # how many times the store closed: a connection opened before is retiring
        self._retiring: set[Any] = set()
        self._stopping: set[asyncio.Future[Any]] = set()
        self._all_back: asyncio.Event | None = None
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._pid = os.getpid()

    @property
    def _opened(self) -> int:
        return len(self._idle) + len(self._lent) + self._opening

    async def close(self) -> None:
        if self._pid != os.getpid():
            self._forget_parents()  # a forked child: the parent's threads are not here to wait for
            return
        self._epoch += 1
        idle, self._idle = self._idle, []
        for connection in idle:
            self._stop(connection)
        self._retiring |= self._lent  # stopped as they come back
        # A statement in flight ends within SQLite's busy timeout.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._busy_timeout_ms / 1000 + 1.0):
                if self._lent or self._opening:
                    self._all_back = asyncio.Event()
                    await self._all_back.wait()
                if self._stopping:
                    await asyncio.wait(list(self._stopping))
        self._all_back = None

    async def _fetch(self, sql: str, arguments: list[Any]) -> Any:
        connection = await self._borrow()
        try:
            rows = await connection.execute_fetchall(sql, arguments)
        except BaseException:
            self._discard(connection)
            raise
        self._return(connection)
        return rows[0] if rows else None

    async def _execute(self, sql: str, arguments: list[Any]) -> int:
        async with self._write_gate:
            connection = await self._borrow()
            try:
                cursor = await connection.execute(sql, arguments)
            except BaseException:
                self._discard(connection)
                raise
            self._return(connection)
            return int(cursor.rowcount)

    async def _borrow(self) -> Any:
        if self._pid != os.getpid():
            self._forget_parents()
        while not self._idle:
            if self._opened < SQLITE_CONNECTIONS:
                epoch = self._epoch
                self._opening += 1
                try:
                    connection = await self._connect()
                except BaseException:
                    self._opening -= 1
                    self._settled()
                    raise
                self._opening -= 1
                self._lent.add(connection)
                if epoch != self._epoch:
                    self._retiring.add(connection)  # the store closed while it opened
                return connection
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await waiter
            except BaseException:
                if not waiter.done():
                    self._waiting.remove(waiter)
                elif not waiter.cancelled():
                    self._wake()  # woken, then cancelled before it ran: pass the turn on
                raise
        connection = self._idle.pop()
        self._lent.add(connection)
        return connection

    def _return(self, connection: Any) -> None:
        self._lent.discard(connection)
        if connection in self._retiring:
            self._stop(connection)  # lent when the store closed
        else:
            self._idle.append(connection)
        self._settled()

    def _discard(self, connection: Any) -> None:
        # Cut, cancelled or refused: its state is unknown, so it is closed, not reused.
        # Its thread closes it once the statement it runs is done.
        self._lent.discard(connection)
        self._stop(connection)
        self._settled()

    def _settled(self) -> None:
        """A connection came back or a slot freed: wake a waiter, and a closing store."""
        self._wake()
        if self._all_back is not None and not self._lent and not self._opening:
            self._all_back.set()

    def _stop(self, connection: Any) -> None:
        self._retiring.discard(connection)
        stopped = connection.stop()
        if stopped is not None:
            self._stopping.add(stopped)
            stopped.add_done_callback(self._stopping.discard)

    def _wake(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _forget_parents(self) -> None:
        # A forked child: the parent's connection threads do not exist here.
        self._idle, self._lent, self._retiring, self._stopping = [], set(), set(), set()
        self._opening = 0
        self._waiting.clear()
        self._pid = os.getpid()

    async def _connect(self) -> Any:
        import aiosqlite  # the store's own driver: installed with the sqlite extra

        uri, busy_timeout_ms = self._uri, self._busy_timeout_ms

        def connect() -> sqlite3.Connection:
            # As the store's pool sets up its connections: autocommit, WAL, the busy timeout
            # (from the start: switching to WAL may wait for another process's lock).
            connection = sqlite3.connect(
                uri, uri=True, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
            )
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
            return connection

        connection = aiosqlite.Connection(connect, iter_chunk_size=64)
        connection._thread.daemon = True  # as SQLAlchemy does: exiting never waits on it
        try:
            return await connection
        except BaseException:
            # aiosqlite stops the thread of a failed connect without waiting for it; wait
            # (a moment: it has nothing left to do), so that it never calls back into an
            # event loop that has closed meanwhile.
            for _ in range(1000):
                if not connection._thread.is_alive():
                    break
                await asyncio.sleep(0.001)
            await asyncio.sleep(0)  # and let its last callback run
            raise


class BlockingFastPath:
    """The blocking store's read and common-case writes sent on sqlite3 or psycopg.

    The connections come from the store's SQLAlchemy pool, which hands one to one thread
    at a time. SQLite's writes queue on the store's write gate, as its other writers do.
    A connection goes back to the pool after an error when its state is known (sqlite3's
    always is; psycopg's when it is idle), and is dropped otherwise.

    Args:
        engine: The store's blocking engine.
        load: The read of a session by key (one bound parameter, ``p_key``).
        touch: The ``UPDATE`` of a touch.
        save_seen: The ``UPDATE`` of a data write guarded by the version read.
        write_gate: The lock the store's writers queue on (SQLite), or ``None``.
    """

    def __init__(
        self,
        engine: sa.Engine,
        load: sa.Select[Any],
        touch: sa.Update,
        save_seen: sa.Update,
        *,
        write_gate: _blocking.Lock | None,
    ) -> None:
        self._engine = engine
        self._name = engine.dialect.name
        self._write_gate = write_gate
        self._psycopg = engine.dialect.driver == "psycopg"
        self.load = Compiled(engine, load)
        self.touch = Compiled(engine, touch)
        self.save_seen = Compiled(engine, save_seen)

    @classmethod
    def on(
        cls,
        engine: sa.Engine,
        load: sa.Select[Any],
        touch: sa.Update,
        save_seen: sa.Update,
        *,
        write_gate: _blocking.Lock | None,
        timeout_s: float,
    ) -> BlockingFastPath | None:
        """Return the fast path for ``engine``'s driver (sqlite3, psycopg), or ``None``."""
        del timeout_s  # the drivers' own timeouts bound a blocking statement
        driver = engine.dialect.driver
        if driver == "psycopg":
            return cls(engine, load, touch, save_seen, write_gate=write_gate)
        if driver == "pysqlite" and sqlite_file(engine.url):
            return cls(engine, load, touch, save_seen, write_gate=write_gate)
        return None

    def row(self, key: str, timeout_s: float) -> ColumnValues | None:
        """Return the row of ``key``, or ``None`` if there is none.

        Raises:
            StoreUnavailableError: the driver's timeout ran out, or no connection came.
            FastPathFailed: anything else went wrong; read the ordinary way.
        """
        del timeout_s
        names, record = self._send(self.load.sql, self.load.arguments({"p_key": key}), fetch=True)
        return None if record is None else ColumnValues(dict(zip(names, record, strict=True)))

    def update(self, statement: Compiled, values: Mapping[str, Any], timeout_s: float) -> int:
        """Run one of the ``UPDATE`` statements; return how many rows it matched.

        Raises:
            StoreUnavailableError: the driver's timeout ran out, or no connection came.
            FastPathFailed: anything else went wrong; write the ordinary way.
        """
        del timeout_s
        arguments = statement.arguments(values)
        if self._write_gate is None:
            return int(self._send(statement.sql, arguments, fetch=False)[1])
        with self._write_gate:
            return int(self._send(statement.sql, arguments, fetch=False)[1])

    def close(self) -> None:
        """Nothing to close: the connections are the pool's."""

    def _send(self, sql: str, arguments: Any, *, fetch: bool) -> tuple[tuple[str, ...], Any]:
        """Run ``sql``; return the column names and the first row, or ``((), rowcount)``."""
        connection = self._checkout()
        driver: Any = connection.driver_connection
        reusable = False
        # psycopg: autocommit for this statement alone (no BEGIN before it, no COMMIT or
        # ROLLBACK after it); a connection already in autocommit is left as it is.
        switched = self._psycopg and not driver.autocommit
        try:
            if switched:
                driver.autocommit = True
            cursor = driver.execute(sql, arguments)
            if fetch:
                names = tuple(column[0] for column in cursor.description)
                rows = cursor.fetchall()
                result: tuple[tuple[str, ...], Any] = (names, rows[0] if rows else None)
            else:
                result = ((), cursor.rowcount)
            if switched:
                driver.autocommit = False
            reusable = True
            return result
        except Exception as error:
            reusable = self._idle(driver, switched)
            if _ran_out_of_time(error):
                raise StoreUnavailableError(f"SQL store ({self._name}) unavailable: {error}") from None
            logger.debug("SQL store (%s): the driver's statement failed (%s); sending it again", self._name, error)
            raise FastPathFailed from error
        finally:
            # Anything else (an interruption mid-statement) leaves its state unknown.
            if not reusable:
                connection.invalidate()
            connection.close()

    def _checkout(self) -> Any:
        """A connection from the pool; a timeout or refused connect is an outage at once.

        Sending the statement the ordinary way would wait for the same pool or server again.
        """
        try:
            return self._engine.raw_connection()
        except sa.exc.TimeoutError:
            raise StoreUnavailableError(f"SQL store ({self._name}): no connection free in time") from None
        except Exception as error:
            if self._name == "sqlite":
                raise FastPathFailed from error  # e.g. a missing folder: the ordinary path says what to do
            raise StoreUnavailableError(f"SQL store ({self._name}) unavailable: {error}") from None

    def _idle(self, driver: Any, switched: bool) -> bool:
        """Tell whether a connection whose statement failed is idle and fit for the pool again."""
        if not self._psycopg:
            return True  # sqlite3 in autocommit: a failed statement leaves nothing open
        try:
            if driver.broken or driver.info.transaction_status.name != "IDLE":
                return False
            if switched:
                driver.autocommit = False
        except Exception:
            return False
        return True


def _ran_out_of_time(error: Exception) -> bool:
    """Tell whether a blocking driver gave up waiting (a lock, a statement timeout)."""
    if isinstance(error, sqlite3.Error):
        # By SQLite's code, not the message (it may quote the row's text).
        code = getattr(error, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    # psycopg: query_canceled (statement_timeout), lock_not_available (lock_timeout)
    return getattr(error, "sqlstate", None) in ("57014", "55P03")
