"""Empty private databases: a store whose schema nobody created yet."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from support.services import _mysql_execute, _pg_execute, _run_async, private_database_name


@pytest.fixture
def empty_postgres(postgres_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the test server, as ``postgresql://…``; dropped after."""
    name = private_database_name()
    _run_async(lambda: _pg_execute(f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(postgres_url)._replace(path=f"/{name}"))
    finally:
        _run_async(lambda: _pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def empty_mysql(mysql_url: str) -> Iterator[str]:
    """A new, empty MariaDB database on the test server, as ``mysql://…``; dropped after."""
    name = private_database_name()
    _run_async(lambda: _mysql_execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        yield urlunsplit(urlsplit(mysql_url)._replace(path=f"/{name}"))
    finally:
        _run_async(lambda: _mysql_execute(f"DROP DATABASE IF EXISTS `{name}`"))
