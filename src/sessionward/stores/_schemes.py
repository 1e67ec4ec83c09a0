"""Which URL schemes name which store, and the setting that lets a SQL store create its schema."""

from __future__ import annotations

import os

from sessionward.core import env

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
REDIS_SCHEMES = frozenset({"redis", "rediss", "redis+cluster", "rediss+cluster", "redis+sentinel"})
"""The schemes of the Redis stores (standalone, Cluster, Sentinel-managed)."""
SQL_DATABASES = {
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
}
"""The SQL URL schemes (before any ``+driver``) and the database each one names.

``postgres`` and ``mariadb`` are aliases: a URL's scheme is mapped here once, first, and
every later choice (driver, timeouts, isolation level) is made on the database it names.
"""
SQL_EXTRAS = {
    "sqlite": ("sqlite", "the SQLite store"),
    "postgresql": ("postgres", "the PostgreSQL store"),
    "mysql": ("mysql", "the MySQL/MariaDB store"),
}
"""The pip extra that installs each database's drivers, and how messages name its store."""
CREATE_SCHEMA_VARIABLE = "STORE_CREATE_SCHEMA"
"""``SESSIONWARD_STORE_CREATE_SCHEMA``: create a missing SQL schema on first use (development)."""


def wants_schema_created(create_schema: bool | None = None) -> bool:
    """Return ``create_schema``, or when ``None`` the ``SESSIONWARD_STORE_CREATE_SCHEMA`` variable.

    Raises:
        ConfigError: naming the variable, when it is not a boolean.
    """
    if create_schema is not None:
        return create_schema
    return bool(env.read(os.environ, CREATE_SCHEMA_VARIABLE, env.boolean, "true or false (default false)"))
