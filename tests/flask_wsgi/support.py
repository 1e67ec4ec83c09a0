"""A small Flask app on sessionward and helpers to drive it with explicit cookies.

Clients are made with ``use_cookies=False``: each test says which cookie it sends, as an
attacker would, and reads what the server sets.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask, jsonify, request, session
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from sessionward import ManualClock, SessionPolicy
from sessionward._sync.stores.base import SessionStore
from sessionward.core.config import CookiePolicy
from sessionward.core.errors import LoginRefusedError
from sessionward.core.events import EventBus
from sessionward.flask import FlaskSession, SessionWard, csrf_token

COOKIE = "sid"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flask_app.py"


def plain_policy(**changes: object) -> SessionPolicy:
    """The default policy with a non-Secure cookie (plain-HTTP test client), plus ``changes``."""
    return SessionPolicy(cookie=CookiePolicy(secure=False)).with_(**changes)


def ward_session() -> FlaskSession:
    """``flask.session``, typed as what sessionward makes it."""
    assert isinstance(session, FlaskSession)  # the proxy passes isinstance on to the session
    return session


def make_app(
    store: SessionStore,
    clock: ManualClock,
    policy: SessionPolicy | None = None,
    events: EventBus | None = None,
    **config: Any,
) -> Flask:
    """A Flask app with the routes the tests call."""
    app = Flask(__name__)
    app.config.update(config)
    SessionWard(app, store=store, policy=policy or plain_policy(), clock=clock, events=events)

    @app.get("/whoami")
    def whoami() -> Any:
        current = ward_session()
        return jsonify(user=current.user, data=dict(current), handle=current.handle)

    @app.post("/set")
    def set_value() -> Any:
        for name, value in request.args.items():
            session[name] = value
        return jsonify(ok=True)

    @app.post("/login")
    def login() -> Any:
        try:
            ward_session().login(request.args.get("user", "alice"))
        except LoginRefusedError:
            return jsonify(error="max_sessions"), 409
        return jsonify(ok=True)

    @app.post("/clear-and-set-user")
    def clear_and_set_user() -> Any:
        # The seed's Flask-Session "login": clear the data, write the user (a logout here).
        session.clear()
        session["user_id"] = request.args.get("user", "alice")
        return jsonify(ok=True)

    @app.post("/logout")
    def logout() -> Any:
        ward_session().logout()
        return jsonify(ok=True)

    @app.get("/form")
    def form() -> Any:
        return jsonify(token=csrf_token())

    @app.post("/form")
    def post_form() -> Any:
        return jsonify(ok=True, field=request.form.get("field"))

    @app.get("/api/status")
    def status() -> Any:
        figures = ward_session().status()
        return jsonify(authenticated=figures.authenticated, remaining_idle_s=figures.remaining_idle_s)

    return app


def client(app: Flask, user_agent: str = "pytest", ip: str = "127.0.0.1") -> FlaskClient:
    """A client that sends only the cookies a test gives it."""
    made = app.test_client(use_cookies=False)
    made.environ_base.update({"HTTP_USER_AGENT": user_agent, "REMOTE_ADDR": ip})
    return made


def cookie_header(value: str, name: str = COOKIE) -> dict[str, str]:
    """The request header sending session cookie ``value``."""
    return {"Cookie": f"{name}={value}"}


def set_cookie(response: TestResponse, name: str = COOKIE) -> str | None:
    """The value the response sets for ``name`` ('' when it clears it), or ``None``."""
    for header in response.headers.getlist("Set-Cookie"):
        match = re.match(rf"{re.escape(name)}=([^;]*)", header)
        if match:
            return match.group(1)
    return None


def load_example() -> Any:
    """Import ``examples/flask_app.py`` (not a package) and return the module."""
    spec = importlib.util.spec_from_file_location("sessionward_flask_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def example_under_gunicorn(workers: int, env: Mapping[str, str]) -> Iterator[str]:
    """Serve examples/flask_app.py under gunicorn with ``env``; yield its URL once it answers."""
    binary = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    if binary is None:
        pytest.skip("gunicorn is not installed (it is in the dev extra)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    command = [binary, "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--chdir", str(EXAMPLE.parent)]
    server = subprocess.Popen(
        [*command, "flask_app:app"],
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url + "/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)
