"""Fixtures for the creation budget's tests: a store of each kind the budget is proven on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sessionward.stores.base import SessionStore
from sessionward.stores.sql import SqlStore
from stores.backends import make_backend

BUDGET_BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("file", id="file"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
]


@pytest.fixture(params=BUDGET_BACKENDS)
async def budget_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SessionStore]:
    """A clean, set-up store of each kind the shared budget is counted in."""
    backend = await make_backend(request.param, request, tmp_path)
    store = await backend.open()
    try:
        yield store
    finally:
        if isinstance(store, SqlStore) and backend.name in ("postgres", "mysql"):
            await store.drop()
        await store.close()
