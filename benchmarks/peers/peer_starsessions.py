"""starsessions with its Redis store, configured as its README shows, on the peers' endpoints.

The Redis URL comes from ``BENCH_REDIS_URL`` (set by ``benchmarks/peers.py``).
"""

from __future__ import annotations

import os

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starsessions import SessionAutoloadMiddleware, SessionMiddleware, regenerate_session_id
from starsessions.stores.redis import RedisStore
from tuning import after_startup


async def login(request: Request) -> Response:
    regenerate_session_id(request)  # fixation defence, as its docs advise at login
    request.session.clear()
    request.session["user"] = "bench"
    request.session["n"] = 0
    return JSONResponse({"ok": True})


async def read(request: Request) -> Response:
    if "user" not in request.session:
        return JSONResponse({"error": "no session"}, status_code=401)
    return JSONResponse({"n": request.session["n"]})


async def incr(request: Request) -> Response:
    if "user" not in request.session:
        return JSONResponse({"error": "no session"}, status_code=401)
    request.session["n"] += 1
    return JSONResponse({"n": request.session["n"]})


store = RedisStore(connection=Redis.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")))
app = Starlette(
    routes=[Route("/login", login, methods=["POST"]), Route("/read", read), Route("/incr", incr, methods=["POST"])],
    middleware=[
        Middleware(SessionMiddleware, store=store, cookie_https_only=False, lifetime=1800, rolling=True),
        Middleware(SessionAutoloadMiddleware),
    ],
)

after_startup()
