"""Fixtures for the lifecycle tests: the demo on every store backend, behind a gate.

The demo runs in-process (``demo.support``) with a ManualClock; its store is replaced by a
:class:`~support.interleave.GatedStore` over the backend under test (every backend of the store
conformance suite, async and sync), so a test can hold one request between its load and
its write while another runs to completion.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import pytest

from demo.conftest import make_demo
from demo.support import DemoUnderTest, MakeDemo
from stores.backends import Backend
from stores.conftest import backend
from support.interleave import GatedStore

__all__ = ["backend", "make_demo"]

GatedDemo = Callable[..., Awaitable[tuple[DemoUnderTest, GatedStore]]]


@pytest.fixture
def gated_demo(backend: Backend, make_demo: MakeDemo) -> GatedDemo:
    """Build the demo with ``SESSIONWARD_*`` settings on the backend under test, gated."""

    async def make(env: Mapping[str, str] | None = None) -> tuple[DemoUnderTest, GatedStore]:
        demo = await make_demo(env)
        gated = GatedStore(await backend.open())
        demo.app.state.demo.manager.store = gated
        return demo, gated

    return make
