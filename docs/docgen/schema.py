"""The SQL schema of each database, compiled from the SQL store's own table definitions.

``sessionward store init`` creates exactly these tables and indexes (with the default
``sw_`` prefix); the page shows them as each database's dialect writes them, so a DBA
can review or create them by hand.
"""

from __future__ import annotations

from typing import Any

DIALECTS = {"postgresql": "PostgreSQL", "mysql": "MySQL / MariaDB", "sqlite": "SQLite"}


def default_prefix() -> str:
    """Return the table prefix a SQL store uses unless told otherwise."""
    import inspect

    from sessionward.stores.sql import SqlStore

    prefix = inspect.signature(SqlStore.__init__).parameters["table_prefix"].default
    assert isinstance(prefix, str)
    return prefix


def ddl(dialect_name: str, prefix: str | None = None) -> str:
    """Return the ``CREATE TABLE`` and ``CREATE INDEX`` statements for ``dialect_name``."""
    prefix = default_prefix() if prefix is None else prefix
    from sqlalchemy.dialects import mysql, postgresql, sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    from sessionward.stores import _sql_dialects

    dialects: dict[str, Any] = {"postgresql": postgresql, "mysql": mysql, "sqlite": sqlite}
    dialect = dialects[dialect_name].dialect()
    metadata, _sessions, _locks = _sql_dialects.tables(prefix)
    _sql_dialects.counter_table(metadata, prefix)
    statements: list[str] = []
    for table in metadata.sorted_tables:
        statements.append(_tidy(str(CreateTable(table).compile(dialect=dialect))) + ";")
        for index in sorted(table.indexes, key=lambda index: str(index.name)):
            statements.append(_tidy(str(CreateIndex(index).compile(dialect=dialect))) + ";")
    return "\n".join(statements)


def render(dialect_name: str) -> str:
    """Return a fenced SQL block with the schema of ``dialect_name``."""
    return f"```sql\n{ddl(dialect_name)}\n```\n"


def _tidy(statement: str) -> str:
    return "\n".join(line.rstrip().replace("\t", "    ") for line in statement.strip().splitlines())
