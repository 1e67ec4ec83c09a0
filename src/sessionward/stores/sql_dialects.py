"""What differs between SQLite, PostgreSQL and MySQL/MariaDB, in one place.

The SQL store (:mod:`sessionward.stores.sql`) states what it does once; this module
turns that into each dialect's statements and settings: the schema, opening an engine
from a URL with timeouts on every driver, upserts, the per-user lock row, and which
driver errors mean "retry", "bad value" or "database down".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, QueuePool

from sessionward.errors import ConfigError

DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "mysql": "mysql+asyncmy",
    "mariadb": "mysql+asyncmy",
}
SYNC_DRIVERS = {
    "sqlite": "sqlite+pysqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
}
"""The blocking drivers of :mod:`sessionward._sync.stores.sql` (Flask, WSGI)."""
# PostgreSQL SQLSTATEs and MySQL error numbers that mean "retry the transaction".
_RETRY_SQLSTATES = frozenset({"40001", "40P01"})
_RETRY_MYSQL_ERRORS = frozenset({1213})

_BigText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


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
        # When the row may go: a record's kept_until (F10 retention), a tombstone's expiry.
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


def open_engine(url: str, *, setting: str, timeout_s: float) -> AsyncEngine:
    """Open an async engine for ``url`` with ``timeout_s`` on connecting and on every statement.

    Raises:
        ConfigError: naming ``setting``, when the URL is malformed, names another
            database or its driver is not installed.
    """
    parsed, options = _engine_options(url, setting=setting, timeout_s=timeout_s, drivers=DRIVERS)
    if parsed.get_backend_name() == "sqlite" and "poolclass" in options:
        options["poolclass"] = AsyncAdaptedQueuePool
    try:
        engine = create_async_engine(parsed, **options)
    except (exc.ArgumentError, ImportError) as error:
        raise ConfigError(setting, f"{url!r} cannot be opened: {error}") from None
    if parsed.get_backend_name() == "sqlite":
        _configure_sqlite(engine.sync_engine, busy_timeout_ms=int(timeout_s * 1000))
    return engine


def open_sync_engine(url: str, *, setting: str, timeout_s: float) -> sa.Engine:
    """Open a blocking engine (sqlite3, psycopg, PyMySQL) for the generated sync store.

    The same URLs, schema, timeouts and SQLite locking as :func:`open_engine`.

    Raises:
        ConfigError: as :func:`open_engine`.
    """
    parsed, options = _engine_options(url, setting=setting, timeout_s=timeout_s, drivers=SYNC_DRIVERS)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        # The engine's connections serve whichever WSGI thread holds them, one at a time.
        options["connect_args"]["check_same_thread"] = False
    elif backend == "postgresql":
        # psycopg's connect timeout is in whole seconds; the statement timeout in ms.
        options["connect_args"] = {
            "connect_timeout": max(1, round(timeout_s)),
            "options": f"-c statement_timeout={int(timeout_s * 1000)}",
        }
    else:
        whole_seconds = max(1, round(timeout_s))
        options["connect_args"] = {
            "connect_timeout": whole_seconds,
            "read_timeout": whole_seconds,
            "write_timeout": whole_seconds,
        }
    try:
        engine = sa.create_engine(parsed, **options)
    except (exc.ArgumentError, ImportError) as error:
        raise ConfigError(setting, f"{url!r} cannot be opened: {error}") from None
    if backend == "sqlite":
        _configure_sqlite(engine, busy_timeout_ms=int(timeout_s * 1000))
    return engine


def _engine_options(
    url: str, *, setting: str, timeout_s: float, drivers: dict[str, str]
) -> tuple[sa.URL, dict[str, Any]]:
    """Return the URL with its driver and the engine options shared by both flavours."""
    try:
        parsed = make_url(url)
    except (exc.ArgumentError, ValueError):
        raise ConfigError(setting, f"{url!r} is not a valid database URL") from None
    backend = parsed.get_backend_name()
    if parsed.drivername in drivers:
        parsed = parsed.set(drivername=drivers[parsed.drivername])
    elif backend not in ("sqlite", "postgresql", "mysql"):
        raise ConfigError(setting, f"{url!r}: unsupported database {backend!r}; use sqlite, postgresql or mysql")
    options: dict[str, Any] = {"pool_pre_ping": True, "pool_timeout": timeout_s}
    if backend == "sqlite":
        database = parsed.database or ""
        options = {"connect_args": {"timeout": timeout_s}}
        if database in ("", ":memory:"):
            # One connection, handed to one transaction at a time: an in-memory database
            # lives in its connection, and sharing it (StaticPool) would interleave
            # concurrent transactions on it.
            options.update(poolclass=QueuePool, pool_size=1, max_overflow=0, pool_timeout=timeout_s)
        else:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    elif backend == "postgresql":
        options["connect_args"] = {"timeout": timeout_s, "command_timeout": timeout_s}
    else:
        # asyncmy's connect_timeout covers only the TCP connect; read_timeout covers a
        # server that accepts and then says nothing. Both take whole seconds.
        whole_seconds = max(1, round(timeout_s))
        options["connect_args"] = {"connect_timeout": whole_seconds, "read_timeout": whole_seconds}
    if backend == "mysql":
        # A statement after a lock wait must see what the lock holder committed;
        # REPEATABLE READ would keep the snapshot from before the wait.
        options["isolation_level"] = "READ COMMITTED"
    return parsed, options


def _configure_sqlite(engine: sa.Engine, *, busy_timeout_ms: int) -> None:
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
        if not connection.get_execution_options().get("sessionward_readonly"):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def insert_ignore(dialect: str, table: sa.Table, values: dict[str, Any]) -> sa.Executable:
    """Return an insert that does nothing when the primary key exists."""
    if dialect == "postgresql":
        return postgresql.insert(table).values(**values).on_conflict_do_nothing()
    if dialect == "mysql":
        return sa.insert(table).values(**values).prefix_with("IGNORE")
    return sqlite.insert(table).values(**values).on_conflict_do_nothing()


def upsert(
    dialect: str, table: sa.Table, values: dict[str, Any], update: Callable[[Any], dict[str, Any]]
) -> sa.Executable:
    """Return an insert that, on a primary-key conflict, sets ``update(new_values)``.

    ``update`` receives the dialect's handle on the proposed row (``excluded`` or
    ``inserted``) and returns the column assignments.
    """
    if dialect == "mysql":
        statement = mysql.insert(table).values(**values)
        return statement.on_duplicate_key_update(**update(statement.inserted))
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    proposed = insert(table).values(**values)
    keys = list(table.primary_key.columns)
    return proposed.on_conflict_do_update(index_elements=keys, set_=update(proposed.excluded))


def lock_row(dialect: str, locks: sa.Table, user: str) -> sa.Executable:
    """Return the statement that takes the user's lock row exclusively (creating it if new).

    An upsert that updates on conflict takes the row's exclusive lock at once. INSERT
    IGNORE followed by SELECT … FOR UPDATE deadlocks on MySQL: waiters on a duplicate key
    get shared locks and then all try to upgrade them.
    """
    return upsert(dialect, locks, {"user_id": user}, lambda proposed: {"user_id": proposed.user_id})


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
