"""Shared test fixtures.

Service fixtures live in ``support/services.py`` (PostgreSQL, MariaDB: a private database per
run), ``support/redis_servers.py`` (private redis-server processes, a local cluster) and
``support/postgres_servers.py`` (private PostgreSQL servers that may be killed). A test
that needs a missing service skips with the reason, or fails when
``SESSIONWARD_REQUIRE_SERVICES=1`` (as in CI): see :func:`service_missing`.
"""

from __future__ import annotations

import pytest

from sessionward import ManualClock
from support.helpers import service_missing

pytest_plugins = ["support.services", "support.redis_servers", "support.postgres_servers", "support.store_factories"]

__all__ = ["service_missing"]


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when the test says so."""
    return ManualClock()
