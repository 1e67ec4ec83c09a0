"""Session stores and opening one from a URL (``SESSIONWARD_STORE``).

Backends are imported only when their URL scheme is used, so an application pulls in
just the client library of the store it runs on.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sessionward.errors import ConfigError
from sessionward.stores.base import Established, SessionStore, StoreStats
from sessionward.stores.memory import MemoryStore

__all__ = ["SCHEMES", "Established", "MemoryStore", "SessionStore", "StoreStats", "open_store"]

SCHEMES = (
    "memory",
    "file",
    "sqlite",
    "postgresql",
    "postgres",
    "mysql",
    "mariadb",
    "redis",
    "rediss",
    "redis+cluster",
    "rediss+cluster",
    "redis+sentinel",
)


def open_store(url: str, *, setting: str = "SESSIONWARD_STORE") -> SessionStore:
    """Return the store a URL names; raise :class:`ConfigError` naming ``setting`` if it is bad.

    The store is not connected or set up yet: call ``await store.setup()`` where schema
    creation is wanted, explicitly.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return MemoryStore()
    if scheme == "sqlite" or scheme in ("postgresql", "postgres", "mysql", "mariadb"):
        from sessionward.stores.sql import SqlStore

        return SqlStore.from_url(url, setting=setting)
    if scheme in ("redis", "rediss", "redis+cluster", "rediss+cluster", "redis+sentinel"):
        try:
            from sessionward.stores.redis import RedisStore  # type: ignore[import-not-found, unused-ignore]
        except ImportError as error:
            raise ConfigError(setting, f"the Redis store needs the 'redis' extra ({error})") from None
        redis_store: SessionStore = RedisStore.from_url(url, setting=setting)
        return redis_store
    if scheme == "file":
        try:
            from sessionward.stores.file import FileStore  # type: ignore[import-not-found, unused-ignore]
        except ImportError as error:
            raise ConfigError(setting, f"the file store is not available ({error})") from None
        file_store: SessionStore = FileStore.from_url(url, setting=setting)
        return file_store
    raise ConfigError(setting, f"{url!r} has no supported scheme; use one of {', '.join(s + '://' for s in SCHEMES)}")
