"""sessionward's ASGI middleware with the Redis store, on the peers' endpoints.

Defaults everywhere (firewall, strict cookies, idle/absolute/renewal timeouts, ID
rotation at login) except ``Secure``, since the load generator speaks plain HTTP. The
Redis URL comes from ``BENCH_REDIS_URL`` (set by ``benchmarks/peers.py``).
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tuning import after_startup

from sessionward import CookiePolicy, SessionPolicy
from sessionward.asgi.middleware import SessionMiddleware
from sessionward.io.manager import SessionManager
from sessionward.starlette import get_session
from sessionward.stores import open_store


async def login(request: Request) -> Response:
    session = get_session(request)
    await session.login("bench")
    session["n"] = 0
    return JSONResponse({"ok": True})


async def read(request: Request) -> Response:
    session = get_session(request)
    if session.user is None:
        return JSONResponse({"error": "no session"}, status_code=401)
    return JSONResponse({"n": session["n"]})


async def incr(request: Request) -> Response:
    session = get_session(request)
    if session.user is None:
        return JSONResponse({"error": "no session"}, status_code=401)
    session["n"] = int(session["n"]) + 1
    return JSONResponse({"n": session["n"]})


store = open_store(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0") + "?key_prefix=swbench:")
manager = SessionManager(store, SessionPolicy(cookie=CookiePolicy(secure=False)))
app = SessionMiddleware(
    Starlette(
        routes=[Route("/login", login, methods=["POST"]), Route("/read", read), Route("/incr", incr, methods=["POST"])]
    ),
    manager,
)

after_startup()
