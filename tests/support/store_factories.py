"""The in-process stores adapter and security tests run against (no server needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sessionward.stores.base import SessionStore
from sessionward.stores.memory import MemoryStore
from sessionward.stores.sql import SqlStore


@pytest.fixture(params=["memory", "sqlite"])
async def local_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SessionStore]:
    """A memory store and a SQLite store on a temporary file."""
    store: SessionStore = (
        MemoryStore() if request.param == "memory" else SqlStore.from_url(f"sqlite:///{tmp_path / 'sessions.db'}")
    )
    await store.setup()
    yield store
    await store.close()
