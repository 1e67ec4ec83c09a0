"""Helpers for the demo's tests: the application in-process, driven through httpx.

The app runs its real lifespan (store set up and closed, purger started) with a
ManualClock, so timeouts are tested by moving the clock, never by sleeping. Clients
use ``https://`` so that the default ``Secure`` ``__Host-sid`` cookie round-trips as a
browser would send it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from starlette.applications import Starlette

from sessionward import ManualClock

BASE_URL = "https://demo.test"
COOKIE = "__Host-sid"
PASSWORDS = {"alice": "alice-demo-pass", "bob": "bob-demo-pass"}


@dataclass
class DemoUnderTest:
    """A running demo application and a way to open browsers (clients) on it."""

    app: Starlette
    clock: ManualClock
    stack: contextlib.AsyncExitStack
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    async def client(self, user_agent: str = "test-browser/1.0") -> httpx.AsyncClient:
        """Open a new client with its own cookie jar (another browser)."""
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url=BASE_URL,
            headers={"user-agent": user_agent},
        )
        await self.stack.enter_async_context(client)
        return client

    async def signed_in(self, user: str = "alice", user_agent: str = "test-browser/1.0") -> httpx.AsyncClient:
        """Open a client and sign ``user`` in through the JSON API."""
        client = await self.client(user_agent)
        response = await login(client, user)
        assert response.status_code == 200, response.text
        return client


MakeDemo = Callable[..., Awaitable[DemoUnderTest]]


async def login(client: httpx.AsyncClient, user: str = "alice", password: str | None = None) -> httpx.Response:
    """``POST /api/login`` with the demo password of ``user`` unless another is given."""
    return await client.post("/api/login", json={"username": user, "password": password or PASSWORDS[user]})


def sid(client: httpx.AsyncClient) -> str | None:
    """The session cookie in a client's jar."""
    return client.cookies.get(COOKIE)


def set_sid(client: httpx.AsyncClient, value: str) -> None:
    """Put a session cookie in a client's jar (replaying an old ID)."""
    client.cookies.clear()
    client.cookies.set(COOKIE, value, domain="demo.test")


_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def form_token(html: str) -> str:
    """The CSRF token of the first form in a page."""
    match = _TOKEN.search(html)
    assert match is not None, "the page has no csrf_token field"
    return match.group(1)


async def page_token(client: httpx.AsyncClient, path: str) -> str:
    """Load ``path`` and return its forms' CSRF token."""
    response = await client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return form_token(response.text)


async def form_login(client: httpx.AsyncClient, user: str = "alice", password: str | None = None) -> httpx.Response:
    """Sign in through the HTML form, as a browser does."""
    token = await page_token(client, "/login")
    return await client.post(
        "/login", data={"username": user, "password": password or PASSWORDS[user], "csrf_token": token}
    )
