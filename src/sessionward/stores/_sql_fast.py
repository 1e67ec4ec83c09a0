"""PostgreSQL on asyncpg: a request's own statements sent on the driver itself.

A request makes at most two statements: the read of its session by key, and in the
common case one ``UPDATE`` (a touch of the idle clock, or a data write that finds the
version it read). Through SQLAlchemy's async engine each costs several times the
statement itself: a greenlet switch into the sync core, an execution context, connection
events, the isolation level set and reset, result processing. Measured in process with 32
reads in flight, the read took 874 µs of CPU through ``AsyncConnection.execute`` and
211 µs sent with asyncpg's ``fetchrow`` on a connection checked out of the same pool.

So :class:`FastPath` sends only these statements on the driver's own connection. It
keeps everything else the store's: the connection comes from the store's SQLAlchemy pool
(its sizes, recycling and timeouts), each statement is the store's own, compiled by
SQLAlchemy for asyncpg, and a row is checked by the same decoder. Anything but an answer
(a connection the server cut, a missing table, any error of the driver) is
:class:`FastPathFailed`: the connection is dropped from the pool, and the store sends the
same statement again its ordinary way, which retries, reports and maps errors as every
other operation does. All three are safe to send twice: the read changes nothing, a
touch writes the same values again, and a data write is guarded by the version it read
(when it had gone through, the second finds the version moved and the store's fallback
applies the same keys again). A statement that runs out of time is not sent again: it
is :class:`~sessionward.core.errors.StoreUnavailableError` at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from sessionward.core.errors import StoreUnavailableError
from sessionward.io._store_calls import unwaited_cleanup
from sessionward.stores._sql_rows import ColumnValues

logger = logging.getLogger("sessionward")

T = TypeVar("T")


class FastPathFailed(Exception):
    """The driver gave no answer; send the statement the ordinary way instead."""


class Compiled:
    """A statement as asyncpg takes it: its SQL text and its parameters' names in order."""

    __slots__ = ("names", "sql")

    def __init__(self, engine: AsyncEngine, statement: sa.Select[Any] | sa.Update) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        """Return ``values`` (by parameter name) as the positional arguments of the SQL."""
        return [values[name] for name in self.names]


class FastPath:
    """The store's read and common-case writes sent on asyncpg, with its pool's connections.

    Args:
        engine: The store's async engine on ``postgresql+asyncpg``.
        load: The read of a session by key (one bound parameter, ``p_key``).
        touch: The ``UPDATE`` of a touch.
        save_seen: The ``UPDATE`` of a data write guarded by the version read.
    """

    def __init__(self, engine: AsyncEngine, load: sa.Select[Any], touch: sa.Update, save_seen: sa.Update) -> None:
        self._engine = engine
        self.load = Compiled(engine, load)
        self.touch = Compiled(engine, touch)
        self.save_seen = Compiled(engine, save_seen)

    @classmethod
    def on(cls, engine: AsyncEngine, load: sa.Select[Any], touch: sa.Update, save_seen: sa.Update) -> FastPath | None:
        """Return the fast path for ``engine``, or ``None`` unless its driver is asyncpg."""
        return cls(engine, load, touch, save_seen) if engine.dialect.driver == "asyncpg" else None

    async def row(self, key: str, timeout_s: float) -> ColumnValues | None:
        """Return the row of ``key``, or ``None`` if there is none.

        Raises:
            StoreUnavailableError: no answer within ``timeout_s``.
            FastPathFailed: anything else went wrong; read the ordinary way.
        """
        record = await self._bounded(self._send(self.load.sql, [key], fetch=True), timeout_s)
        return None if record is None else ColumnValues(record)

    async def update(self, statement: Compiled, values: Mapping[str, Any], timeout_s: float) -> int:
        """Run one of the ``UPDATE`` statements; return how many rows it matched.

        Raises:
            StoreUnavailableError: no answer within ``timeout_s``.
            FastPathFailed: anything else went wrong; write the ordinary way.
        """
        status = await self._bounded(self._send(statement.sql, statement.arguments(values), fetch=False), timeout_s)
        return int(status.rpartition(" ")[2])  # "UPDATE <rows>"

    async def _bounded(self, work: Coroutine[Any, Any, T], timeout_s: float) -> T:
        try:
            async with asyncio.timeout(timeout_s):
                return await unwaited_cleanup(work)
        except TimeoutError:
            raise StoreUnavailableError(f"SQL store (postgresql) did not answer within {timeout_s} s") from None
        except Exception as error:
            kind = type(error).__name__
            logger.debug("SQL store (postgresql): the driver's statement failed (%s); sending it again", kind)
            raise FastPathFailed from error

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
