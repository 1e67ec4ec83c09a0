"""A store whose schema was never created: 503 and a log line that says how to create it.

The schema is made by ``sessionward store init`` (or ``await store.setup()``); an app
started without it used to log ``no such table: sessionward_sessions`` and nothing more.
Now the store raises :class:`StoreSchemaMissingError` (a :class:`StoreUnavailableError`,
so requests get 503), whose message names both ways to create the schema; and
``SESSIONWARD_STORE_CREATE_SCHEMA=true`` lets a development app create it on first use.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, jsonify

from sessionward import ManualClock
from sessionward._sync.stores import open_store as open_sync_store
from sessionward.core.errors import ConfigError, StoreSchemaMissingError
from sessionward.flask import FlaskSession, SessionWard
from sessionward.stores import open_store
from sessionward.stores.base import SessionStore
from support.helpers import client_for, make_app, plain_http_policy

HINT = "create it with `sessionward store init --store URL` or `await store.setup()`"
VARIABLE = "SESSIONWARD_STORE_CREATE_SCHEMA"


@pytest.fixture(autouse=True)
def _no_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def unset_up_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a store nobody set up: a SQLite file in a missing folder, an empty database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'sessions.db'}"
    return str(request.getfixturevalue("empty_postgres"))


async def login_then_read(store: SessionStore) -> tuple[int, dict[str, Any] | None]:
    """Log in through the ASGI middleware; return the login's status and what the session reads."""
    app, _ = make_app(store, clock=ManualClock())
    async with client_for(app) as client:
        login = await client.post("/login")
        if login.status_code != 200:
            return login.status_code, None
        await client.post("/set", params={"cart": "book"})
        whoami: dict[str, Any] = (await client.get("/whoami")).json()
        return login.status_code, whoami


async def test_first_login_without_schema_is_503_and_the_log_says_how_to_create_it(
    unset_up_url: str, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    store = open_store(unset_up_url)
    try:
        with caplog.at_level(logging.WARNING, logger="sessionward"):
            status, _ = await login_then_read(store)
    finally:
        await store.close()
    assert status == 503
    logged = [record.getMessage() for record in caplog.records]
    assert any("the schema is missing" in line and HINT in line for line in logged), logged
    # The failed request created nothing, not even the SQLite file's folder.
    assert not (tmp_path / "data").exists()


async def test_opt_in_variable_creates_the_missing_schema_on_first_use(
    unset_up_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VARIABLE, "true")
    store = open_store(unset_up_url)
    try:
        status, whoami = await login_then_read(store)
    finally:
        await store.close()
    assert status == 200
    assert whoami is not None
    assert whoami["user"] == "alice"
    assert whoami["data"] == {"cart": "book"}


def test_malformed_opt_in_variable_stops_start_up_naming_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(VARIABLE, "sometimes")
    for opener in (open_store, open_sync_store):
        with pytest.raises(ConfigError, match="expected true or false") as caught:
            opener(f"sqlite:///{tmp_path / 's.db'}")
        assert caught.value.setting == VARIABLE


@pytest.mark.parametrize("database", ["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
async def test_every_dialect_reports_a_missing_table_as_schema_missing(
    database: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # SQLite says "no such table", PostgreSQL 42P01 (above), MySQL/MariaDB error 1146.
    url = f"sqlite:///{tmp_path / 's.db'}" if database == "sqlite" else str(request.getfixturevalue("empty_mysql"))
    store = open_store(url)
    sync_store = open_sync_store(url)
    calls: list[Callable[[], Awaitable[object]]] = [lambda: store.stats(0.0), lambda: store.list_user("alice", 0.0)]
    try:
        for call in calls:
            with pytest.raises(StoreSchemaMissingError, match="the schema is missing") as caught:
                await call()
            assert HINT in str(caught.value)
        with pytest.raises(StoreSchemaMissingError, match="the schema is missing"):
            sync_store.stats(0.0)
    finally:
        await store.close()
        sync_store.close()


def flask_app(url: str) -> Flask:
    app = Flask(__name__)
    app.config.update(SESSIONWARD_STORE=url, SESSIONWARD_CSRF=False)
    SessionWard(app, policy=plain_http_policy(), clock=ManualClock())

    @app.post("/login")
    def login() -> Any:
        from flask import session

        assert isinstance(session, FlaskSession)
        session.login("alice")
        return jsonify(ok=True)

    return app


def test_flask_app_without_schema_is_503_with_the_hint_and_works_with_the_opt_in(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'sessions.db'}"
    with caplog.at_level(logging.WARNING, logger="sessionward"):
        response = flask_app(url).test_client().post("/login")
    assert response.status_code == 503
    assert any(HINT in record.getMessage() for record in caplog.records)

    monkeypatch.setenv(VARIABLE, "true")
    assert flask_app(url).test_client().post("/login").status_code == 200
