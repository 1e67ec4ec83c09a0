"""Every SQL URL scheme sessionward accepts works end to end, on the async and the sync store.

``postgres://`` once crashed ``store init`` (asyncpg was handed MySQL's
``connect_timeout``) and ``mariadb://`` ran at REPEATABLE READ, because the aliases were
mapped after the dialect's options were chosen. Each scheme here goes through
``open_store``, ``setup`` (``sessionward store init`` for the async store), a login, a
save and a load on the real server, and MySQL/MariaDB connections are checked to run at
READ COMMITTED (a statement after a lock wait must see what the lock holder committed).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from sessionward._sync.stores import open_store as open_sync_store
from sessionward._sync.stores.sql import SqlStore as SyncSqlStore
from sessionward.cli import main
from sessionward.core.errors import ConfigError
from sessionward.core.records import SessionRecord
from sessionward.stores import open_store
from sessionward.stores.sql import SqlStore
from stores.builders import NOW, make_record, make_update

from .support import with_scheme

SQLITE_SCHEMES = ["sqlite", "sqlite+aiosqlite", "sqlite+pysqlite"]
POSTGRES_SCHEMES = [
    "postgresql",
    "postgres",
    "postgresql+asyncpg",
    "postgresql+psycopg",
    "postgres+asyncpg",
    "postgres+psycopg",
]
MYSQL_SCHEMES = ["mysql", "mariadb", "mysql+asyncmy", "mysql+pymysql", "mariadb+asyncmy", "mariadb+pymysql"]

SCHEMES = (
    [pytest.param(s, "sqlite", id=s) for s in SQLITE_SCHEMES]
    + [pytest.param(s, "postgresql", id=s, marks=pytest.mark.postgres) for s in POSTGRES_SCHEMES]
    + [pytest.param(s, "mysql", id=s, marks=pytest.mark.mysql) for s in MYSQL_SCHEMES]
)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of the parameter's kind, as ``<kind>://…``."""
    kind = request.node.callspec.params["database"]
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'sessions.db'}"
    return str(request.getfixturevalue("empty_postgres" if kind == "postgresql" else "empty_mysql"))


@pytest.mark.parametrize(("scheme", "database"), SCHEMES)
def test_async_store_on_every_scheme_inits_logs_in_saves_and_loads(
    scheme: str, database: str, database_url: str
) -> None:
    url = with_scheme(database_url, scheme)
    result = CliRunner().invoke(main, ["store", "init", "--store", url])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("store ready: ")

    async def round_trip() -> None:
        store = open_store(url)
        try:
            assert isinstance(store, SqlStore)
            assert store.dialect == database
            if database == "mysql":
                async with store.engine.connect() as connection:
                    assert await connection.get_isolation_level() == "READ COMMITTED"
            record = make_record(user="alice", data={"cart": []})
            assert (await store.establish(record)).applied
            assert await store.save(record.key, make_update(record, set={"cart": ["book"]}, now=NOW + 1))
            loaded = await store.load(record.key, NOW + 2)
            assert isinstance(loaded, SessionRecord)
            assert loaded.meta.user == "alice"
            assert loaded.data == {"cart": ["book"]}
        finally:
            await store.close()

    # Its own event loop, as the command line had: `store init` ran asyncio.run.
    asyncio.run(round_trip())


@pytest.mark.parametrize(("scheme", "database"), SCHEMES)
def test_sync_store_on_every_scheme_sets_up_logs_in_saves_and_loads(
    scheme: str, database: str, database_url: str
) -> None:
    store = open_sync_store(with_scheme(database_url, scheme))
    assert isinstance(store, SyncSqlStore)
    try:
        assert store.dialect == database
        assert not store.engine.dialect.is_async
        store.setup()
        if database == "mysql":
            with store.engine.connect() as connection:
                assert connection.get_isolation_level() == "READ COMMITTED"
        record = make_record(user="alice", data={"cart": []})
        assert store.establish(record).applied
        assert store.save(record.key, make_update(record, set={"cart": ["book"]}, now=NOW + 1))
        loaded = store.load(record.key, NOW + 2)
        assert isinstance(loaded, SessionRecord)
        assert loaded.meta.user == "alice"
        assert loaded.data == {"cart": ["book"]}
    finally:
        store.close()


@pytest.mark.parametrize(
    "url", ["postgresql+pg8000://u@127.0.0.1/db", "mysql+aiomysql://u@127.0.0.1/db", "mariadb+mysqldb://u@127.0.0.1/db"]
)
def test_driver_sessionward_does_not_configure_is_refused_naming_the_ones_it_does(url: str) -> None:
    for opener in (open_store, open_sync_store):
        with pytest.raises(ConfigError, match=r"runs on \w+ \(async\) and \w+ \(sync\)") as caught:
            opener(url)
        assert caught.value.setting == "SESSIONWARD_STORE"
