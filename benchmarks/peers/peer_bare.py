"""The baseline: a bare Starlette app without sessions, on the peers' three endpoints.

``/read`` and ``/incr`` answer a constant counter: what is measured is the server, the
framework and the load generator, i.e. everything a session library adds its cost to.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tuning import after_startup


async def login(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def read(request: Request) -> Response:
    return JSONResponse({"n": 0})


async def incr(request: Request) -> Response:
    return JSONResponse({"n": 0})


app = Starlette(
    routes=[Route("/login", login, methods=["POST"]), Route("/read", read), Route("/incr", incr, methods=["POST"])]
)

after_startup()
