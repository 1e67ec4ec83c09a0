"""Fixtures of the Flask tests: a sync memory store and an app on it."""

from __future__ import annotations

import pytest
from flask import Flask

from sessionward import ManualClock
from sessionward._sync.stores import MemoryStore

from .support import make_app


@pytest.fixture
def store() -> MemoryStore:
    """A fresh sync in-memory store."""
    return MemoryStore()


@pytest.fixture
def app(store: MemoryStore, clock: ManualClock) -> Flask:
    """The test app on ``store`` with the manual clock."""
    return make_app(store, clock)
