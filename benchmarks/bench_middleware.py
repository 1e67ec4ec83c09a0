"""Requests per second of a tiny Starlette app with and without the session middleware.

Runs in one process, calling the ASGI app directly (no sockets), so what is measured is
the middleware's own cost per request plus its store calls. Variants are run alternately
(A B C … C B A) several rounds to cancel drift; the printed ratios are against the bare
app measured in the same run, since absolute numbers on a shared machine are noisy.

Usage: .venv/bin/python benchmarks/bench_middleware.py [--requests N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionward import CookiePolicy, SessionPolicy
from sessionward.asgi.middleware import SessionMiddleware
from sessionward.io.manager import SessionManager
from sessionward.starlette import get_session
from sessionward.stores import open_store
from sessionward.stores.base import SessionStore
from sessionward.stores.memory import MemoryStore

App = Callable[..., Awaitable[None]]
"""An ASGI application."""


async def read(request: Request) -> Response:
    if "session" not in request.scope:
        return JSONResponse({"n": 0})
    session = get_session(request)
    return JSONResponse({"n": session.get("n", 0)})


async def incr(request: Request) -> Response:
    session = get_session(request)
    session["n"] = int(session.get("n", 0)) + 1
    return JSONResponse({"n": session["n"]})


async def login(request: Request) -> Response:
    session = get_session(request)
    await session.login("bench")
    session["n"] = 0
    return JSONResponse({"ok": True})


ROUTES = [Route("/read", read), Route("/incr", incr, methods=["POST"]), Route("/login", login, methods=["POST"])]


async def call(app: App, method: str, path: str, cookie: bytes | None) -> tuple[int, list[tuple[bytes, bytes]]]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), *([(b"cookie", cookie)] if cookie else [])],
        "client": ("127.0.0.1", 50000),
        "server": ("bench", 80),
    }
    start: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)

    await app(scope, receive, send)
    return start["status"], start.get("headers", [])


async def session_cookies(app: App, count: int) -> list[bytes]:
    cookies = []
    for _ in range(count):
        _, headers = await call(app, "POST", "/login", None)
        value = next(v for k, v in headers if k == b"set-cookie").split(b";", 1)[0]
        cookies.append(value)
    return cookies


async def measure(
    app: App, method: str, path: str, cookies: list[bytes], requests: int, concurrency: int = 32
) -> float:
    """Return requests per second with ``concurrency`` callers cycling over ``cookies``."""
    per_worker = requests // concurrency

    async def worker(offset: int) -> None:
        for i in range(per_worker):
            cookie = cookies[(offset + i * concurrency) % len(cookies)] if cookies else None
            status, _ = await call(app, method, path, cookie)
            if status != 200:
                raise RuntimeError(f"{method} {path} answered {status}")

    began = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return per_worker * concurrency / (time.perf_counter() - began)


async def main(requests: int, rounds: int, store_names: list[str]) -> None:
    policy = SessionPolicy(cookie=CookiePolicy(secure=False))
    bare: App = Starlette(routes=ROUTES)
    stores: dict[str, SessionStore] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in store_names:
            store = MemoryStore() if name == "memory" else open_store(name.replace("DIR", folder))
            await store.setup()
            stores[name.split(":", 1)[0]] = store
        variants: dict[str, tuple[App, list[bytes]]] = {"bare": (bare, [])}
        for name, store in stores.items():
            wrapped: App = SessionMiddleware(Starlette(routes=ROUTES), SessionManager(store, policy))
            variants[name] = (wrapped, await session_cookies(wrapped, 200))
        results: dict[tuple[str, str], list[float]] = {}
        order = list(variants)
        for round_number in range(rounds):
            for name in order if round_number % 2 == 0 else reversed(order):
                app, cookies = variants[name]
                for label, method, path in (("read", "GET", "/read"), ("incr", "POST", "/incr")):
                    if name == "bare" and label == "incr":
                        continue
                    results.setdefault((name, label), []).append(await measure(app, method, path, cookies, requests))
        for store in stores.values():
            await store.close()
    baseline = statistics.median(results[("bare", "read")])
    print(f"{'variant':<10} {'endpoint':<8} {'req/s (median)':>15} {'ratio to bare':>14}")
    for (name, label), samples in results.items():
        rps = statistics.median(samples)
        print(f"{name:<10} {label:<8} {rps:>15,.0f} {rps / baseline:>13.1%}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--store",
        action="append",
        dest="stores",
        help="store URL to measure (repeatable; DIR is a temporary folder); default: memory and SQLite",
    )
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.rounds, arguments.stores or ["memory", "sqlite:///DIR/bench.db"]))
