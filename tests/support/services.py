"""PostgreSQL and MariaDB fixtures: a private database per test run.

Each fixture creates a database named ``sw_test_<random hex>`` on the local server, yields
the URL a user would give :meth:`sessionward.stores.sql.SqlStore.from_url`, and drops the
database when the test session ends. A server that is not reachable makes the tests that
need it skip with the reason (or fail, when ``SESSIONWARD_REQUIRE_SERVICES=1``).

The servers default to this machine's (127.0.0.1, ``postgres`` and ``root`` without
password); ``SESSIONWARD_TEST_PG_{HOST,PORT,USER,PASSWORD}`` and
``SESSIONWARD_TEST_MYSQL_{HOST,PORT,USER,PASSWORD}`` point them elsewhere.

Setup runs the async drivers with ``asyncio.run`` on a worker thread, so it never touches
the event loops pytest-asyncio manages on the main thread.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import quote

import pytest

from support.helpers import service_missing

T = TypeVar("T")

PG_HOST = os.environ.get("SESSIONWARD_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("SESSIONWARD_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("SESSIONWARD_TEST_PG_USER", "postgres")
PG_PASSWORD = os.environ.get("SESSIONWARD_TEST_PG_PASSWORD", "")
MYSQL_HOST = os.environ.get("SESSIONWARD_TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("SESSIONWARD_TEST_MYSQL_PORT", "3306"))
MYSQL_USER = os.environ.get("SESSIONWARD_TEST_MYSQL_USER", "root")
MYSQL_PASSWORD = os.environ.get("SESSIONWARD_TEST_MYSQL_PASSWORD", "")
CONNECT_TIMEOUT_S = 3


def _run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on a private loop in a worker thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, factory()).result()


def _credentials(user: str, password: str) -> str:
    return quote(user, safe="") + (":" + quote(password, safe="") if password else "")


def private_database_name() -> str:
    """Return a fresh database name for one test run."""
    return f"sw_test_{secrets.token_hex(6)}"


async def _pg_execute(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(
        host=PG_HOST,
        port=PG_PORT,
        user=PG_USER,
        password=PG_PASSWORD or None,
        database="postgres",
        timeout=CONNECT_TIMEOUT_S,
    )
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _mysql_execute(sql: str) -> None:
    import asyncmy

    connection = await asyncmy.connect(
        host=MYSQL_HOST, port=MYSQL_PORT, user=MYSQL_USER, password=MYSQL_PASSWORD, connect_timeout=CONNECT_TIMEOUT_S
    )
    try:
        async with connection.cursor() as cursor:
            await cursor.execute(sql)
    finally:
        connection.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A private PostgreSQL database for this test run, as ``postgresql://…``."""
    import asyncpg

    name = private_database_name()
    try:
        _run_async(lambda: _pg_execute(f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        service_missing(f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}: {error}")
    try:
        yield f"postgresql://{_credentials(PG_USER, PG_PASSWORD)}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        _run_async(lambda: _pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def mysql_url() -> Iterator[str]:
    """A private MySQL/MariaDB database for this test run, as ``mysql://…``."""
    from asyncmy.errors import Error as MySQLError

    name = private_database_name()
    try:
        _run_async(lambda: _mysql_execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    except (OSError, TimeoutError, MySQLError) as error:
        service_missing(f"MySQL/MariaDB not reachable at {MYSQL_HOST}:{MYSQL_PORT}: {error}")
    try:
        yield f"mysql://{_credentials(MYSQL_USER, MYSQL_PASSWORD)}@{MYSQL_HOST}:{MYSQL_PORT}/{name}"
    finally:
        _run_async(lambda: _mysql_execute(f"DROP DATABASE IF EXISTS `{name}`"))
