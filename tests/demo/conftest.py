"""Fixtures for the demo's tests (helpers live in :mod:`demo.support`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

import pytest

from demo.support import DemoUnderTest, MakeDemo
from sessionward import ManualClock
from sessionward.demo import create_app


@pytest.fixture
async def make_demo(clock: ManualClock) -> AsyncIterator[MakeDemo]:
    """Build demos with given ``SESSIONWARD_*`` variables; all are shut down at the end."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(
            env: Mapping[str, str] | None = None, store_url: str = "memory://", debug: bool = False
        ) -> DemoUnderTest:
            app = create_app(store_url, debug, environ=dict(env or {}), clock=clock)
            await stack.enter_async_context(app.router.lifespan_context(app))
            return DemoUnderTest(app=app, clock=clock, stack=stack)

        yield make


@pytest.fixture
async def demo(make_demo: MakeDemo) -> DemoUnderTest:
    """The demo with default settings on the memory store."""
    return await make_demo()
