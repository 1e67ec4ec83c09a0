"""Shared test fixtures.

Service fixtures live in ``_services.py`` (PostgreSQL, MariaDB: a private database per
run) and ``_redis_servers.py`` (private redis-server processes, a local cluster). A test
that needs a missing service skips with the reason, or fails when
``SESSIONWARD_REQUIRE_SERVICES=1`` (as in CI): see :func:`service_missing`.
"""

from __future__ import annotations

import pytest

from sessionward import ManualClock
from tests_support import service_missing

pytest_plugins = ["_services", "_redis_servers", "stores_factories"]

__all__ = ["service_missing"]


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when the test says so."""
    return ManualClock()
