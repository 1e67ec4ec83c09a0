"""Sites for ``sessionward audit`` to audit, served by uvicorn in a thread of the test process.

* :func:`hardened_site`: sessionward's middleware on a tiny Starlette app, with the security
  headers a careful operator adds. The audit must pass it.
* :func:`weak_site`: a deliberately broken hand-rolled session scheme — sequential IDs, a
  framework-default cookie name without HttpOnly/Secure/SameSite, no ID change at login,
  logout that only clears the cookie, IDs accepted from and put in URLs. The audit must
  fail it, item by item.
* :func:`js_login_site` and :func:`weak_js_login_site`: the same two, signed in to only
  by the login page's script (``sessionward audit --browser``).
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
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


# -- sites whose login needs JavaScript (sessionward audit --browser) ---------------------------

_LOGIN_SCRIPT = """
document.getElementById('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  const answer = await fetch('/session', {
    method: 'POST',
    headers: {'content-type': 'application/json',
              'x-csrf-token': document.querySelector('meta[name=csrf-token]').content},
    body: JSON.stringify({user: form.elements.username.value, secret: form.elements.password.value}),
  });
  if (!answer.ok) {
    document.getElementById('error').textContent = 'Wrong user name or password';
    return;
  }
  const body = await answer.json();
  if (body.token) localStorage.setItem('access_token', body.token);
  sessionStorage.setItem('theme', 'dark');
  location.assign('/home');
});
"""


def _login_page(token: str) -> HTMLResponse:
    """A login form with no action nor method: only its script (``/login.js``) can sign in."""
    return HTMLResponse(
        "<!doctype html><title>Sign in</title>"
        f'<meta name="csrf-token" content="{token}">'
        '<form id="login"><label>User <input name="username" autocomplete="username"></label>'
        '<label>Password <input type="password" name="password"></label>'
        "<button>Sign in</button></form>"
        '<p id="error"></p><script src="/login.js"></script>'
    )


async def _login_script(request: Request) -> Response:
    return Response(_LOGIN_SCRIPT, media_type="text/javascript")


def js_login_site() -> ASGIApp:
    """sessionward on Starlette, signed in to only by the login page's script.

    The form has no action: submitted without JavaScript it GETs the login page again.
    The script posts ``{"user", "secret"}`` as JSON to ``/session`` with the page's CSRF
    token in an ``X-CSRF-Token`` header, then moves to ``/home``, whose logout form posts
    to ``/logout``.
    """

    def csrf(request: Request) -> str:
        session = get_session(request)
        token = session.get("csrf")
        if not isinstance(token, str):
            token = session["csrf"] = secrets.token_urlsafe(16)
        return token

    async def home(request: Request) -> Response:
        return HTMLResponse('<a href="/login">sign in</a>')

    async def login_page(request: Request) -> Response:
        return _login_page(csrf(request))

    async def sign_in(request: Request) -> Response:
        if request.headers.get("x-csrf-token") != get_session(request).get("csrf"):
            return JSONResponse({"error": "csrf"}, status_code=403)
        body = await request.json()
        if body.get("user") != USERNAME or body.get("secret") != PASSWORD:
            return JSONResponse({"error": "bad_credentials"}, status_code=401)
        await get_session(request).login(USERNAME)
        return JSONResponse({"ok": True})

    async def signed_in_home(request: Request) -> Response:
        if not get_session(request).status().authenticated:
            return RedirectResponse("/login", status_code=303)
        return HTMLResponse(
            f'<h1>Hello {USERNAME}</h1><form method="post" action="/logout">'
            f'<input type="hidden" name="csrf" value="{csrf(request)}"><button>Sign out</button></form>'
        )

    async def logout(request: Request) -> Response:
        form = await request.form()
        if form.get("csrf") != get_session(request).get("csrf"):
            return PlainTextResponse("csrf", status_code=403)
        await get_session(request).logout()
        return RedirectResponse("/login", status_code=303)

    async def status(request: Request) -> Response:
        return JSONResponse(get_session(request).status().as_dict())

    routes = [
        Route("/", home),
        Route("/login", login_page),
        Route("/login.js", _login_script),
        Route("/session", sign_in, methods=["POST"]),
        Route("/home", signed_in_home),
        Route("/logout", logout, methods=["POST"]),
        Route("/api/session/status", status),
    ]
    manager = SessionManager(MemoryStore(), SessionPolicy())
    return with_headers(SessionMiddleware(Starlette(routes=routes), manager))


def weak_js_login_site(*, cookie: str = "sid", attributes: str = "Path=/") -> ASGIApp:
    """A hand-rolled session scheme behind the same script-only login, with the usual mistakes.

    The ID a visitor brings (even one it made up) is kept at login (fixation), logging out
    only deletes the cookie, the cookie has no HttpOnly, and the login hands the script a
    token that it keeps in ``localStorage``. ``cookie`` and ``attributes`` make the
    session cookie's ``Set-Cookie``.
    """
    tokens: dict[str, str] = {}
    signed_in: set[str] = set()

    def issue(response: Response, value: str) -> None:
        response.headers.append("set-cookie", f"{cookie}={value}; {attributes}")

    async def home(request: Request) -> Response:
        return HTMLResponse('<a href="/login">sign in</a>')

    async def login_page(request: Request) -> Response:
        value = request.cookies.get(cookie)
        fresh = value is None  # an anonymous session starts here; a cookie brought along is taken as it is
        if value is None:
            value = secrets.token_hex(16)
        response = _login_page(tokens.setdefault(value, secrets.token_hex(8)))
        if fresh:
            issue(response, value)
        return response

    async def sign_in(request: Request) -> Response:
        value = request.cookies.get(cookie)
        if value is None or request.headers.get("x-csrf-token") != tokens.get(value):
            return JSONResponse({"error": "csrf"}, status_code=403)
        body = await request.json()
        if body.get("user") != USERNAME or body.get("secret") != PASSWORD:
            return JSONResponse({"error": "bad_credentials"}, status_code=401)
        signed_in.add(value)  # the same ID, now signed in
        return JSONResponse({"ok": True, "token": f"eyJhbGciOiJIUzI1NiJ9.{secrets.token_urlsafe(24)}.{value}"})

    async def signed_in_home(request: Request) -> Response:
        if request.cookies.get(cookie) not in signed_in:
            return RedirectResponse("/login", status_code=303)
        return HTMLResponse(f'<h1>Hello {USERNAME}</h1><a href="/logout">Sign out</a>')

    async def logout(request: Request) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.headers.append("set-cookie", f"{cookie}=; Max-Age=0; {attributes}")  # the session lives on
        return response

    async def status(request: Request) -> Response:
        return JSONResponse({"authenticated": request.cookies.get(cookie) in signed_in})

    routes = [
        Route("/", home),
        Route("/login", login_page),
        Route("/login.js", _login_script),
        Route("/session", sign_in, methods=["POST"]),
        Route("/home", signed_in_home),
        Route("/logout", logout),
        Route("/api/session/status", status),
    ]
    app: ASGIApp = Starlette(routes=routes)
    return app
