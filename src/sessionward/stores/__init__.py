"""Session stores and opening one from a URL (``SESSIONWARD_STORE``).

Backends are imported only when their URL scheme is used, so an application pulls in
just the client library of the store it runs on; a library that is not installed is
named with the extra that brings it (``pip install 'sessionward[postgres]'``). The
in-process stores, :class:`MemoryStore` and :class:`FileStore`, are imported on first
use too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sessionward.core.errors import ConfigError
from sessionward.core.extras import needs_extra
from sessionward.stores._contract import Established, StoreStats
from sessionward.stores._schemes import REDIS_SCHEMES, SCHEMES, SQL_DATABASES, SQL_EXTRAS, wants_schema_created
from sessionward.stores.base import SessionStore

if TYPE_CHECKING:
    from sessionward.stores.file import FileStore
    from sessionward.stores.memory import MemoryStore

__all__ = [
    "SCHEMES",
    "SQL_DATABASES",
    "Established",
    "FileStore",
    "MemoryStore",
    "SessionStore",
    "StoreStats",
    "open_store",
]


def __getattr__(name: str) -> Any:
    # PEP 562: the in-process stores load with their first use. Not only to stay light:
    # they wrap blocking stores built on sessionward._sync.stores.base, whose package
    # imports this module, so an import here at the top would be circular.
    if name == "MemoryStore":
        from sessionward.stores.memory import MemoryStore

        return MemoryStore
    if name == "FileStore":
        from sessionward.stores.file import FileStore  # type: ignore[import-not-found, unused-ignore]

        return FileStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(
    url: str,
    *,
    setting: str = "SESSIONWARD_STORE",
    must_exist: bool = False,
    create_schema: bool | None = None,
) -> SessionStore:
    """Return the store a URL names; raise :class:`ConfigError` naming ``setting`` if it is bad.

    The store is not connected or set up yet: call ``await store.setup()`` (or run
    ``sessionward store init --store URL``) to create its schema. SQL URLs may name a
    driver (``postgresql+asyncpg://``, ``mysql+pymysql://``…); each store uses its own
    (asyncpg, asyncmy and aiosqlite here; psycopg, PyMySQL and sqlite3 in
    ``sessionward._sync.stores``), so one URL serves both.

    Args:
        url: The store's URL.
        setting: What the URL came from, for error messages.
        must_exist: Open only a store that was set up, creating nothing: a SQLite file or
            a file store directory that does not exist raises
            :class:`~sessionward.core.errors.StoreSchemaMissingError` here; a database server's
            missing tables are reported by the first operation.
        create_schema: Let a SQL store create its schema when an operation finds it
            missing, once (development). ``None`` reads ``SESSIONWARD_STORE_CREATE_SCHEMA``
            (default false). Never with ``must_exist``.

    Raises:
        ConfigError: the URL is malformed, names no supported store, or needs an extra
            that is not installed (the message says which); or
            ``SESSIONWARD_STORE_CREATE_SCHEMA`` is malformed.
        StoreSchemaMissingError: ``must_exist`` and there is no store there.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        from sessionward.stores.memory import MemoryStore

        return MemoryStore()
    database = SQL_DATABASES.get(scheme.partition("+")[0])
    if database is not None:
        create = False if must_exist else wants_schema_created(create_schema)
        extra, feature = SQL_EXTRAS[database]
        with needs_extra(extra, feature, setting=setting):
            from sessionward.stores.sql import SqlStore
        return SqlStore.from_url(url, setting=setting, must_exist=must_exist, create_schema=create)
    if scheme in REDIS_SCHEMES:
        with needs_extra("redis", "the Redis store", setting=setting):
            from sessionward.stores.redis import RedisStore  # type: ignore[import-not-found, unused-ignore]
        redis_store: SessionStore = RedisStore.from_url(url, setting=setting)
        return redis_store
    if scheme == "file":
        try:
            from sessionward.stores.file import FileStore  # type: ignore[import-not-found, unused-ignore]
        except ImportError as error:  # it locks with fcntl: POSIX systems only
            raise ConfigError(setting, f"the file store is not available ({error})") from None
        file_store: SessionStore = FileStore.from_url(url, setting=setting, must_exist=must_exist)
        return file_store
    raise ConfigError(setting, f"{url!r} has no supported scheme; use one of {', '.join(s + '://' for s in SCHEMES)}")
