"""Sites for ``sessionward audit`` to audit, served by uvicorn in a thread of the test process.

* :func:`hardened_site`: sessionward's middleware on a tiny Starlette app, with the security
  headers a careful operator adds. The audit must pass it.
* :func:`weak_site`: a deliberately broken hand-rolled session scheme — sequential IDs, a
  framework-default cookie name without HttpOnly/Secure/SameSite, no ID change at login,
  logout that only clears the cookie, IDs accepted from and put in URLs. The audit must
  fail it, item by item.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from sessionward import LoginRefusedError, SessionPolicy
from sessionward.asgi.middleware import SessionMiddleware
from sessionward.io.manager import SessionManager
from sessionward.starlette import get_session
from sessionward.stores.memory import MemoryStore

USERNAME = "alice"
PASSWORD = "alice-test-pass"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


def free_port() -> int:
    """Return a loopback TCP port that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve(app: ASGIApp, *, http: str = "auto", log_level: str = "warning") -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a thread; yield its base URL.

    ``http="h11"`` picks uvicorn's pure-Python protocol, which sends what a hostile site
    sends (control bytes in headers) where the default httptools one refuses.
    """
    config = uvicorn.Config(
        app, host="127.0.0.1", port=free_port(), log_level=log_level, lifespan="off", ws="none", http=http
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test site did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(10)


def with_headers(app: ASGIApp) -> ASGIApp:
    """Wrap ``app`` so every response carries :data:`SECURITY_HEADERS`."""

    async def wrapped(
        scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
    ) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", ())) + SECURITY_HEADERS
            await send(message)

        await app(scope, receive, send_with_headers)

    return wrapped


def hardened_site(*, login_page: bool = True, policy: SessionPolicy | None = None) -> ASGIApp:
    """sessionward on Starlette; ``login_page`` adds a GET /login that starts an anonymous session."""

    async def home(request: Request) -> Response:
        return HTMLResponse('<a href="/login">sign in</a> <a href="/api/session/status">status</a>')

    async def login_form(request: Request) -> Response:
        session = get_session(request)
        session["csrf"] = "token-for-the-form"
        return HTMLResponse('<form method="post" action="/api/login"></form>')

    async def login(request: Request) -> Response:
        body = await request.json()
        if body.get("username") != USERNAME or body.get("password") != PASSWORD:
            return JSONResponse({"error": "bad_credentials"}, status_code=401)
        try:
            await get_session(request).login(USERNAME)
        except LoginRefusedError:
            return JSONResponse({"error": "max_sessions"}, status_code=409)
        return JSONResponse({"ok": True, "user": USERNAME})

    async def logout(request: Request) -> Response:
        await get_session(request).logout()
        return JSONResponse({"ok": True})

    async def status(request: Request) -> Response:
        return JSONResponse(get_session(request).status().as_dict())

    routes = [
        Route("/", home),
        Route("/api/login", login, methods=["POST"]),
        Route("/api/logout", logout, methods=["POST"]),
        Route("/api/session/status", status),
    ]
    if login_page:
        routes.append(Route("/login", login_form))
    manager = SessionManager(MemoryStore(), policy or SessionPolicy())
    return with_headers(SessionMiddleware(Starlette(routes=routes), manager))


def weak_site() -> ASGIApp:
    """A hand-rolled, insecure session scheme (see the module docstring)."""
    counter = iter(range(1, 1_000_000))
    signed_in: dict[str, str] = {}

    def session_id(request: Request) -> str | None:
        # Accepts the ID from the URL too: what URL rewriting does.
        return request.cookies.get("session") or request.query_params.get("session")

    def issue(response: Response, value: str) -> None:
        response.headers.append("set-cookie", f"session={value}; Path=/")

    async def home(request: Request) -> Response:
        current = session_id(request)
        value = current or str(next(counter))
        response = HTMLResponse(f'<a href="/dashboard?session={value}">dashboard</a>')
        if current is None:
            issue(response, value)
        return response

    async def login(request: Request) -> Response:
        body = await request.json()
        if body.get("username") != USERNAME or body.get("password") != PASSWORD:
            return JSONResponse({"error": "bad_credentials"}, status_code=401)
        value = session_id(request) or str(next(counter))  # fixation: the ID survives login
        signed_in[value] = USERNAME
        response = JSONResponse({"ok": True})
        issue(response, value)
        return response

    async def logout(request: Request) -> Response:
        response = JSONResponse({"ok": True})  # the session stays alive server-side
        response.headers.append("set-cookie", "session=; Path=/; Max-Age=0")
        return response

    async def status(request: Request) -> Response:
        value = session_id(request)
        return JSONResponse({"authenticated": value in signed_in})

    routes = [
        Route("/", home),
        Route("/api/login", login, methods=["POST"]),
        Route("/api/logout", logout, methods=["POST"]),
        Route("/api/session/status", status),
    ]
    app: ASGIApp = Starlette(routes=routes)
    return app
