"""Helpers shared by tests (importable as ``tests_support``)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_SERVICES = os.environ.get("SESSIONWARD_REQUIRE_SERVICES", "").strip().lower() in ("1", "true", "yes")


def service_missing(reason: str) -> NoReturn:
    """Skip the test because a service is missing, or fail when services are required."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing (SESSIONWARD_REQUIRE_SERVICES=1): {reason}", pytrace=False)
    pytest.skip(reason)
