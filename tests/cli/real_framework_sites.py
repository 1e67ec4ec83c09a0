"""Sites built on other frameworks' real session libraries, for ``sessionward audit``.

Unlike :mod:`cli_framework_sites` (imitations on Starlette), these run the libraries
themselves with their idiomatic defaults. The Flask ones (Flask-Login, Flask-Session) are
in :mod:`flask_sites`.

* :func:`starsessions_site`: Starlette with starsessions, as its README sets it up
  (``SessionMiddleware`` with an ``InMemoryStore`` and the default cookie options,
  ``SessionAutoloadMiddleware``), a login form whose CSRF token lives in the session (as
  starlette-wtf keeps it), ``regenerate_session_id`` at login as the README advises, and
  ``session.clear()`` at logout. Weak: the store writes under whatever ID the client sent,
  so an unknown ID is adopted (strict mode); the cookie name ``session``; no security
  headers and no caching directives. Right: ``HttpOnly``, ``Secure``, ``SameSite=Lax``, a
  browser-session cookie, a new ID at login, the session deleted (and the cookie with it)
  at logout, random 128-bit IDs.
* :func:`express_server`: the Express app of ``express_app/server.js`` (express-session),
  run by node in a child process (see that file for what it plants).
* :func:`django_server`: the Django project of :mod:`django_site`, in a child process.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from cli_sites import PASSWORD, USERNAME, ASGIApp, free_port
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

EXPRESS_APP = Path(__file__).parent / "express_app"
DJANGO_SITE = Path(__file__).parent / "django_site.py"


def starsessions_site() -> ASGIApp:
    """Starlette with starsessions' defaults (see the module docstring)."""
    from starsessions import InMemoryStore, SessionAutoloadMiddleware, SessionMiddleware, regenerate_session_id

    async def home(request: Request) -> Response:
        return HTMLResponse('<a href="/login">Sign in</a>')

    async def login_page(request: Request) -> Response:
        token = request.session.setdefault("csrf_token", secrets.token_urlsafe(24))
        return HTMLResponse(
            '<form method="post" action="/login">'
            f'<input type="hidden" name="csrf_token" value="{token}">'
            '<input name="username"><input type="password" name="password"><button>Sign in</button></form>'
        )

    async def login(request: Request) -> Response:
        form = await request.form()
        token = request.session.get("csrf_token")
        if token is None or not secrets.compare_digest(str(form.get("csrf_token", "")), token):
            return HTMLResponse("The CSRF token is missing or wrong.", 400)
        if form.get("username") != USERNAME or form.get("password") != PASSWORD:
            return RedirectResponse("/login", 303)
        regenerate_session_id(request)
        request.session["user"] = USERNAME
        return RedirectResponse("/profile", 303)

    async def profile(request: Request) -> Response:
        if "user" not in request.session:
            return RedirectResponse("/login", 303)
        return HTMLResponse(
            f"<p>Signed in as {request.session['user']}</p>"
            '<form method="post" action="/logout"><button>Log out</button></form>'
        )

    async def logout(request: Request) -> Response:
        request.session.clear()  # starsessions deletes an emptied session and its cookie
        return RedirectResponse("/", 303)

    app: ASGIApp = Starlette(
        routes=[
            Route("/", home),
            Route("/login", login_page, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/profile", profile),
            Route("/logout", logout, methods=["POST"]),
        ],
        middleware=[Middleware(SessionMiddleware, store=InMemoryStore()), Middleware(SessionAutoloadMiddleware)],
    )
    return app


def node_program() -> str | None:
    """The ``node`` executable, if this machine has one."""
    return shutil.which("node")


def express_modules_installed() -> bool:
    """Whether ``npm ci`` has installed the Express app's packages."""
    modules = EXPRESS_APP / "node_modules"
    return (modules / "express" / "package.json").is_file() and (modules / "express-session" / "package.json").is_file()


@contextmanager
def child_server(command: list[str], ready_path: str, log_path: Path, env: dict[str, str]) -> Iterator[str]:
    """Run ``command`` (which gets a free port as its last argument); yield the URL once ``ready_path`` answers."""
    port = free_port()
    with log_path.open("wb") as log:
        # A file, not a pipe: a full pipe would stop the site mid-audit.
        process = subprocess.Popen([*command, str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + ready_path, timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = log_path.read_text(errors="replace")
                    raise RuntimeError(f"{command[-1]} did not start: {output[-2000:]}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def _target_env() -> dict[str, str]:
    return {**os.environ, "SESSIONWARD_TARGET_USER": USERNAME, "SESSIONWARD_TARGET_PASSWORD": PASSWORD}


@contextmanager
def express_server(node: str, directory: Path) -> Iterator[str]:
    """Run ``express_app/server.js`` with ``node`` on a free port (its log in ``directory``); yield its URL."""
    command = [node, str(EXPRESS_APP / "server.js")]
    with child_server(command, "/login", directory / "express.log", _target_env()) as url:
        yield url


@contextmanager
def django_server(directory: Path) -> Iterator[str]:
    """Run ``django_site.py`` in a child process, its database and log in ``directory``; yield its URL."""
    command = [sys.executable, str(DJANGO_SITE), str(directory)]
    with child_server(command, "/", directory / "django.log", _target_env()) as url:
        yield url
