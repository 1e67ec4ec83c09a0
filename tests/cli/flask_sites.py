"""Flask sites for ``sessionward audit``, served by werkzeug's threaded server in a thread.

Both sign in with the real Flask-Login, the way its documentation shows: a
``LoginManager`` with ``login_view``, ``login_user`` at login (no new session ID),
``login_required`` on the profile page (which sends a visitor to
``/login?next=<the page asked for>``), and ``/logout`` a plain link (a GET) calling
``logout_user``. The login form is the one Flask-WTF renders (not installed here; the few
lines it would run are written out): a hidden ``csrf_token`` (a random token kept in the
session, sent signed by itsdangerous), ``username`` and ``password`` fields and a
"remember me" box.

* :func:`flask_session_site`: with Flask-Session (server-side sessions in a cachelib
  ``SimpleCache``, the ID signed with itsdangerous: ``session=<id>.<signature>``).
  Weak by default: fixation (the ID survives login), the name ``session``, no ``Secure``
  nor ``SameSite``, a 31-day cookie, no security headers, and the logout leaves the
  cookie. Right: ``HttpOnly``, strict (an unknown ID gets a new one), logout ends the
  sign-in server-side, random 256-bit IDs, ``Vary: Cookie``.
* :func:`flask_cookie_site`: Flask's own sessions: the session *data* signed in the cookie
  (``session=<base64 JSON>.<timestamp>.<signature>``). Weak: the data (with the user
  name) readable in the cookie, and a logged-out cookie replayed from elsewhere still
  signs in; the same cookie attributes. Right: no fixation (the cookie changes at
  login), a forged value is refused.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from cachelib import SimpleCache
from cli_sites import PASSWORD, USERNAME, free_port
from flask import Flask, redirect, request, session, url_for
from flask_login import (  # type: ignore[import-untyped]
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
)
from flask_session import Session  # type: ignore[import-untyped]
from itsdangerous import BadData, URLSafeTimedSerializer
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Response

LOGIN_PAGE = """<!doctype html><title>Sign in</title>
<form method="post" action="{action}" id="login-form">
  <input id="csrf_token" name="csrf_token" type="hidden" value="{token}">
  <label>Username <input id="username" name="username" required type="text" value=""></label>
  <label>Password <input id="password" name="password" required type="password" value=""></label>
  <label><input id="remember" name="remember" type="checkbox" value="y"> Remember me</label>
  <input id="submit" name="submit" type="submit" value="Sign In">
</form>"""


class User(UserMixin):  # type: ignore[misc]
    """The test account, as Flask-Login's user_loader gives it."""

    id = USERNAME


def flask_app(*, server_side: bool) -> Flask:
    """A Flask site with a Flask-Login form login (see the module docstring)."""
    app = Flask(__name__)
    app.secret_key = secrets.token_hex(32)
    if server_side:
        app.config.update(SESSION_TYPE="cachelib", SESSION_CACHELIB=SimpleCache(), SESSION_USE_SIGNER=True)
        with warnings.catch_warnings():
            # Flask-Session 0.8 deprecates the signer, which sites still use; the audit must read both.
            warnings.simplefilter("ignore", DeprecationWarning)
            Session(app)
    login_manager = LoginManager(app)
    login_manager.login_view = "login"

    @login_manager.user_loader  # type: ignore[untyped-decorator]
    def load_user(user_id: str) -> User | None:
        return User() if user_id == USERNAME else None

    tokens = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token")

    def generate_csrf() -> str:
        if "csrf_token" not in session:
            session["csrf_token"] = hashlib.sha1(os.urandom(64)).hexdigest()
        return tokens.dumps(session["csrf_token"])

    def csrf_valid() -> bool:
        try:
            return bool(tokens.loads(request.form.get("csrf_token", ""), max_age=3600) == session.get("csrf_token"))
        except BadData:
            return False

    @app.get("/")
    def index() -> str:
        return '<a href="/login">Sign in</a>'

    @app.route("/login", methods=["GET", "POST"])
    def login() -> str | Response:
        signed_in = request.form.get("username") == USERNAME and request.form.get("password") == PASSWORD
        if request.method == "POST" and csrf_valid() and signed_in:
            login_user(User(), remember=request.form.get("remember") == "y")  # keeps the session ID
            return redirect(request.args.get("next") or url_for("profile"))
        return LOGIN_PAGE.format(action=url_for("login"), token=generate_csrf())

    @app.get("/profile")
    @login_required  # type: ignore[untyped-decorator]
    def profile() -> str:
        return f'<p>Signed in as {current_user.id}</p><a href="{url_for("logout")}">Log out</a>'

    @app.get("/logout")
    def logout() -> Response:
        logout_user()
        return redirect(url_for("index"))

    return app


def flask_session_site() -> Flask:
    """Flask with Flask-Session (server-side sessions, signed IDs)."""
    return flask_app(server_side=True)


def flask_cookie_site() -> Flask:
    """Flask with its default client-side sessions."""
    return flask_app(server_side=False)


WsgiApp = Callable[..., Any]


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one line per request would drown the test's output


@contextmanager
def serve_wsgi(app: WsgiApp) -> Iterator[str]:
    """Serve a WSGI app with werkzeug's threaded server in a thread; yield its base URL."""
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
