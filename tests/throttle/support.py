"""A small application that signs users in as the documentation says, with login throttling.

``POST /login`` takes ``{"username", "password"}`` and does what the demo's
``POST /api/login`` does: ``session.throttle.check`` before the password (429 with
``Retry-After`` when held back), ``failed`` on a wrong one (401), ``succeeded`` then
``login`` on the right one (200). :class:`PasswordBook` counts every password it actually
checks: the figure the attack tests bound.
"""

from __future__ import annotations

import hmac

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionward import ManualClock
from sessionward.asgi.middleware import SessionMiddleware
from sessionward.core.config import LoginThrottlePolicy
from sessionward.core.errors import LoginThrottledError
from sessionward.core.events import EventBus
from sessionward.starlette import get_session
from sessionward.stores.base import SessionStore
from support.helpers import Recorder, make_app, plain_http_policy

PASSWORDS = {"alice": "correct horse battery staple", "bob": "hunter2-but-longer"}


class PasswordBook:
    """The application's users; counts the passwords it checks."""

    def __init__(self) -> None:
        self.checked = 0

    def verify(self, username: str, password: str) -> bool:
        self.checked += 1
        stored = PASSWORDS.get(username, "")
        return hmac.compare_digest(stored.encode(), password.encode()) and username in PASSWORDS


def throttled_app(
    store: SessionStore, clock: ManualClock, throttle: LoginThrottlePolicy | None = None, **changes: object
) -> tuple[SessionMiddleware, PasswordBook, Recorder]:
    """The login app on ``store``, its password book and its event recorder."""
    book = PasswordBook()

    async def login(request: Request) -> Response:
        body = await request.json()
        username, password = str(body["username"]), str(body["password"])
        session = get_session(request)
        try:
            await session.throttle.check(username)
        except LoginThrottledError as error:
            return JSONResponse(
                {"error": "throttled", "retry_after_s": error.retry_after_s},
                status_code=429,
                headers={"Retry-After": str(error.retry_after_s)},
            )
        if not book.verify(username, password):
            await session.throttle.failed(username)
            return JSONResponse({"error": "invalid_credentials"}, status_code=401)
        await session.throttle.succeeded(username)
        await session.login(username)
        return JSONResponse({"ok": True, "user": username})

    policy = plain_http_policy(login_throttle=throttle or LoginThrottlePolicy(), **changes)
    recorder = Recorder()
    events = EventBus()
    events.subscribe(recorder)
    app, _ = make_app(
        store, clock=clock, policy=policy, routes=[Route("/login", login, methods=["POST"])], events=events
    )
    return app, book, recorder


def browser(
    app: SessionMiddleware, ip: str = "198.51.100.7", headers: dict[str, str] | None = None
) -> httpx.AsyncClient:
    """A client connecting from ``ip``."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers)


async def attempt(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    """One sign-in attempt."""
    return await client.post("/login", json={"username": username, "password": password})
