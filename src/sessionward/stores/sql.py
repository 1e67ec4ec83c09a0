"""SQL stores through SQLAlchemy 2 (async): SQLite, PostgreSQL, MySQL/MariaDB.

One table holds live sessions and tombstones, keyed by the SHA-256 storage key, with
indexes on ``kept_until`` (purge costs what it removes), ``user_id`` (the per-user
index) and ``handle``. Data and metadata are JSON text; never pickled. Rows are mapped
to entries and back in :mod:`sessionward.stores._sql_rows`.

Concurrency:

* Data writes try one optimistic statement first: ``UPDATE … WHERE version = :seen``
  with the data the request loaded plus its changes. When another writer came in
  between, the row is read ``FOR UPDATE`` and only this request's keys are applied on
  top, in one transaction, so racing writers of different keys both keep their change
  and the fallback never loops.
* A touch (idle clock only) updates metadata columns and never conflicts with data
  writes.
* Every write to a session requires ``tomb IS NULL``: a session ended by a concurrent
  logout is never brought back.
* ``establish`` (login, rotation, renewal) makes its first write a conditional
  ``UPDATE … WHERE key = :old AND tomb IS NULL AND version = :seen``: the precondition
  and the retirement in one statement, ordered by the row lock, so a logout or a racing
  renewal that committed first makes it match nothing, and the transaction writes
  nothing else.
* ``establish`` (of an authenticated session) and ``end_user`` run in one transaction holding a per-user lock
  — the user's row of ``<prefix>user_locks``, locked by an upsert on PostgreSQL and
  MySQL, the database write lock (``BEGIN IMMEDIATE``) on SQLite — so the
  multiple-login limit holds across any number of app processes and servers.
  On SQLite, one process's writers also queue on an :class:`asyncio.Lock` rather
  than in SQLite's sleeping busy handler.
* MySQL runs at ``READ COMMITTED`` so that a statement after a lock wait sees what the
  lock holder committed (``REPEATABLE READ`` would keep an older snapshot), and
  SQLAlchemy's asyncmy dialect connects with ``CLIENT_FOUND_ROWS`` so that an
  ``UPDATE`` reports matched rows, not changed rows (a touch that writes the same
  values still counts as found).
* A counter's hit (``count_hit``) is one upsert on ``<prefix>counters``: insert at 1, or
  add one, or start a new window, decided inside the statement under the row's lock,
  so racing hits from any number of connections are all counted.
* Deadlocks and serialization failures are retried a few times; anything else that
  means the database is down or slow becomes :class:`StoreUnavailableError`, and every
  operation runs under the store's timeout, so nothing hangs.

Round trips:

* A read is one statement, its ``SELECT`` alone: on PostgreSQL the connection is switched
  to autocommit (a flag in the driver, no round trip), on MySQL reads have a pool of their
  own whose connections are in autocommit from the start, on SQLite they skip the write
  lock. Every read is a single statement, so it needs no transaction to be consistent.
* The writes of a request's common case are one statement too, sent the same way, with
  no ``BEGIN`` or ``COMMIT`` around them: a touch of the idle clock, and a data write that
  finds the version it read. A single statement is atomic by itself, and both are safe to
  send again (a touch writes the same values; a data write is guarded by the version it
  read, and its fallback applies the same keys), so a request that reads and writes costs
  two round trips. Everything else (the locked fallback, login, logout, revocation) is
  one transaction.
* Pooled connections are not pinged before use (that is a round trip each time). A
  statement that finds its connection dead (the server restarted, a firewall cut it) is
  run again once on a fresh connection: a read always, a write when it failed before its
  ``COMMIT`` was sent, since the server then rolled it back. A write whose ``COMMIT`` was
  cut may or may not have happened and is not repeated: it is
  :class:`StoreUnavailableError`, never a write lost or made twice.
* Statements are built once per store, with bound parameters.
* On PostgreSQL with asyncpg and on a SQLite file with aiosqlite (the default drivers), a
  request's own statements (the read of its session, a touch, a data write that finds its
  version) are sent on the driver's own connection (from the same pool on PostgreSQL, a
  few of its own on SQLite): SQLAlchemy's execution layer costs several times the
  statement (:mod:`sessionward.stores._sql_fast`). Any failure there sends the statement
  again the ordinary way.

The schema is created by :meth:`SqlStore.setup` (``sessionward store init``), not on a
first request: an operation that finds a table missing raises
:class:`~sessionward.core.errors.StoreSchemaMissingError` (503 for a request), saying how to
create it. Only a store opened with ``create_schema`` (``SESSIONWARD_STORE_CREATE_SCHEMA``,
for development) creates it then, once, and carries on. Dialect differences live in
:mod:`sessionward.stores._sql_dialects`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sessionward.core.engine import Hits, SessionLimit
from sessionward.core.errors import StoreError, StoreSchemaMissingError, StoreUnavailableError
from sessionward.core.records import (
    EndReason,
    Entry,
    Expected,
    SessionRecord,
    Tombstone,
    Update,
    data_from_json,
    dumps,
    meta_to_json,
    stored_count,
    tombstone_from_json,
)
from sessionward.io._store_calls import unwaited_cleanup
from sessionward.stores._contract import Established, StoreStats, check_counter
from sessionward.stores._sql_dialects import (
    Statements,
    brief,
    counter_table,
    dialect_of,
    is_refusal,
    is_retryable,
    open_engine,
    tables,
)
from sessionward.stores._sql_fast import FastPath, FastPathFailed
from sessionward.stores._sql_rows import (
    decoded,
    expired,
    is_tombstone,
    loaded,
    merged,
    of_user,
    params,
    readable,
    record_row,
    tomb_row,
)
from sessionward.stores.base import SessionStore

logger = logging.getLogger("sessionward")
T = TypeVar("T")

_DEADLOCK_RETRIES = 5


class _Attempt:
    """How far one try of a transaction got: past its work, to its ``COMMIT``."""

    __slots__ = ("committing",)

    def __init__(self) -> None:
        self.committing = False


class SqlStore(SessionStore):
    """A session store on a relational database through SQLAlchemy's async engine.

    Args:
        engine: The async engine; for SQLite, one made by
            :func:`~sessionward.stores._sql_dialects.open_engine` (it sets up the write lock).
        table_prefix: Prefix of the two table names, so several stores can share a database.
        timeout_s: The most one store operation may take before it raises
            :class:`StoreUnavailableError`.
        create_schema: When an operation finds a table missing, create the schema and
            carry on (development), rather than raise :class:`StoreSchemaMissingError`.
        reader: An engine on the same database whose connections are in autocommit, for
            single statements: reads, and the writes of a request's common case
            (:meth:`from_url` opens one on MySQL, where switching a connection costs round
            trips). Without it, these use ``engine``: in autocommit on PostgreSQL and
            SQLite, in a transaction on MySQL. The store closes it with its own.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        table_prefix: str = "sessionward_",
        timeout_s: float = 2.0,
        create_schema: bool = False,
        reader: AsyncEngine | None = None,
    ) -> None:
        self.engine = engine
        self.create_schema = create_schema
        self.sql = dialect_of(engine)
        """What the database does differently (statements, locks)."""
        self.dialect = self.sql.name
        """The database's name: ``sqlite``, ``postgresql`` or ``mysql``."""
        self._own_reader = reader
        # Single-statement reads: no transaction around them (see the module docstring).
        self._reader = reader if reader is not None else engine.execution_options(**self.sql.read_options())
        # A single-statement write may skip the transaction only where the reader commits
        # each statement itself (a MySQL engine's own connections would roll it back).
        self._single_writes = reader is not None or not self.sql.reader_pool
        # One writer at a time (SQLite): queue this process's writers here, in order,
        # rather than in SQLite's busy handler, which sleeps in growing steps.
        self._write_gate: asyncio.Lock | None = asyncio.Lock() if self.sql.one_writer else None
        self.timeout_s = timeout_s
        self.metadata, self.sessions, self.locks = tables(table_prefix)
        self.counters = counter_table(self.metadata, table_prefix)
        self._q = Statements(self.sql, self.sessions, self.locks, self.counters)
        # A request's own statements skip SQLAlchemy's execution layer where the driver allows.
        self._fast = FastPath.on(
            self._reader,
            self._q.load,
            self._q.touch,
            self._q.save_seen,
            write_gate=self._write_gate,
            timeout_s=timeout_s,
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        setting: str = "SESSIONWARD_STORE",
        timeout_s: float = 2.0,
        table_prefix: str = "sessionward_",
        must_exist: bool = False,
        create_schema: bool = False,
    ) -> SqlStore:
        """Build a store from ``sqlite:///…``, ``postgresql://…`` or ``mysql://…``.

        ``postgres://`` and ``mariadb://`` are aliases; a ``+driver`` part may name either
        store's driver (``postgresql+asyncpg``, ``postgresql+psycopg``…). Opening creates
        nothing; :meth:`setup` creates the schema (and a SQLite file's folder).

        The URL's query may size the connection pool: ``pool_size`` (connections kept
        open, default 32), ``max_overflow`` (more for a burst, default 16) and
        ``pool_recycle`` (seconds before a connection is replaced, default 300; -1 never),
        for example ``postgresql://app@db/app?pool_size=40``. On MySQL, reads have a pool
        of their own of the same size.

        Args:
            url: The database URL.
            setting: What the URL came from, for error messages.
            timeout_s: See the class.
            table_prefix: See the class.
            must_exist: Refuse a SQLite file that does not exist (rather than create it
                on the first connection).
            create_schema: See the class.

        Raises:
            ConfigError: naming ``setting``, when the URL is malformed, names another
                database or driver, its driver is not installed (naming the extra), or a
                pool size is not a whole number.
            StoreSchemaMissingError: ``must_exist`` and the SQLite file does not exist.
        """
        engine = open_engine(url, setting=setting, timeout_s=timeout_s, must_exist=must_exist)
        reader = None
        if dialect_of(engine).reader_pool:
            reader = open_engine(url, setting=setting, timeout_s=timeout_s, must_exist=must_exist, autocommit=True)
        return cls(engine, table_prefix=table_prefix, timeout_s=timeout_s, create_schema=create_schema, reader=reader)

    # -- plumbing --------------------------------------------------------------------------

    async def _run(
        self, work: Callable[[AsyncConnection], Awaitable[T]], *, read_only: bool = False, single: bool = False
    ) -> T:
        """Run ``work`` in one transaction, under the timeout, retrying deadlocks.

        ``read_only`` work and ``single`` work (one statement that is safe to send twice)
        run on their own, in autocommit, without a transaction around them. Work that finds
        its pooled connection dead runs again once on a fresh one when it is one of these,
        or when it failed before its ``COMMIT`` was sent (the server rolled it back).
        """
        attempt = 0
        schema_created = False
        reconnected = False
        while True:
            progress = _Attempt()
            try:
                async with asyncio.timeout(self.timeout_s):
                    return await unwaited_cleanup(self._transaction(work, read_only, single, progress))
            except TimeoutError:
                raise StoreUnavailableError(
                    f"SQL store ({self.dialect}) did not answer within {self.timeout_s} s"
                ) from None
            except exc.DBAPIError as error:
                if error.connection_invalidated and not reconnected and not progress.committing:
                    # The server closed a pooled connection (a restart, an idle cut);
                    # SQLAlchemy has invalidated the pool's older connections too.
                    reconnected = True
                    logger.info("SQL store (%s): a pooled connection was closed; retrying", self.dialect)
                    continue
                if self.sql.is_missing_schema(error, self.engine.url):
                    if self.create_schema and not schema_created:
                        schema_created = True
                        logger.warning("SQL store (%s): creating the missing schema (create_schema)", self.dialect)
                        await self.setup()
                        continue
                    raise StoreSchemaMissingError(
                        f"SQL store ({self.dialect}): the schema is missing ({brief(error)})"
                    ) from error
                attempt += 1
                if is_retryable(error) and attempt < _DEADLOCK_RETRIES:
                    await asyncio.sleep(random.uniform(0, 0.01 * attempt))  # noqa: S311 - jitter, not a secret
                    continue
                if is_refusal(error):
                    raise StoreError(f"SQL store ({self.dialect}) refused a write: {brief(error)}") from error
                if "could not decode to utf-8" in str(error.orig).lower():
                    # SQLite keeps any bytes in a TEXT column; the row is corrupt, the store is fine.
                    raise StoreError(f"corrupt session row: {brief(error)}") from error
                raise StoreUnavailableError(f"SQL store ({self.dialect}) unavailable: {brief(error)}") from error
            except (exc.TimeoutError, OSError) as error:
                raise StoreUnavailableError(f"SQL store ({self.dialect}) unavailable: {brief(error)}") from error

    async def _transaction(
        self, work: Callable[[AsyncConnection], Awaitable[T]], read_only: bool, single: bool, progress: _Attempt, /
    ) -> T:
        """Run ``work``: a read or a single statement in autocommit, a write in one transaction.

        SQLite's writers, single statements included, queue on the write gate first.
        """
        if read_only:
            async with self._reader.connect() as connection:
                return await work(connection)
        if single and self._single_writes:
            if self._write_gate is None:
                async with self._reader.connect() as connection:
                    return await work(connection)
            async with self._write_gate, self._reader.connect() as connection:
                return await work(connection)
        if self._write_gate is None:
            async with self.engine.begin() as connection:
                result = await work(connection)
                progress.committing = True  # from here on, the outcome of a cut connection is unknown
                return result
        async with self._write_gate, self.engine.begin() as connection:
            result = await work(connection)
            progress.committing = True
            return result

    async def _lock_user(self, connection: AsyncConnection, user: str) -> None:
        """Hold the per-user lock until the transaction ends (a lone writer already holds all)."""
        if self._q.lock_user is not None:
            await connection.execute(self._q.lock_user, {"p_user_id": user})

    async def setup(self) -> None:
        """Create the tables and indexes if they do not exist (and a SQLite file's folder)."""
        self.sql.make_database_dir(self.engine.url)
        await self._run(lambda connection: connection.run_sync(self.metadata.create_all))

    async def drop(self) -> None:
        """Drop the tables (tests and ``store`` tooling only)."""
        await self._run(lambda connection: connection.run_sync(self.metadata.drop_all))

    async def close(self) -> None:
        if self._fast is not None:
            await self._fast.close()
        await self.engine.dispose()
        if self._own_reader is not None:
            await self._own_reader.dispose()

    # -- reading ---------------------------------------------------------------------------
    # Each read is one statement: it needs no transaction to see one consistent state.

    async def load(self, key: str, now: float) -> Entry | None:
        if self._fast is not None:
            with contextlib.suppress(FastPathFailed):
                row = await self._fast.row(key, self.timeout_s)
                return None if row is None else loaded(row, now)

        async def work(connection: AsyncConnection) -> Entry | None:
            row = (await connection.execute(self._q.load, {"p_key": key})).first()
            return None if row is None else loaded(row, now)

        return await self._run(work, read_only=True)

    async def find_handle(self, handle: str, now: float) -> SessionRecord | None:
        async def work(connection: AsyncConnection) -> SessionRecord | None:
            records = readable(await connection.execute(self._q.find_handle, {"p_handle": handle, "p_now": now}))
            return records[0] if records else None

        return await self._run(work, read_only=True)

    async def find_moved(self, handle: str, now: float) -> Tombstone | None:
        async def work(connection: AsyncConnection) -> Tombstone | None:
            for row in await connection.execute(self._q.find_moved, {"p_handle": handle, "p_now": now}):
                entry = decoded(row)
                if isinstance(entry, Tombstone) and entry.successor_key is not None:
                    return entry
            return None

        return await self._run(work, read_only=True)

    async def list_user(self, user: str, now: float) -> list[SessionRecord]:
        async def work(connection: AsyncConnection) -> list[SessionRecord]:
            return readable(await connection.execute(self._q.list_user, {"p_user_id": user, "p_now": now}), user)

        return await self._run(work, read_only=True)

    async def stats(self, now: float) -> StoreStats:
        async def work(connection: AsyncConnection) -> StoreStats:
            row = (await connection.execute(self._q.stats, {"p_now": now})).one()
            return StoreStats(
                live_sessions=row[0],
                authenticated_sessions=row[1],
                users=row[2],
                tombstones=row[3],
                counters=row[4],
            )

        return await self._run(work, read_only=True)

    # -- counters --------------------------------------------------------------------------

    async def count_hit(self, name: str, window_s: float, now: float) -> Hits:
        check_counter(name, window_s)
        values = {"p_name": name, "p_now": now, "p_resets_at": now + window_s}

        async def work(connection: AsyncConnection) -> Hits:
            result = await connection.execute(self._q.count_hit, values)
            if not self.sql.returning:
                # Read back while the row is still locked.
                result = await connection.execute(self._q.read_counter, values)
            hits, resets_at = result.one()
            try:
                return Hits(count=int(hits), resets_at=float(resets_at))
            except (TypeError, ValueError):
                raise StoreError(f"corrupt counter row {name[:16]}") from None

        return await self._run(work)

    async def reset_counter(self, name: str) -> None:
        check_counter(name)

        async def work(connection: AsyncConnection) -> None:
            await connection.execute(self._q.reset_counter, {"p_name": name})

        await self._run(work)

    async def _purge_counters(self, connection: AsyncConnection, now: float, batch_size: int) -> int:
        """Remove up to ``batch_size`` counters whose window has ended (a range scan of its index)."""
        c = self.counters.c
        due = sa.select(c.name).where(c.resets_at <= now).order_by(c.resets_at).limit(batch_size)
        names = list(await connection.execute(due))
        if not names:
            return 0
        # Re-checked on delete: a hit that started a new window meanwhile keeps its counter.
        query = sa.delete(self.counters).where(c.name.in_([row.name for row in names]), c.resets_at <= now)
        return int((await connection.execute(query)).rowcount)

    # -- writing ---------------------------------------------------------------------------

    async def save(self, key: str, update: Update) -> bool:
        common = {
            "p_key": key,
            "p_meta": meta_to_json(update.meta).decode(),
            "p_last_access_at": update.meta.last_access_at,
            "p_expires_at": update.expires_at,
            "p_kept_until": update.kept_until,
        }
        if not update.touches_data:
            if self._fast is not None:
                with contextlib.suppress(FastPathFailed):
                    return bool(await self._fast.update(self._fast.touch, common, self.timeout_s))

            async def touch(connection: AsyncConnection) -> bool:
                return bool((await connection.execute(self._q.touch, common)).rowcount)

            return await self._run(touch, single=True)

        if update.base_data is not None and await self._save_seen(update.base_data, update, common):
            return True  # the common case: nobody wrote since this request loaded, one statement

        async def locked(connection: AsyncConnection) -> bool:
            # Someone wrote in between: apply only this request's keys to what is there now.
            row = (await connection.execute(self._q.lock_data, {"p_key": key})).first()
            if row is None:
                return False
            changed = merged(data_from_json(row.data), update)
            version = stored_count(row.version, "version") + 1
            await connection.execute(
                self._q.save_locked, common | {"p_data": dumps(changed).decode(), "p_version": version}
            )
            return True

        return await self._run(locked)

    async def _save_seen(self, base_data: dict[str, Any], update: Update, common: dict[str, Any]) -> bool:
        """Write the data if the row still has the version the request loaded; tell whether it did."""
        seen = update.base_version
        values = common | {"p_data": dumps(merged(base_data, update)).decode()}
        values |= {"p_seen": seen, "p_version": seen + 1}
        if self._fast is not None:
            with contextlib.suppress(FastPathFailed):
                return bool(await self._fast.update(self._fast.save_seen, values, self.timeout_s))

        async def optimistic(connection: AsyncConnection) -> int:
            return int((await connection.execute(self._q.save_seen, values)).rowcount)

        return bool(await self._run(optimistic, single=True))

    async def establish(
        self,
        record: SessionRecord,
        *,
        retire: Tombstone | None = None,
        limit: SessionLimit | None = None,
        expect: Expected | None = None,
    ) -> Established:
        user = record.meta.user

        async def work(connection: AsyncConnection) -> Established:
            displaced: list[SessionRecord] = []
            if user is not None:
                # Every move of a user's session, not only a login under a limit: "end all
                # of the user's sessions" holds the same lock, so it sees either the old
                # key (then this move finds it ended) or the new one (and ends it).
                await self._lock_user(connection, user)
            if expect is not None and not await self._claim(connection, expect, record, retire):
                found = (await connection.execute(self._q.load, {"p_key": expect.key})).first()
                return Established(applied=False, found=decoded(found))
            # A refused login raises here, after the claim: the transaction rolls it back.
            if limit is not None and user is not None:
                displaced = await self._enforce_limit(connection, record, retire, limit, user)
            if expect is None and retire is not None and retire.key != record.key:
                await self._bury(connection, [retire.key], retire)
            if expect is None or expect.key != record.key:
                # Overwriting bumps the stored version, so a writer that loaded the old row
                # cannot pass the optimistic check against the new one.
                await connection.execute(self._q.establish, params(record_row(record)))
            return Established(displaced=displaced)

        return await self._run(work)

    async def _claim(
        self, connection: AsyncConnection, expect: Expected, record: SessionRecord, retire: Tombstone | None
    ) -> bool:
        """Make a move's first write only if its precondition holds; tell whether it did.

        One conditional ``UPDATE`` on the expected row: it retires the old key (a move to
        a new ID) or rewrites the record in place (a login that keeps its ID). The row
        lock it takes orders it with a racing logout or move: whichever commits second
        finds the row changed and matches nothing.
        """
        if expect.key == record.key:
            statement, row = self._q.claim_in_place, record_row(record)
        else:
            if retire is None or retire.key != expect.key:
                raise ValueError("expect.key must be the retired key or the record's own key")
            statement, row = self._q.claim_retire, tomb_row(retire.key, retire)
        result = await connection.execute(statement, params(row) | {"p_seen": expect.version})
        return bool(result.rowcount)

    async def _enforce_limit(
        self,
        connection: AsyncConnection,
        record: SessionRecord,
        retire: Tombstone | None,
        limit: SessionLimit,
        user: str,
    ) -> list[SessionRecord]:
        excluded = [record.key] + ([retire.key] if retire else [])
        values = {"p_user_id": user, "p_now": limit.now, "p_excluded": excluded}
        # Another user's session is neither counted nor displaced, whatever its user_id says.
        rows = of_user(await connection.execute(self._q.others_of_user, values), user)
        victims = list(limit.displace(user, rows))  # rows come oldest first (ORDER BY)
        if not victims:
            return []
        await self._bury(connection, [row.key for row in victims], limit.tombstone("", user))
        return readable(victims, user)

    async def _bury(self, connection: AsyncConnection, keys: list[str], tomb: Tombstone) -> None:
        """Turn the rows under ``keys`` into tombstones, inserting one where none exists."""
        for key in keys:
            await connection.execute(self._q.bury, params(tomb_row(key, tomb)))

    async def end(self, tombstone: Tombstone) -> SessionRecord | None:
        async def work(connection: AsyncConnection) -> SessionRecord | None:
            row = (await connection.execute(self._q.lock_row, {"p_key": tombstone.key})).first()
            if row is None:
                # Another ender may insert concurrently; the first tombstone stays.
                await connection.execute(self._q.insert_tomb, params(tomb_row(tombstone.key, tombstone)))
                return None
            if row.tomb is not None and is_tombstone(row):
                return None
            records = readable([row]) if row.tomb is None else []
            await self._bury(connection, [tombstone.key], tombstone)
            return records[0] if records else None

        return await self._run(work)

    async def discard(self, tombstone: Tombstone) -> None:
        # Without reading the row first: what is there may not even decode as text.
        async def work(connection: AsyncConnection) -> None:
            await connection.execute(self._q.delete, {"p_key": tombstone.key})
            await connection.execute(self._q.insert_tomb, params(tomb_row(tombstone.key, tombstone)))

        await self._run(work)

    async def end_user(
        self,
        user: str,
        reason: EndReason,
        now: float,
        tombstone_expires_at: float,
        *,
        keep_key: str | None = None,
    ) -> list[SessionRecord]:
        async def work(connection: AsyncConnection) -> list[SessionRecord]:
            # Under the user lock, so a login racing with "log out everywhere" cannot
            # slip a session in half way, and row locks are never taken in two orders.
            await self._lock_user(connection, user)
            c = self.sessions.c
            query = sa.select(self.sessions).where(c.user_id == user, c.tomb.is_(None))
            if keep_key is not None:
                query = query.where(c.key != keep_key)
            # Another user's session is left alone, whatever its user_id says.
            rows = of_user(await connection.execute(query.order_by(c.created_at, c.key)), user)
            tomb = Tombstone(key="", reason=reason, user=user, ended_at=now, expires_at=tombstone_expires_at)
            await self._bury(connection, [row.key for row in rows], tomb)
            return [record for record in readable(rows, user) if record.expires_at > now]

        return await self._run(work)

    def expired_keys_query(self, now: float, batch_size: int) -> sa.Select[Any]:
        """Return the query that picks a purge batch: a range scan of the ``kept_until`` index."""
        c = self.sessions.c
        due = sa.select(c.key, c.tomb, c.expires_at).where(c.kept_until <= now)
        return due.order_by(c.kept_until).limit(batch_size)

    async def purge_expired(self, now: float, batch_size: int = 500) -> int:
        async def work(connection: AsyncConnection) -> int:
            c = self.sessions.c
            # The index range holds only rows due now: the cost is what the batch settles.
            rows = list(await connection.execute(self.expired_keys_query(now, batch_size)))
            gone = [row.key for row in rows if row.tomb is None or expired(row.expires_at, now)]
            settled = 0
            if gone:
                # Re-checked on delete: a session extended meanwhile stays.
                query = sa.delete(self.sessions).where(c.key.in_(gone), c.kept_until <= now)
                deleted = await connection.execute(query)
                settled += int(deleted.rowcount)
            for row in rows:
                if row.tomb is not None and not expired(row.expires_at, now):
                    settled += await self._drop_seal(connection, row.key, row.tomb)
            if len(rows) < batch_size:
                settled += await self._purge_counters(connection, now, batch_size - len(rows))
            return settled

        return await self._run(work)

    async def _drop_seal(self, connection: AsyncConnection, key: str, text: str) -> int:
        """Rewrite a tombstone whose grace is over without its seal; it stays until it expires."""
        c = self.sessions.c
        try:
            tomb = tombstone_from_json(text)
        except StoreError:
            logger.warning("purging corrupt tombstone %s", key[:16])
            result = await connection.execute(sa.delete(self.sessions).where(c.key == key, c.tomb == text))
            return int(result.rowcount)
        unsealed = tomb_row(key, tomb.unsealed())
        result = await connection.execute(
            sa.update(self.sessions)
            .where(c.key == key, c.tomb == text)  # unless ended or rewritten meanwhile
            .values(tomb=unsealed["tomb"], kept_until=unsealed["kept_until"])
        )
        return int(result.rowcount)
