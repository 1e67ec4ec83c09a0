"""Helpers for the CLI tests: real stores to run the verbs on, and seeding them."""

from __future__ import annotations

import asyncio
import importlib.util
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest

from sessionward import ClientInfo, SessionEngine, SessionPolicy
from sessionward.core.records import SessionRecord
from sessionward.stores import open_store
from sessionward.stores.base import SessionStore
from support.helpers import service_missing

T = TypeVar("T")

STORE_KINDS = ["sqlite", "postgres", "redis"]
"""Stores the CLI verbs are tested on; the server-backed ones come from service fixtures."""


def store_url_for(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Return a fresh, empty store URL of ``kind``, or skip when its service is missing."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'cli' / 'sessions.db'}"
    fixture = {"postgres": "postgres_url", "redis": "redis_url"}[kind]
    if kind == "redis" and importlib.util.find_spec("sessionward.stores.redis") is None:
        pytest.skip("the Redis store (sessionward.stores.redis) is not in this tree yet")
    try:
        url = str(request.getfixturevalue(fixture))
    except pytest.FixtureLookupError:
        service_missing(f"the {fixture} fixture is not defined yet")
    if kind == "postgres":
        # The CLI uses the default table names, and the run's database is shared with
        # other suites: give each test a database of its own on the same server.
        url = private_postgres_database(url, request)
    return url


def private_postgres_database(url: str, request: pytest.FixtureRequest) -> str:
    """Create an empty database next to the one ``url`` names; drop it after the test."""
    import asyncpg

    parts = urlsplit(url)
    name = f"sw_cli_{secrets.token_hex(6)}"

    async def execute(sql: str) -> None:
        connection = await asyncpg.connect(
            host=parts.hostname, port=parts.port, user=parts.username, password=parts.password, database="postgres"
        )
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    request.addfinalizer(lambda: asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))
    return urlunsplit(parts._replace(path=f"/{name}"))


def on_store(url: str, work: Callable[[SessionStore], Awaitable[T]]) -> T:
    """Run ``work`` on a freshly opened store (its own event loop), then close it."""

    async def go() -> T:
        store = open_store(url)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(go())


def login_record(
    user: str, *, ip: str = "192.0.2.7", user_agent: str = "TestBrowser/1.0", age_s: float = 0
) -> tuple[str, SessionRecord]:
    """Plan a login of ``user`` that began ``age_s`` seconds ago; return (raw ID, record)."""
    engine = SessionEngine(SessionPolicy())
    transition = engine.plan_login(None, {}, user, time.time() - age_s, ClientInfo(ip=ip, user_agent=user_agent))
    return transition.raw_id, transition.record


def seed(url: str, records: list[SessionRecord]) -> None:
    """Write ``records`` (after creating the schema)."""

    async def work(store: SessionStore) -> None:
        await store.setup()
        for record in records:
            await store.establish(record)

    on_store(url, work)
