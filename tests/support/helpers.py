"""Helpers shared by tests (importable as ``support.helpers``)."""

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


# -- a small Starlette app on the session middleware, shared by adapter and security tests --

from collections.abc import Awaitable, Callable  # noqa: E402

import httpx  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse, PlainTextResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

from sessionward import CookiePolicy, SessionPolicy  # noqa: E402
from sessionward.asgi.middleware import SessionMiddleware  # noqa: E402
from sessionward.core.clock import Clock  # noqa: E402
from sessionward.core.events import EventBus, SessionEvent  # noqa: E402
from sessionward.io.manager import SessionManager  # noqa: E402
from sessionward.starlette import get_session  # noqa: E402
from sessionward.stores.base import SessionStore  # noqa: E402

INSECURE_COOKIE = CookiePolicy(secure=False)
"""Tests talk plain http://, where a client's cookie jar holds back Secure cookies."""


def plain_http_policy(**changes: object) -> SessionPolicy:
    """The default policy with a non-Secure cookie, plus ``changes``."""
    return SessionPolicy(cookie=INSECURE_COOKIE).with_(**changes)


async def _login(request: Request) -> Response:
    session = get_session(request)
    await session.login(request.query_params.get("user", "alice"))
    return JSONResponse({"ok": True, "user": session.user})


async def _logout(request: Request) -> Response:
    await get_session(request).logout()
    return JSONResponse({"ok": True})


async def _whoami(request: Request) -> Response:
    session = get_session(request)
    return JSONResponse({"user": session.user, "data": dict(session), "status": session.status().as_dict()})


async def _set(request: Request) -> Response:
    session = get_session(request)
    for key, value in request.query_params.items():
        session[key] = value
    return JSONResponse({"ok": True})


async def _incr(request: Request) -> Response:
    session = get_session(request)
    session["n"] = int(session.get("n", 0)) + 1
    return JSONResponse({"n": session["n"]})


async def _plain(request: Request) -> Response:
    return PlainTextResponse("no session touched")


async def _boom(request: Request) -> Response:
    get_session(request)["written_before_error"] = True
    return PlainTextResponse("failed", status_code=500)


async def _elevate(request: Request) -> Response:
    await get_session(request).elevate()
    return JSONResponse({"ok": True})


async def _rotate(request: Request) -> Response:
    await get_session(request).rotate_id()
    return JSONResponse({"ok": True})


ROUTES = [
    Route("/login", _login, methods=["POST"]),
    Route("/api/login", _login, methods=["POST"]),
    Route("/logout", _logout, methods=["POST"]),
    Route("/whoami", _whoami),
    Route("/api/whoami", _whoami),
    Route("/set", _set, methods=["POST"]),
    Route("/incr", _incr, methods=["POST"]),
    Route("/plain", _plain),
    Route("/boom", _boom, methods=["POST"]),
    Route("/elevate", _elevate, methods=["POST"]),
    Route("/rotate", _rotate, methods=["POST"]),
]


class Recorder:
    """An event subscriber that keeps what it receives."""

    def __init__(self) -> None:
        self.events: list[SessionEvent] = []

    def __call__(self, event: SessionEvent) -> None:
        self.events.append(event)

    def names(self) -> list[str]:
        """The names of the events received, in order."""
        return [event.name.value for event in self.events]


def make_app(
    store: SessionStore,
    *,
    clock: Clock,
    policy: SessionPolicy | None = None,
    routes: list[Route] | None = None,
    events: EventBus | None = None,
) -> tuple[SessionMiddleware, SessionManager]:
    """Return the test app wrapped in the session middleware, and its manager."""
    manager = SessionManager(store, policy or plain_http_policy(), clock=clock, events=events)
    return SessionMiddleware(Starlette(routes=routes or ROUTES), manager), manager


def client_for(app: Callable[..., object], base_url: str = "http://testserver") -> httpx.AsyncClient:
    """An httpx client that calls ``app`` in-process."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)  # type: ignore[arg-type]


def set_cookie_value(response: httpx.Response, name: str = "sid") -> str | None:
    """The value the response sets for cookie ``name`` ('' when it clears it), or None."""
    for header in response.headers.get_list("set-cookie"):
        cookie_name, _, rest = header.partition("=")
        if cookie_name == name:
            return rest.split(";", 1)[0]
    return None


async def call_raw(
    app: Callable[..., Awaitable[None]], method: str, raw_path: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Call an ASGI app with a request target exactly as given (no client normalizes it)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": raw_path.decode("latin-1").split("?", 1)[0],
        "raw_path": raw_path,
        "query_string": b"",
        "root_path": "",
        "headers": headers or [],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    body = b"".join(bytes(m.get("body", b"")) for m in sent[1:])  # type: ignore[call-overload]
    response_headers: list[tuple[bytes, bytes]] = list(start.get("headers", []))  # type: ignore[call-overload]
    return int(start["status"]), response_headers, body  # type: ignore[call-overload]
