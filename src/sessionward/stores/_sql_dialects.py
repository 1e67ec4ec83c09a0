"""What differs between SQLite, PostgreSQL and MySQL/MariaDB, in one place.

The SQL store (:mod:`sessionward.stores.sql`) states what it does once; a :class:`Dialect`
turns that into one database's statements and settings: opening an engine from a URL
with timeouts on every driver, upserts, the per-user lock, row locks, and what a driver
error means. There is one frozen instance per database (:data:`DIALECTS`); the store asks
it, and never compares a database's name.

A URL's scheme is normalised before anything else is decided: ``postgres`` is
``postgresql`` and ``mariadb`` is ``mysql`` (``SQL_DATABASES`` of
:mod:`sessionward.stores._schemes`), so an alias gets the same driver, timeouts and
isolation level as the name it stands for.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, QueuePool

from sessionward.core.errors import ConfigError, StoreSchemaMissingError, StoreUnavailableError
from sessionward.core.extras import require
from sessionward.stores._schemes import SQL_DATABASES, SQL_EXTRAS
from sessionward.stores._sql_rows import BURIED_COLUMNS, ESTABLISHED_COLUMNS, SAVED_COLUMNS

Q = TypeVar("Q", bound=sa.Select[Any])

# What each driver imports when it first connects: checked when the engine is made, so a
# missing one is named with its extra at start-up rather than on the first request.
_DRIVER_MODULES = {
    "aiosqlite": ("aiosqlite", "greenlet"),
    "asyncpg": ("asyncpg", "greenlet"),
    "asyncmy": ("asyncmy", "greenlet"),
    "pysqlite": ("sqlite3",),
    "psycopg": ("psycopg",),
    "pymysql": ("pymysql",),
}
# "Table or view does not exist": PostgreSQL's SQLSTATE, MySQL's error number.
_MISSING_TABLE_SQLSTATES = frozenset({"42P01"})
_MISSING_TABLE_MYSQL_ERRORS = frozenset({1146})
# PostgreSQL SQLSTATEs and MySQL error numbers that mean "retry the transaction".
_RETRY_SQLSTATES = frozenset({"40001", "40P01"})
_RETRY_MYSQL_ERRORS = frozenset({1213})

_BigText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")

POOL_DEFAULTS = {"pool_size": 32, "max_overflow": 16, "pool_recycle": 300}
"""The connection pool's sizes, unless the URL's query sets them (``?pool_size=40``).

``pool_size`` connections stay open once opened: as many as the requests that talk to the
database at the same moment, so that a busy server does not close and reopen connections
(SQLAlchemy's default of 5 did, under 32 requests in flight). ``max_overflow`` more open for
a burst and close when they come back. ``pool_recycle`` (seconds) replaces a connection
older than that at its next checkout, before a firewall's or the server's idle timeout
cuts it (-1: never).
"""


@dataclass(frozen=True, slots=True)
class Dialect:
    """One database's statements and settings, where they differ from the others'.

    This base class speaks ``INSERT … ON CONFLICT`` (PostgreSQL, SQLite); MySQL's
    subclass speaks ``ON DUPLICATE KEY``.

    Attributes:
        name: SQLAlchemy's name of the database: ``sqlite``, ``postgresql`` or ``mysql``.
        driver: The async store's driver.
        sync_driver: The blocking store's driver (``sessionward._sync.stores.sql``).
        one_writer: The database lets one writer in at a time, holding all of it
            (SQLite, whose writers ``BEGIN IMMEDIATE``): a writer takes no row lock and
            no user lock row, and a process's writers queue on a lock of their own.
        returning: An upsert can return the row it wrote (``RETURNING``).
        reader_pool: Single statements (reads, common-case writes) get a pool of their own whose connections
            are in autocommit from the start (MySQL, where switching a connection to
            autocommit and back costs round trips).
    """

    name: str
    driver: str
    sync_driver: str
    one_writer: bool = False
    returning: bool = True
    reader_pool: bool = False

    # -- engines ------------------------------------------------------------------------------

    def connect_args(self, timeout_s: float, *, blocking: bool) -> dict[str, Any]:
        """Return the driver's connection arguments that bound connecting and every statement."""
        raise NotImplementedError

    def engine_options(self, url: sa.URL, *, timeout_s: float, must_exist: bool) -> dict[str, Any]:
        """Return the engine's options besides ``connect_args`` (pooling, isolation).

        No ``pool_pre_ping``: it costs a round trip per checkout. A connection the server
        closed is found dead by the statement that uses it, and the store runs that
        statement again on a fresh one where that is safe (:class:`~sessionward.stores.sql.SqlStore`).
        """
        del url, must_exist
        return {"pool_timeout": timeout_s}

    def read_options(self) -> dict[str, Any]:
        """Return the execution options of single statements on the writers' pool.

        PostgreSQL's drivers switch to autocommit by setting a flag, without a round trip:
        a read is then its ``SELECT`` alone, a write its ``UPDATE``, no ``BEGIN``/``COMMIT``
        around them.
        """
        return {"isolation_level": "AUTOCOMMIT"}

    def configure(self, engine: sa.Engine, *, timeout_s: float) -> None:
        """Set up a new engine's connections (nothing to do but on SQLite)."""

    def make_database_dir(self, url: sa.URL) -> None:
        """Create what the database needs before its schema (a SQLite file's folder)."""

    def is_missing_schema(self, error: exc.DBAPIError, url: sa.URL) -> bool:
        """Tell whether the database said the store's tables do not exist."""
        del url
        original = error.orig
        if getattr(original, "sqlstate", None) in _MISSING_TABLE_SQLSTATES:
            return True
        args: tuple[Any, ...] = getattr(original, "args", ())
        return bool(args) and args[0] in _MISSING_TABLE_MYSQL_ERRORS

    # -- statements ---------------------------------------------------------------------------

    def _insert(self, table: sa.Table) -> Any:
        """Return the dialect's own INSERT construct (with its conflict clauses)."""
        raise NotImplementedError

    def upsert(self, table: sa.Table, values: dict[str, Any], update: Callable[[Any], dict[str, Any]]) -> sa.Executable:
        """Return an insert that, on a primary-key conflict, sets ``update(new_values)``.

        ``update`` receives the dialect's handle on the proposed row (``excluded`` or
        ``inserted``) and returns the column assignments.
        """
        proposed = self._insert(table).values(**values)
        keys = list(table.primary_key.columns)
        statement: sa.Executable = proposed.on_conflict_do_update(index_elements=keys, set_=update(proposed.excluded))
        return statement

    def insert_ignore(self, table: sa.Table, values: dict[str, Any]) -> sa.Executable:
        """Return an insert that does nothing when the primary key exists."""
        statement: sa.Executable = self._insert(table).values(**values).on_conflict_do_nothing()
        return statement

    def lock_user(self, locks: sa.Table, user: Any) -> sa.Executable | None:
        """Return the statement that takes the user's lock row exclusively (creating it if new).

        An upsert that updates on conflict takes the row's exclusive lock at once. INSERT
        IGNORE followed by SELECT … FOR UPDATE deadlocks on MySQL: waiters on a duplicate key
        get shared locks and then all try to upgrade them. ``None`` where the writer
        already holds the whole database.
        """
        if self.one_writer:
            return None
        return self.upsert(locks, {"user_id": user}, lambda proposed: {"user_id": proposed.user_id})

    def for_update(self, query: Q) -> Q:
        """Return ``query`` locking the rows it reads (as is where the writer holds the database)."""
        return query if self.one_writer else query.with_for_update()

    def count_hit(self, counters: sa.Table, name: Any, now: Any, resets_at: Any) -> sa.Executable:
        """Return the one statement that counts a hit on counter ``name`` at ``now``.

        The values may be bound parameters, for a statement built once.

        An insert that, when the counter exists, adds one to it, or starts it again at 1
        with a new window end when its window has ended: one atomic statement, so racing
        hits from any number of connections are all counted (the row lock orders them).
        Where the dialect has ``returning``, it returns the counter after the hit; else the
        caller reads the row back in the same transaction, which still holds the row's lock.
        """
        c = counters.c
        ended = c.resets_at <= now
        proposed = self._insert(counters).values(name=name, hits=1, resets_at=resets_at)
        statement: sa.Executable = proposed.on_conflict_do_update(
            index_elements=[c.name],
            set_={
                "hits": sa.case((ended, 1), else_=c.hits + 1),
                "resets_at": sa.case((ended, proposed.excluded.resets_at), else_=c.resets_at),
            },
        ).returning(c.hits, c.resets_at)
        return statement


@dataclass(frozen=True, slots=True)
class _Sqlite(Dialect):
    def _insert(self, table: sa.Table) -> Any:
        return sqlite.insert(table)

    def connect_args(self, timeout_s: float, *, blocking: bool) -> dict[str, Any]:
        if blocking:
            # The engine's connections serve whichever WSGI thread holds them, one at a time.
            return {"timeout": timeout_s, "check_same_thread": False}
        return {"timeout": timeout_s}

    def engine_options(self, url: sa.URL, *, timeout_s: float, must_exist: bool) -> dict[str, Any]:
        database = url.database or ""
        if database in ("", ":memory:"):
            # One connection, handed to one transaction at a time: an in-memory database
            # lives in its connection, and sharing it (StaticPool) would interleave
            # concurrent transactions on it.
            # Never recycled: that would drop the database.
            return {
                "poolclass": QueuePool,
                "pool_size": 1,
                "max_overflow": 0,
                "pool_timeout": timeout_s,
                "pool_recycle": -1,
            }
        if must_exist and not Path(database).expanduser().is_file():
            # Checked before any connection: connecting would create the file.
            raise StoreSchemaMissingError(f"the SQLite database {database} does not exist")
        return {"pool_timeout": timeout_s}

    def read_options(self) -> dict[str, Any]:
        # The connections are in autocommit already (isolation_level None); a single
        # statement skips the BEGIN IMMEDIATE of a transaction (_configure_sqlite): a read
        # takes no write lock, a write holds it for that statement only.
        return {"sessionward_single_statement": True}

    def configure(self, engine: sa.Engine, *, timeout_s: float) -> None:
        _configure_sqlite(engine, busy_timeout_ms=int(timeout_s * 1000))

    def make_database_dir(self, url: sa.URL) -> None:
        database = url.database or ""
        if database in ("", ":memory:"):
            return
        folder = Path(database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreUnavailableError(
                f"SQL store (sqlite): cannot create {folder}: {error.strerror or error}"
            ) from None

    def is_missing_schema(self, error: exc.DBAPIError, url: sa.URL) -> bool:
        text = str(error.orig)
        if text.startswith("no such table"):
            return True
        # SQLite cannot create a file in a folder that does not exist: nobody ran setup.
        database = url.database or ""
        return (
            text.startswith("unable to open database file")
            and database not in ("", ":memory:")
            and not Path(database).expanduser().parent.exists()
        )


@dataclass(frozen=True, slots=True)
class _Postgresql(Dialect):
    def _insert(self, table: sa.Table) -> Any:
        return postgresql.insert(table)

    def connect_args(self, timeout_s: float, *, blocking: bool) -> dict[str, Any]:
        if blocking:
            # psycopg's connect timeout is in whole seconds; the statement timeout in ms.
            return {
                "connect_timeout": max(1, round(timeout_s)),
                "options": f"-c statement_timeout={int(timeout_s * 1000)}",
            }
        return {"timeout": timeout_s, "command_timeout": timeout_s}


@dataclass(frozen=True, slots=True)
class _Mysql(Dialect):
    def connect_args(self, timeout_s: float, *, blocking: bool) -> dict[str, Any]:
        # The connect timeout covers only the TCP connect; the read timeout covers a server
        # that accepts and then says nothing. Both take whole seconds.
        whole_seconds = max(1, round(timeout_s))
        timeouts = {"connect_timeout": whole_seconds, "read_timeout": whole_seconds}
        return {**timeouts, "write_timeout": whole_seconds} if blocking else timeouts

    def engine_options(self, url: sa.URL, *, timeout_s: float, must_exist: bool) -> dict[str, Any]:
        options = Dialect.engine_options(self, url, timeout_s=timeout_s, must_exist=must_exist)
        # A statement after a lock wait must see what the lock holder committed;
        # REPEATABLE READ would keep the snapshot from before the wait.
        return {**options, "isolation_level": "READ COMMITTED"}

    def read_options(self) -> dict[str, Any]:
        # Without a pool of its own, a read runs in a transaction (its COMMIT one more
        # round trip): switching a MySQL connection to autocommit and back costs three.
        return {}

    def upsert(self, table: sa.Table, values: dict[str, Any], update: Callable[[Any], dict[str, Any]]) -> sa.Executable:
        statement = mysql.insert(table).values(**values)
        upserted: sa.Executable = statement.on_duplicate_key_update(**update(statement.inserted))
        return upserted

    def insert_ignore(self, table: sa.Table, values: dict[str, Any]) -> sa.Executable:
        return sa.insert(table).values(**values).prefix_with("IGNORE")

    def count_hit(self, counters: sa.Table, name: Any, now: Any, resets_at: Any) -> sa.Executable:
        c = counters.c
        ended = c.resets_at <= now
        statement = mysql.insert(counters).values(name=name, hits=1, resets_at=resets_at)
        # MySQL applies the assignments in order, each seeing the ones before it: ``hits``
        # first, while ``resets_at`` still holds the old window's end that both test.
        counted: sa.Executable = statement.on_duplicate_key_update(
            [
                ("hits", sa.case((ended, 1), else_=c.hits + 1)),
                ("resets_at", sa.case((ended, statement.inserted.resets_at), else_=c.resets_at)),
            ]
        )
        return counted


DIALECTS: dict[str, Dialect] = {
    "sqlite": _Sqlite("sqlite", driver="aiosqlite", sync_driver="pysqlite", one_writer=True),
    "postgresql": _Postgresql("postgresql", driver="asyncpg", sync_driver="psycopg"),
    "mysql": _Mysql("mysql", driver="asyncmy", sync_driver="pymysql", returning=False, reader_pool=True),
}
"""Each database's dialect, by SQLAlchemy's name of it."""


def dialect_of(engine: sa.Engine | AsyncEngine) -> Dialect:
    """Return the dialect of the database ``engine`` talks to."""
    return DIALECTS[engine.dialect.name]


def tables(prefix: str) -> tuple[sa.MetaData, sa.Table, sa.Table]:
    """Return the schema: the sessions table and the per-user lock table."""
    metadata = sa.MetaData()
    sessions = sa.Table(
        f"{prefix}sessions",
        metadata,
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("handle", sa.String(16), nullable=False, index=True),
        sa.Column("user_id", sa.String(255), nullable=True, index=True),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("last_access_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        # When the row may go: a record's kept_until (kept to tell why it ended), a tombstone's expiry.
        sa.Column("kept_until", sa.Double, nullable=False, index=True),
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


def counter_table(metadata: sa.MetaData, prefix: str) -> sa.Table:
    """Add the fixed-window counters' table to ``metadata`` (``setup`` creates it with the rest)."""
    return sa.Table(
        f"{prefix}counters",
        metadata,
        # A SHA-256 hex digest of what is counted: never an address or a name in clear.
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("hits", sa.BigInteger, nullable=False),
        # When the window ends; the purge removes counters past it (a range scan).
        sa.Column("resets_at", sa.Double, nullable=False, index=True),
    )


def open_engine(
    url: str, *, setting: str, timeout_s: float, must_exist: bool = False, autocommit: bool = False
) -> AsyncEngine:
    """Open an async engine for ``url`` with ``timeout_s`` on connecting and on every statement.

    Nothing is created: not a SQLite file's folder (:meth:`Dialect.make_database_dir` does
    that for ``setup``), and with ``must_exist`` not the SQLite file either. The URL's
    query may set the pool's sizes (:data:`POOL_DEFAULTS`); ``autocommit`` opens every
    connection in autocommit, for a dialect's :attr:`~Dialect.reader_pool`.

    Raises:
        ConfigError: naming ``setting``, when the URL is malformed, names another
            database or driver, or its driver is not installed (naming the extra).
        StoreSchemaMissingError: ``must_exist`` and the SQLite file does not exist.
    """
    dialect, parsed, options = _engine_options(url, setting=setting, timeout_s=timeout_s, blocking=False)
    options |= dialect.engine_options(parsed, timeout_s=timeout_s, must_exist=must_exist)
    if autocommit:
        options |= _AUTOCOMMIT
    if "poolclass" in options:
        options["poolclass"] = AsyncAdaptedQueuePool  # the same pool, for an async driver
    try:
        engine = create_async_engine(parsed, **options)
    except (exc.ArgumentError, ImportError) as error:
        raise ConfigError(
            setting, f"{parsed.render_as_string(hide_password=True)!r} cannot be opened: {error}"
        ) from None
    dialect.configure(engine.sync_engine, timeout_s=timeout_s)
    return engine


def open_sync_engine(
    url: str, *, setting: str, timeout_s: float, must_exist: bool = False, autocommit: bool = False
) -> sa.Engine:
    """Open a blocking engine (sqlite3, psycopg, PyMySQL) for the generated sync store.

    The same URLs, pool settings, schema, timeouts and SQLite locking as :func:`open_engine`.

    Raises:
        ConfigError: as :func:`open_engine`.
        StoreSchemaMissingError: as :func:`open_engine`.
    """
    dialect, parsed, options = _engine_options(url, setting=setting, timeout_s=timeout_s, blocking=True)
    options |= dialect.engine_options(parsed, timeout_s=timeout_s, must_exist=must_exist)
    if autocommit:
        options |= _AUTOCOMMIT
    try:
        engine = sa.create_engine(parsed, **options)
    except (exc.ArgumentError, ImportError) as error:
        raise ConfigError(
            setting, f"{parsed.render_as_string(hide_password=True)!r} cannot be opened: {error}"
        ) from None
    dialect.configure(engine, timeout_s=timeout_s)
    return engine


def _engine_options(
    url: str, *, setting: str, timeout_s: float, blocking: bool
) -> tuple[Dialect, sa.URL, dict[str, Any]]:
    """Return the dialect, the URL with its driver, and the driver's connection arguments."""
    try:
        parsed = make_url(url)
    except (exc.ArgumentError, ValueError):
        raise ConfigError(setting, f"{url!r} is not a valid database URL") from None
    shown = repr(parsed.render_as_string(hide_password=True))
    # Normalised first: every choice below is made on the database, never on an alias.
    scheme, _, driver = parsed.drivername.lower().partition("+")
    backend = SQL_DATABASES.get(scheme)
    if backend is None:
        raise ConfigError(
            setting, f"{shown}: unsupported database {scheme!r}; use sqlite, postgresql (postgres) or mysql (mariadb)"
        )
    dialect = DIALECTS[backend]
    if driver and driver not in (dialect.driver, dialect.sync_driver):
        raise ConfigError(
            setting,
            f"{shown}: the {backend} store runs on {dialect.driver} (async) and {dialect.sync_driver} (sync), "
            f"not {driver!r}; write {scheme}:// without a driver",
        )
    # A URL may name either flavour's driver: one URL serves the async and the sync store.
    driver = dialect.sync_driver if blocking else dialect.driver
    extra, feature = SQL_EXTRAS[backend]
    require(extra, feature, *_DRIVER_MODULES[driver], setting=setting)
    parsed = parsed.set(drivername=f"{backend}+{driver}")
    pool = _pool_options(parsed, shown, setting=setting)
    parsed = parsed.difference_update_query(POOL_DEFAULTS)
    return dialect, parsed, {"connect_args": dialect.connect_args(timeout_s, blocking=blocking), **pool}


# Every connection in autocommit from the start, and no ROLLBACK sent for one that is
# (the driver would send it even with nothing to roll back).
_AUTOCOMMIT: dict[str, Any] = {"isolation_level": "AUTOCOMMIT", "skip_autocommit_rollback": True}


def _pool_options(url: sa.URL, shown: str, *, setting: str) -> dict[str, int]:
    """Return the pool's sizes: :data:`POOL_DEFAULTS`, with what the URL's query sets instead."""
    options = dict(POOL_DEFAULTS)
    for name in POOL_DEFAULTS:
        given = url.query.get(name)
        if given is None:
            continue
        text = given[-1] if isinstance(given, tuple) else given
        try:
            value = int(text)
        except ValueError:
            value = -2
        if value < (-1 if name == "pool_recycle" else 0):
            least = "-1 (never)" if name == "pool_recycle" else "0"
            raise ConfigError(setting, f"{shown}: {name} must be a whole number of at least {least}, not {text!r}")
        options[name] = value
    return options


def _configure_sqlite(engine: sa.Engine, *, busy_timeout_ms: int) -> None:
    database = engine.url.database or ""
    if database not in ("", ":memory:"):
        folder = Path(database).expanduser().parent

        @event.listens_for(engine, "do_connect")
        def refuse_missing_folder(_dialect: Any, _record: Any, _args: Any, _params: Any) -> None:
            # SQLite's own refusal, without starting a driver that fails: a failed aiosqlite
            # connect leaves its worker thread to find the event loop closed.
            if not folder.is_dir():
                raise sqlite3.OperationalError(f"unable to open database file: no folder {folder}")

    # pysqlite's implicit transactions start late and as DEFERRED; take the write lock at
    # BEGIN instead, so that a login's limit check and registration are one serialized step.
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        if not connection.get_execution_options().get("sessionward_single_statement"):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def is_retryable(error: exc.DBAPIError) -> bool:
    """Tell whether the database asked for the transaction to be retried (deadlock)."""
    original = error.orig
    if getattr(original, "sqlstate", None) in _RETRY_SQLSTATES:
        return True
    args: tuple[Any, ...] = getattr(original, "args", ())
    return bool(args) and args[0] in _RETRY_MYSQL_ERRORS


def is_refusal(error: exc.DBAPIError) -> bool:
    """Tell whether the database refused a value (too long, duplicate…): a fault, not an outage."""
    if isinstance(error, exc.IntegrityError | exc.DataError):
        return True
    # asyncpg's errors reach SQLAlchemy's generic class; their SQLSTATE class tells.
    sqlstate = getattr(error.orig, "sqlstate", None) or ""
    return sqlstate[:2] in ("22", "23")


def brief(error: BaseException) -> str:
    """Return the first line of a driver error, for a one-line message."""
    text = str(getattr(error, "orig", None) or error)
    return text.splitlines()[0][:200] if text else type(error).__name__


# -- statements, built once per store ----------------------------------------------------------


def bound(column: sa.Column[Any]) -> sa.BindParameter[Any]:
    """Return the bound parameter standing for a value of ``column`` (named ``p_<column>``).

    Prefixed: SQLAlchemy keeps a column's own name for its ``SET`` and ``VALUES`` clauses.
    """
    return sa.bindparam(f"p_{column.name}", type_=column.type)


class Statements:
    """The store's statements, built once with bound parameters, for one dialect and table set.

    Building a statement costs more than running a cached one; each call passes only its
    values (:func:`~sessionward.stores._sql_rows.params` names them).
    """

    def __init__(self, sql: Dialect, sessions: sa.Table, locks: sa.Table, counters: sa.Table) -> None:
        c = sessions.c
        key, user, handle = bound(c.key), bound(c.user_id), bound(c.handle)
        now: sa.BindParameter[Any] = sa.bindparam("p_now", type_=sa.Double())
        resets_at: sa.BindParameter[Any] = sa.bindparam("p_resets_at", type_=sa.Double())
        live = sa.and_(c.key == key, c.tomb.is_(None))
        everything = {column.name: bound(column) for column in sessions.columns}
        saved = {name: bound(c[name]) for name in SAVED_COLUMNS}

        self.load = sa.select(sessions).where(c.key == key)
        self.find_handle = sa.select(sessions).where(c.handle == handle, c.tomb.is_(None), c.expires_at > now)
        self.find_moved = sa.select(sessions).where(c.handle == handle, c.tomb.is_not(None), c.expires_at > now)
        self.list_user = (
            sa.select(sessions)
            .where(c.user_id == user, c.tomb.is_(None), c.expires_at > now)
            .order_by(c.created_at, c.key)
        )
        self.others_of_user = (
            sa.select(sessions)
            .where(
                c.user_id == user,
                c.tomb.is_(None),
                c.expires_at > now,
                c.key.not_in(sa.bindparam("p_excluded", expanding=True)),
            )
            .order_by(c.created_at, c.key)
        )
        alive = sa.and_(c.tomb.is_(None), c.expires_at > now)
        # One statement, so one consistent view without a transaction. CASE rather than
        # FILTER (…): MySQL and MariaDB have no FILTER clause.
        self.stats = sa.select(
            sa.func.count(sa.case((alive, 1))),
            sa.func.count(sa.case((sa.and_(alive, c.user_id.is_not(None)), 1))),
            sa.func.count(sa.distinct(sa.case((alive, c.user_id)))),
            sa.func.count(sa.case((sa.and_(c.tomb.is_not(None), c.expires_at > now), 1))),
            sa.select(sa.func.count()).select_from(counters).where(counters.c.resets_at > now).scalar_subquery(),
        ).select_from(sessions)

        self.touch = sa.update(sessions).where(live).values(**saved)
        data, version = bound(c.data), bound(c.version)
        self.save_seen = (
            sa.update(sessions)
            .where(live, c.version == sa.bindparam("p_seen", type_=sa.Integer()))
            .values(data=data, version=version, **saved)
        )
        self.lock_data = sql.for_update(sa.select(c.data, c.version).where(live))
        self.save_locked = sa.update(sessions).where(live).values(data=data, version=version, **saved)

        # An establish overwrites the row and bumps its version, so a writer that loaded
        # the old row cannot pass the optimistic check against the new one.
        self.establish = sql.upsert(
            sessions,
            everything,
            lambda new: {**{name: new[name] for name in ESTABLISHED_COLUMNS}, "version": c.version + 1},
        )
        self.bury = sql.upsert(sessions, everything, lambda new: {name: new[name] for name in BURIED_COLUMNS})
        self.insert_tomb = sql.insert_ignore(sessions, everything)
        held = sa.and_(c.key == key, c.tomb.is_(None), c.version == sa.bindparam("p_seen", type_=sa.Integer()))
        self.claim_in_place = (
            sa.update(sessions)
            .where(held)
            .values(**{name: everything[name] for name in ESTABLISHED_COLUMNS}, version=c.version + 1)
        )
        self.claim_retire = (
            sa.update(sessions).where(held).values(**{name: everything[name] for name in BURIED_COLUMNS})
        )
        self.lock_row = sql.for_update(sa.select(sessions).where(c.key == key))
        self.delete = sa.delete(sessions).where(c.key == key)
        self.lock_user = sql.lock_user(locks, user)

        name = bound(counters.c.name)
        self.count_hit = sql.count_hit(counters, name, now, resets_at)
        self.read_counter = sa.select(counters.c.hits, counters.c.resets_at).where(counters.c.name == name)
        self.reset_counter = sa.delete(counters).where(counters.c.name == name)
