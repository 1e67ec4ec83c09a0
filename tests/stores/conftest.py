"""The store fixtures: ``backend`` and ``store``, once per backend, each in a clean namespace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sessionward.stores.base import SessionStore
from sessionward.stores.sql import SqlStore

from .backends import BACKENDS, Backend, make_backend


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Every store backend in turn, in a clean namespace."""
    made = await make_backend(request.param, request, tmp_path)
    try:
        yield made
    finally:
        for index, store in enumerate(made.opened):
            if index == 0 and isinstance(store, SqlStore) and made.name in ("postgres", "mysql"):
                await store.drop()
            await store.close()
        for step in made.cleanup:
            await step()


@pytest.fixture
async def store(backend: Backend) -> SessionStore:
    """A clean, set-up store of each backend."""
    return await backend.open()
