"""Sites written the way other frameworks write them by default, for ``sessionward audit``.

Each imitates one framework's session handling byte for byte where the audit can see it
(cookie name, value format, attributes, what happens to an unknown ID, at login and at
logout), on Starlette, and has known weaknesses: what the framework does by default.

* :func:`express_site`: express-session (``connect.sid=s%3A<id>.<signature>``, the
  signature an HMAC-SHA256 in base64, the whole percent-encoded; ``saveUninitialized``
  gives every visitor a session) with a passport-style form login that regenerates the
  session, a ``_csrf`` hidden field, and a logout that destroys the session and clears
  the cookie. Weak by default: the name ``connect.sid``, no ``Secure``, no ``SameSite``,
  no security headers, no caching directives. Right: strict (an unknown ID gets a new
  session), no fixation, logout, random 192-bit IDs.
* :func:`php_like_site`: PHP's session module with its defaults (``PHPSESSID``,
  ``path=/`` only, ``session.use_strict_mode=0``: an unknown ID is adopted, and no cookie
  is sent back for it), a login form posting to itself with a hidden ``token``, an
  ``email`` field and ``session_regenerate_id(true)`` at login, and a logout link that
  calls ``session_destroy()`` without deleting the cookie. Weak: the adoption of unknown
  IDs (strict mode), the cookie attributes and name, no security headers. Right:
  fixation, logout, ``Cache-Control: no-store`` (``session.cache_limiter=nocache``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import secrets
from typing import Any
from urllib.parse import quote, unquote

from cli_sites import PASSWORD, USERNAME, ASGIApp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

EXPRESS_COOKIE = "connect.sid"
PHP_COOKIE = "PHPSESSID"


def express_site() -> ASGIApp:
    """express-session with passport-style login (see the module docstring)."""
    secret = secrets.token_bytes(32)
    store: dict[str, dict[str, Any]] = {}

    def sign(sid: str) -> str:
        # cookie-signature: val + "." + base64(HMAC-SHA256(val)) with the "=" padding removed.
        mac = hmac.new(secret, sid.encode(), hashlib.sha256).digest()
        return f"s:{sid}.{base64.b64encode(mac).decode().rstrip('=')}"

    def unsign(value: str) -> str | None:
        if not value.startswith("s:"):
            return None
        sid = value[2:].rpartition(".")[0]
        return sid if hmac.compare_digest(sign(sid), value) else None

    def set_cookie(response: Response, sid: str) -> None:
        # express's res.cookie encodes with encodeURIComponent; express-session's defaults.
        value = quote(sign(sid), safe="-_.!~*'()")
        response.headers.append("set-cookie", f"{EXPRESS_COOKIE}={value}; Path=/; HttpOnly")

    def generate() -> str:
        sid = base64.urlsafe_b64encode(secrets.token_bytes(24)).decode()  # uid-safe(24)
        store[sid] = {}
        return sid

    def load(request: Request) -> tuple[str, dict[str, Any], bool]:
        raw = request.cookies.get(EXPRESS_COOKIE)
        sid = unsign(unquote(raw)) if raw else None
        if sid is not None and sid in store:
            return sid, store[sid], False
        sid = generate()  # an unknown or badly signed ID starts a new session
        return sid, store[sid], True

    def page(request: Request, body: str, status: int = 200) -> Response:
        sid, _, fresh = load(request)
        response = HTMLResponse(f"<!doctype html><title>express</title>{body}", status)
        if fresh:  # saveUninitialized: true
            set_cookie(response, sid)
        return response

    def csrf(data: dict[str, Any]) -> str:
        token: str = data.setdefault("csrf", secrets.token_urlsafe(18))
        return token

    async def home(request: Request) -> Response:
        return page(request, '<a href="/login">Log in</a>')

    async def login_form(request: Request) -> Response:
        sid, data, fresh = load(request)
        response = HTMLResponse(
            '<form method="post" action="/login">'
            f'<input type="hidden" name="_csrf" value="{csrf(data)}">'
            '<input name="username"><input type="password" name="password">'
            "<button>Log in</button></form>"
        )
        if fresh:
            set_cookie(response, sid)
        return response

    async def login(request: Request) -> Response:
        sid, data, _ = load(request)
        form = await request.form()
        if form.get("_csrf") != data.get("csrf"):
            return HTMLResponse("invalid csrf token", 403)
        if form.get("username") != USERNAME or form.get("password") != PASSWORD:
            return RedirectResponse("/login", 302)
        # passport >= 0.6: req.session.regenerate() before storing the user.
        store.pop(sid, None)
        new = generate()
        store[new]["user"] = USERNAME
        response = RedirectResponse("/dashboard", 302)
        set_cookie(response, new)
        return response

    async def dashboard(request: Request) -> Response:
        sid, data, fresh = load(request)
        if "user" not in data:
            response: Response = RedirectResponse("/login", 302)
        else:
            response = HTMLResponse(
                f"<p>Hello {data['user']}</p>"
                f'<form method="post" action="/logout"><input type="hidden" name="_csrf" value="{csrf(data)}">'
                "<button>Log out</button></form>"
            )
        if fresh:
            set_cookie(response, sid)
        return response

    async def logout(request: Request) -> Response:
        sid, data, _ = load(request)
        form = await request.form()
        if form.get("_csrf") != data.get("csrf"):
            return HTMLResponse("invalid csrf token", 403)
        store.pop(sid, None)  # req.session.destroy()
        response = RedirectResponse("/login", 302)
        response.headers.append("set-cookie", f"{EXPRESS_COOKIE}=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
        return response

    routes = [
        Route("/", home),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/dashboard", dashboard),
        Route("/logout", logout, methods=["POST"]),
    ]
    app: ASGIApp = Starlette(routes=routes)
    return app


_PHP_ID = re.compile(r"[a-zA-Z0-9,-]{22,256}")  # what PHP accepts as a session ID
_PHP_NO_CACHE = [
    ("expires", "Thu, 19 Nov 1981 08:52:00 GMT"),
    ("cache-control", "no-store, no-cache, must-revalidate"),
    ("pragma", "no-cache"),
]


def php_like_site() -> ASGIApp:
    """PHP's session module with its defaults (see the module docstring)."""
    sessions: dict[str, dict[str, Any]] = {}

    def session_start(request: Request) -> tuple[str, dict[str, Any], bool]:
        sid = request.cookies.get(PHP_COOKIE)
        if sid and _PHP_ID.fullmatch(sid):
            # session.use_strict_mode=0: an ID nobody issued is taken as it is.
            return sid, sessions.setdefault(sid, {}), False
        sid = secrets.token_hex(16)  # sid_length=32, sid_bits_per_character=4
        sessions[sid] = {}
        return sid, sessions[sid], True

    def respond(body: str, sid: str, send_cookie: bool, status: int = 200) -> Response:
        response = HTMLResponse(f"<!doctype html><title>php</title>{body}", status)
        return finish(response, sid, send_cookie)

    def finish(response: Response, sid: str, send_cookie: bool) -> Response:
        for name, value in _PHP_NO_CACHE:
            response.headers[name] = value
        if send_cookie:
            response.headers.append("set-cookie", f"{PHP_COOKIE}={sid}; path=/")
        return response

    async def home(request: Request) -> Response:
        return HTMLResponse('<a href="/login">Sign in</a>')

    def form(data: dict[str, Any], error: str = "") -> str:
        token = data.setdefault("token", secrets.token_hex(16))
        return (
            f"<p>{html.escape(error)}</p>"
            '<form method="post" action="">'
            f'<input type="hidden" name="token" value="{token}">'
            '<input type="email" name="email"><input type="password" name="password">'
            '<input type="submit" name="login" value="Sign in"></form>'
        )

    async def login_page(request: Request) -> Response:
        sid, data, fresh = session_start(request)
        return respond(form(data), sid, fresh)

    async def login(request: Request) -> Response:
        sid, data, fresh = session_start(request)
        posted = await request.form()
        if posted.get("token") != data.get("token") or posted.get("login") != "Sign in":
            return respond(form(data, "Expired form"), sid, fresh, 400)
        if posted.get("email") != USERNAME or posted.get("password") != PASSWORD:
            return respond(form(data, "Wrong e-mail or password"), sid, fresh)
        # session_regenerate_id(true): a new ID, the old session deleted.
        sessions.pop(sid, None)
        new = secrets.token_hex(16)
        sessions[new] = {**data, "user": USERNAME}
        return finish(RedirectResponse("/account", 302), new, True)

    async def account(request: Request) -> Response:
        sid, data, fresh = session_start(request)
        if "user" not in data:
            return finish(RedirectResponse("/login", 302), sid, fresh)
        return respond(f'<p>{data["user"]}</p><a href="/logout">Sign out</a>', sid, fresh)

    async def logout(request: Request) -> Response:
        sid, _, fresh = session_start(request)
        sessions.pop(sid, None)  # session_destroy(): the cookie stays in the browser
        return finish(RedirectResponse("/login", 302), sid, fresh)

    routes = [
        Route("/", home),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/account", account),
        Route("/logout", logout),
    ]
    app: ASGIApp = Starlette(routes=routes)
    return app
