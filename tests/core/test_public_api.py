"""The public face: what a user imports comes from ``sessionward`` (ASGI) and ``sessionward.sync`` (WSGI)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import sessionward
import sessionward.sync


def test_an_asgi_app_needs_only_names_from_the_package() -> None:
    from sessionward import MemoryStore, SessionManager, SessionMiddleware, SessionPolicy, open_store

    manager = SessionManager(open_store("memory://"), SessionPolicy())
    assert isinstance(manager.store, MemoryStore)
    assert callable(SessionMiddleware)


def test_every_public_name_resolves() -> None:
    for name in sessionward.__all__:
        assert getattr(sessionward, name) is not None, name
    for name in sessionward.sync.__all__:
        assert getattr(sessionward.sync, name) is not None, name


def test_importing_the_package_loads_no_event_loop_until_the_io_layer_is_used() -> None:
    code = (
        "import sys, sessionward\n"
        "before = 'asyncio' in sys.modules\n"
        "sessionward.SessionManager\n"
        "print(before, 'asyncio' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        sessionward.NoSuchThing  # noqa: B018


def test_the_sync_layer_shares_the_async_layers_store_layout() -> None:
    from sessionward.sync import MemoryStore, SessionManager, SessionMiddleware, open_store

    manager = SessionManager(open_store("memory://"), sessionward.SessionPolicy())
    assert isinstance(manager.store, MemoryStore)
    assert callable(SessionMiddleware)
