"""A tiny Starlette app with sessionward's middleware: the app servers of the multi-login tests.

``build_app`` makes one in process; ``app_from_env`` is the uvicorn factory for running it
as a separate OS process (``ML_STORE``, ``ML_TABLE_PREFIX``, ``ML_AUDIT_LOG`` and the usual
``SESSIONWARD_*`` variables). Routes live under ``/api/`` so that an invalid session is
answered 401 with its reason.
"""

from __future__ import annotations

import os

from multilogin_worker import open_worker_store
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionward import CookiePolicy, EventBus, JsonAuditLogger, LoginRefusedError, SessionPolicy
from sessionward.asgi.middleware import SessionMiddleware
from sessionward.core.clock import Clock
from sessionward.io.manager import SessionManager
from sessionward.starlette import get_session
from sessionward.stores.base import SessionStore

COOKIE = "sid"
# Not Secure: the tests speak plain http to 127.0.0.1 and set the Cookie header by hand.
BASE_POLICY = SessionPolicy(cookie=CookiePolicy(secure=False))


async def login(request: Request) -> Response:
    body = await request.json()
    session = get_session(request)
    try:
        await session.login(str(body["user"]))
    except LoginRefusedError:
        return JSONResponse({"error": "max_sessions"}, status_code=409)
    return JSONResponse({"user": session.user, "handle": session.handle})


async def me(request: Request) -> Response:
    session = get_session(request)
    return JSONResponse({"user": session.user, "handle": session.handle})


async def sessions(request: Request) -> Response:
    session = get_session(request)
    if session.user is None:
        return JSONResponse({"error": "not_authenticated"}, status_code=401)
    return JSONResponse({"sessions": [info.as_dict() for info in await session.list_sessions()]})


async def revoke(request: Request) -> Response:
    session = get_session(request)
    if session.user is None:
        return JSONResponse({"error": "not_authenticated"}, status_code=401)
    # Only the owner's own sessions: revoke() refuses another user's handle.
    if not await session.revoke(request.path_params["handle"]):
        return JSONResponse({"error": "not_found"}, status_code=404)
    return Response(status_code=204)


async def elevate(request: Request) -> Response:
    session = get_session(request)
    await session.elevate()
    return JSONResponse({"elevated": session.is_elevated})


async def logout(request: Request) -> Response:
    await get_session(request).logout()
    return JSONResponse({"ok": True})


def build_app(
    store: SessionStore,
    policy: SessionPolicy = BASE_POLICY,
    events: EventBus | None = None,
    clock: Clock | None = None,
) -> SessionMiddleware:
    """Return the app on ``store``, emitting its events on ``events``."""
    routes = [
        Route("/api/login", login, methods=["POST"]),
        Route("/api/me", me),
        Route("/api/sessions", sessions),
        Route("/api/sessions/{handle}", revoke, methods=["DELETE"]),
        Route("/api/elevate", elevate, methods=["POST"]),
        Route("/api/logout", logout, methods=["POST"]),
    ]
    manager = SessionManager(store, policy, events=events or EventBus(), clock=clock)
    return SessionMiddleware(Starlette(routes=routes), manager)


class FileClock:
    """A clock the test moves for every server process at once: the time written in a file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self) -> float:
        with open(self.path) as file:
            return float(file.read())


def app_from_env() -> SessionMiddleware:
    """The uvicorn factory: the app as one of several servers sharing a store.

    ``ML_CLOCK_FILE``, when set, names the file :class:`FileClock` reads the time from.
    """
    store = open_worker_store(os.environ["ML_STORE"], os.environ.get("ML_TABLE_PREFIX", "sessionward_"))
    events = EventBus()
    events.subscribe(JsonAuditLogger(os.environ["ML_AUDIT_LOG"]))  # lives as long as the process
    clock_file = os.environ.get("ML_CLOCK_FILE")
    return build_app(
        store, SessionPolicy.from_env(base=BASE_POLICY), events, clock=FileClock(clock_file) if clock_file else None
    )
