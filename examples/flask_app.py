"""A Flask login flow on sessionward: run ``flask --app examples/flask_app.py run``.

The seed's Flask-Session version calls ``session.clear()`` at login, which keeps the
session ID (a fixation hole). Here ``current_session().login(user)`` gives the session a new ID and
kills the old one; forms carry ``csrf_token()``; the store is ``SESSIONWARD_STORE``
(``memory://`` unless set), and every ``SESSIONWARD_*`` setting applies.
"""

from __future__ import annotations

import hmac
import os
from typing import Any

from flask import Flask, redirect, render_template_string, request, session

from sessionward.core.errors import LoginRefusedError
from sessionward.flask import SessionWard, current_session

USERS = {"alice": "alice-demo-pass", "bob": "bob-demo-pass"}  # a real app checks password hashes

PAGE = """<!doctype html><title>sessionward + Flask</title>
{% if user %}<p>Signed in as {{ user }}.</p>
<form method="post" action="/logout"><input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
<button>Sign out</button></form>
{% else %}<p>{{ message }}</p><form method="post" action="/login">
<input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
<input name="username"> <input name="password" type="password"> <button>Sign in</button></form>{% endif %}"""


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app; ``config`` overrides Flask config keys (tests pass their store, clock…)."""
    app = Flask(__name__)
    app.config.update({k: v for k, v in os.environ.items() if k.startswith("SESSIONWARD_")})
    app.config.update(config or {})
    SessionWard(app, clock=app.config.get("SESSIONWARD_TEST_CLOCK"))

    @app.get("/")
    def index() -> str:
        return render_template_string(PAGE, user=session.get("name"), message=request.args.get("reason", ""))

    @app.post("/login")
    def login() -> Any:
        name = request.form.get("username", "")
        if not hmac.compare_digest(USERS.get(name, "\0"), request.form.get("password", "")):
            return render_template_string(PAGE, user=None, message="Wrong name or password."), 401
        try:
            current_session().login(name)
        except LoginRefusedError:
            return render_template_string(PAGE, user=None, message="Signed in elsewhere already."), 409
        session["name"] = name
        return redirect("/", 303)

    @app.post("/logout")
    def logout() -> Any:
        current_session().logout()
        return redirect("/", 303)

    return app


app = create_app()
