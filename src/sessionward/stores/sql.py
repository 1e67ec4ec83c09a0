"""SQL stores through SQLAlchemy 2 (async): SQLite, PostgreSQL, MySQL/MariaDB.

One table holds live sessions and tombstones, keyed by the SHA-256 storage key, with
indexes on ``expires_at`` (purge costs what it removes), ``user_id`` (the per-user index
of F12) and ``handle``. Data and metadata are JSON text; never pickled.

Concurrency:

* Data writes are optimistic: ``UPDATE … WHERE version = :seen``, using the version
  the request loaded, so the common case is one statement. On conflict the row is read
  again and only this request's keys are applied on top, so racing writers of different
  keys both keep their change (F18).
* A touch (idle clock only) updates two columns and never conflicts with data writes.
* Every write requires ``tomb IS NULL``: a session ended by a concurrent logout is
  never brought back.
* ``establish`` (login) runs in one transaction holding a per-user lock — a row of
  ``<prefix>user_locks`` taken ``FOR UPDATE`` on PostgreSQL and MySQL, the database write
  lock (``BEGIN IMMEDIATE``) on SQLite — so the multiple-login limit holds across any
  number of app processes and servers (F11).

The schema is created only by :meth:`SqlStore.setup` (``sessionward store init``), never
on a first request.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from sessionward.engine import SessionLimit
from sessionward.errors import ConfigError, LoginRefusedError, StoreError, StoreUnavailableError
from sessionward.ids import handle_of
from sessionward.records import (
    EndReason,
    Entry,
    SessionRecord,
    Tombstone,
    Update,
    data_from_json,
    dumps,
    meta_from_json,
    meta_to_json,
    tombstone_from_json,
    tombstone_to_json,
)
from sessionward.stores.base import Established, SessionStore, StoreStats

logger = logging.getLogger("sessionward")
T = TypeVar("T")

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "mysql": "mysql+asyncmy",
    "mariadb": "mysql+asyncmy",
}
_MAX_OPTIMISTIC_RETRIES = 100

_BigText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def _tables(prefix: str) -> tuple[sa.MetaData, sa.Table, sa.Table]:
    metadata = sa.MetaData()
    sessions = sa.Table(
        f"{prefix}sessions",
        metadata,
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("handle", sa.String(16), nullable=False, index=True),
        sa.Column("user_id", sa.String(255), nullable=True, index=True),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("last_access_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False, default=0),
        sa.Column("meta", _BigText, nullable=True),
        sa.Column("data", _BigText, nullable=True),
        sa.Column("tomb", sa.Text, nullable=True),
    )
    locks = sa.Table(
        f"{prefix}user_locks",
        metadata,
        sa.Column("user_id", sa.String(255), primary_key=True),
    )
    return metadata, sessions, locks


class SqlStore(SessionStore):
    """A session store on a relational database through SQLAlchemy's async engine."""

    def __init__(self, engine: AsyncEngine, *, table_prefix: str = "sessionward_") -> None:
        self.engine = engine
        # Reads skip SQLite's BEGIN IMMEDIATE (see _configure_sqlite): they need no write lock.
        self._reader = engine.execution_options(sessionward_readonly=True)
        self.dialect = engine.dialect.name
        self.metadata, self.sessions, self.locks = _tables(table_prefix)

    @classmethod
    def from_url(cls, url: str, *, setting: str = "SESSIONWARD_STORE", timeout_s: float = 2.0) -> SqlStore:
        """Build a store from ``sqlite:///…``, ``postgresql://…`` or ``mysql://…``."""
        try:
            parsed = make_url(url)
        except exc.ArgumentError:
            raise ConfigError(setting, f"{url!r} is not a valid database URL") from None
        backend = parsed.get_backend_name()
        if parsed.drivername in _DRIVERS:
            parsed = parsed.set(drivername=_DRIVERS[parsed.drivername])
        elif backend not in ("sqlite", "postgresql", "mysql"):
            raise ConfigError(setting, f"{url!r}: unsupported database {backend!r}")
        options: dict[str, Any] = {"pool_pre_ping": backend != "sqlite", "pool_timeout": timeout_s}
        if backend == "sqlite":
            database = parsed.database or ""
            options = {"connect_args": {"timeout": timeout_s}}
            if database in ("", ":memory:"):
                options["poolclass"] = StaticPool
            else:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        elif backend == "postgresql":
            options["connect_args"] = {"timeout": timeout_s, "command_timeout": max(timeout_s, 5.0)}
        else:
            options["connect_args"] = {"connect_timeout": max(1, int(timeout_s))}
        try:
            engine = create_async_engine(parsed, **options)
        except (exc.ArgumentError, ImportError) as error:
            raise ConfigError(setting, f"{url!r} cannot be opened: {error}") from None
        if backend == "sqlite":
            _configure_sqlite(engine)
        return cls(engine)

    # -- plumbing --------------------------------------------------------------------------

    async def _run(self, work: Callable[[AsyncConnection], Awaitable[T]], *, read_only: bool = False) -> T:
        try:
            async with (self._reader if read_only else self.engine).begin() as connection:
                return await work(connection)
        except (exc.OperationalError, exc.InterfaceError, exc.ProgrammingError, exc.TimeoutError, OSError) as error:
            raise StoreUnavailableError(f"SQL store ({self.dialect}) unavailable: {_brief(error)}") from error

    @asynccontextmanager
    async def _user_lock(self, connection: AsyncConnection, user: str) -> AsyncIterator[None]:
        if self.dialect != "sqlite":
            # Upsert the lock row, then hold it: concurrent logins of one user queue here.
            await self._insert_ignore(connection, self.locks, {"user_id": user})
            await connection.execute(
                sa.select(self.locks.c.user_id).where(self.locks.c.user_id == user).with_for_update()
            )
        yield

    async def _insert_ignore(self, connection: AsyncConnection, table: sa.Table, values: dict[str, Any]) -> None:
        statement: Any
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            statement = pg_insert(table).values(**values).on_conflict_do_nothing()
        elif self.dialect == "mysql":
            statement = sa.insert(table).values(**values).prefix_with("IGNORE")
        else:
            statement = sa.insert(table).values(**values).prefix_with("OR IGNORE")
        await connection.execute(statement)

    async def setup(self) -> None:
        """Create the tables and indexes if they do not exist."""
        await self._run(lambda connection: connection.run_sync(self.metadata.create_all))

    async def drop(self) -> None:
        """Drop the tables (tests and ``store`` tooling only)."""
        await self._run(lambda connection: connection.run_sync(self.metadata.drop_all))

    async def close(self) -> None:
        await self.engine.dispose()

    # -- reading ---------------------------------------------------------------------------

    def _entry(self, row: sa.Row[Any], now: float) -> Entry | None:
        if row.expires_at <= now:
            return None
        if row.tomb is not None:
            return tombstone_from_json(row.tomb)
        return self._record(row)

    def _record(self, row: sa.Row[Any]) -> SessionRecord:
        meta = meta_from_json(row.meta)
        meta.last_access_at = row.last_access_at
        return SessionRecord(
            key=row.key, meta=meta, data=data_from_json(row.data), expires_at=row.expires_at, version=row.version
        )

    async def load(self, key: str, now: float) -> Entry | None:
        async def work(connection: AsyncConnection) -> Entry | None:
            row = (await connection.execute(sa.select(self.sessions).where(self.sessions.c.key == key))).first()
            return None if row is None else self._entry(row, now)

        return await self._run(work, read_only=True)

    async def find_handle(self, handle: str, now: float) -> SessionRecord | None:
        async def work(connection: AsyncConnection) -> SessionRecord | None:
            c = self.sessions.c
            row = (
                await connection.execute(
                    sa.select(self.sessions).where(c.handle == handle, c.tomb.is_(None), c.expires_at > now)
                )
            ).first()
            return None if row is None else self._record(row)

        return await self._run(work, read_only=True)

    async def list_user(self, user: str, now: float) -> list[SessionRecord]:
        async def work(connection: AsyncConnection) -> list[SessionRecord]:
            c = self.sessions.c
            rows = await connection.execute(
                sa.select(self.sessions)
                .where(c.user_id == user, c.tomb.is_(None), c.expires_at > now)
                .order_by(c.created_at, c.key)
            )
            return [self._record(row) for row in rows]

        return await self._run(work, read_only=True)

    async def stats(self, now: float) -> StoreStats:
        async def work(connection: AsyncConnection) -> StoreStats:
            c = self.sessions.c
            live = sa.and_(c.tomb.is_(None), c.expires_at > now)
            row = (
                await connection.execute(
                    sa.select(
                        sa.func.count().filter(live),
                        sa.func.count().filter(sa.and_(live, c.user_id.is_not(None))),
                        sa.func.count(sa.distinct(c.user_id)).filter(live),
                        sa.func.count().filter(sa.and_(c.tomb.is_not(None), c.expires_at > now)),
                    )
                )
            ).one()
            return StoreStats(live_sessions=row[0], authenticated_sessions=row[1], users=row[2], tombstones=row[3])

        return await self._run(work, read_only=True)

    # -- writing ---------------------------------------------------------------------------

    def _row_values(self, record: SessionRecord) -> dict[str, Any]:
        return {
            "key": record.key,
            "handle": handle_of(record.key),
            "user_id": record.meta.user,
            "created_at": record.meta.created_at,
            "last_access_at": record.meta.last_access_at,
            "expires_at": record.expires_at,
            "version": record.version,
            "meta": meta_to_json(record.meta).decode(),
            "data": dumps(record.data).decode(),
            "tomb": None,
        }

    async def save(self, key: str, update: Update) -> bool:
        c = self.sessions.c
        common = {
            "meta": meta_to_json(update.meta).decode(),
            "last_access_at": update.meta.last_access_at,
            "expires_at": update.expires_at,
        }
        if not update.touches_data:

            async def touch(connection: AsyncConnection) -> bool:
                result = await connection.execute(
                    sa.update(self.sessions).where(c.key == key, c.tomb.is_(None)).values(**common)
                )
                return bool(result.rowcount)

            return await self._run(touch)

        version = update.base_version
        data = update.base_data
        for _ in range(_MAX_OPTIMISTIC_RETRIES):
            if data is None:
                current = await self._run(
                    lambda connection: _first(
                        connection, sa.select(c.data, c.version).where(c.key == key, c.tomb.is_(None))
                    ),
                    read_only=True,
                )
                if current is None:
                    return False
                data, version = data_from_json(current.data), current.version
            merged = {**data, **update.set}
            for name in update.delete:
                merged.pop(name, None)
            payload = dumps(merged).decode()
            seen = version

            async def write(connection: AsyncConnection, payload: str = payload, seen: int = seen) -> int:
                result = await connection.execute(
                    sa.update(self.sessions)
                    .where(c.key == key, c.tomb.is_(None), c.version == seen)
                    .values(data=payload, version=seen + 1, **common)
                )
                return int(result.rowcount)

            if await self._run(write):
                return True
            data = None  # someone else wrote in between: re-read and apply our keys on top
        raise StoreError(f"session {key[:16]}: gave up after {_MAX_OPTIMISTIC_RETRIES} conflicting writes")

    async def establish(
        self,
        record: SessionRecord,
        *,
        retire: Tombstone | None = None,
        limit: SessionLimit | None = None,
    ) -> Established:
        user = record.meta.user

        async def work(connection: AsyncConnection) -> Established:
            displaced: list[SessionRecord] = []
            if limit is not None and user is not None:
                async with self._user_lock(connection, user):
                    displaced = await self._enforce_limit(connection, record, retire, limit, user)
            if retire is not None and retire.key != record.key:
                await self._bury(connection, [retire.key], retire)
            values = self._row_values(record)
            result = await connection.execute(
                sa.update(self.sessions).where(self.sessions.c.key == record.key).values(**values)
            )
            if not result.rowcount:
                await connection.execute(sa.insert(self.sessions).values(**values))
            return Established(displaced=displaced)

        return await self._run(work)

    async def _enforce_limit(
        self,
        connection: AsyncConnection,
        record: SessionRecord,
        retire: Tombstone | None,
        limit: SessionLimit,
        user: str,
    ) -> list[SessionRecord]:
        c = self.sessions.c
        excluded = [record.key] + ([retire.key] if retire else [])
        rows = list(
            await connection.execute(
                sa.select(self.sessions)
                .where(c.user_id == user, c.tomb.is_(None), c.expires_at > limit.now, c.key.not_in(excluded))
                .order_by(c.created_at, c.key)
            )
        )
        surplus = len(rows) + 1 - limit.max_sessions
        if surplus <= 0:
            return []
        if limit.prevent_login:
            raise LoginRefusedError(user, limit.max_sessions)
        victims = [self._record(row) for row in rows[:surplus]]
        tomb = Tombstone(
            key="", reason=EndReason.DISPLACED, user=user, ended_at=limit.now, expires_at=limit.tombstone_expires_at
        )
        await self._bury(connection, [v.key for v in victims], tomb)
        return victims

    async def _bury(self, connection: AsyncConnection, keys: list[str], tomb: Tombstone) -> None:
        """Turn the rows under ``keys`` into tombstones (inserting one where none exists)."""
        c = self.sessions.c
        for key in keys:
            values = {
                "tomb": _tomb_json(tomb, key),
                "data": None,
                "meta": None,
                "user_id": None,
                "expires_at": tomb.expires_at,
            }
            result = await connection.execute(sa.update(self.sessions).where(c.key == key).values(**values))
            if not result.rowcount:
                await connection.execute(
                    sa.insert(self.sessions).values(
                        key=key,
                        handle=handle_of(key),
                        created_at=tomb.ended_at,
                        last_access_at=tomb.ended_at,
                        version=0,
                        **values,
                    )
                )

    async def end(self, tombstone: Tombstone) -> SessionRecord | None:
        async def work(connection: AsyncConnection) -> SessionRecord | None:
            c = self.sessions.c
            query = sa.select(self.sessions).where(c.key == tombstone.key)
            if self.dialect != "sqlite":
                query = query.with_for_update()
            row = (await connection.execute(query)).first()
            if row is not None and row.tomb is not None:
                return None
            record = self._record(row) if row is not None else None
            await self._bury(connection, [tombstone.key], tombstone)
            return record

        return await self._run(work)

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
            c = self.sessions.c
            query = sa.select(self.sessions).where(c.user_id == user, c.tomb.is_(None))
            if keep_key is not None:
                query = query.where(c.key != keep_key)
            if self.dialect != "sqlite":
                query = query.with_for_update()
            rows = list(await connection.execute(query))
            tomb = Tombstone(key="", reason=reason, user=user, ended_at=now, expires_at=tombstone_expires_at)
            await self._bury(connection, [row.key for row in rows], tomb)
            return [self._record(row) for row in rows if row.expires_at > now]

        return await self._run(work)

    async def purge_expired(self, now: float, batch_size: int = 500) -> int:
        async def work(connection: AsyncConnection) -> int:
            c = self.sessions.c
            keys = [
                row.key
                for row in await connection.execute(sa.select(c.key).where(c.expires_at <= now).limit(batch_size))
            ]
            if not keys:
                return 0
            result = await connection.execute(sa.delete(self.sessions).where(c.key.in_(keys), c.expires_at <= now))
            return int(result.rowcount)

        return await self._run(work)


def _tomb_json(tomb: Tombstone, key: str) -> str:
    fields = orjson.loads(tombstone_to_json(tomb))
    fields["key"] = key
    return orjson.dumps(fields).decode()


async def _first(connection: AsyncConnection, query: sa.Select[Any]) -> sa.Row[Any] | None:
    row: sa.Row[Any] | None = (await connection.execute(query)).first()
    return row


def _configure_sqlite(engine: AsyncEngine) -> None:
    # pysqlite's implicit transactions start late and as DEFERRED; take the write lock at
    # BEGIN instead, so that a login's limit check and registration are one serialized step.
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        if not connection.get_execution_options().get("sessionward_readonly"):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def _brief(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error)
    return text.splitlines()[0][:200] if text else type(error).__name__
