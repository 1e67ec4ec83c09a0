"""Fixtures for login throttling's tests: a store of each kind the counts are kept in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from demo.conftest import demo, make_demo  # noqa: F401 - the demo fixtures, for test_demo.py
from sessionward.stores.base import SessionStore
from sessionward.stores.sql import SqlStore
from stores.backends import make_backend

THROTTLE_BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("file", id="file"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
]


@pytest.fixture(params=THROTTLE_BACKENDS)
async def throttle_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SessionStore]:
    """A clean, set-up store of each kind the sign-in counts are kept in."""
    backend = await make_backend(request.param, request, tmp_path)
    store = await backend.open()
    try:
        yield store
    finally:
        if isinstance(store, SqlStore) and backend.name == "postgres":
            await store.drop()
        await store.close()
