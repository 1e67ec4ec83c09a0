"""A Quart login flow on sessionward: run ``quart --app examples/quart_app.py run``.

No ``SECRET_KEY``: the browser holds only the session ID, the data lives in the store
(``SESSIONWARD_STORE``, ``memory://`` unless set; every ``SESSIONWARD_*`` setting
applies). ``await current_session().login(user)`` gives the session a new ID and kills
the old one (the pre-login ID an attacker may have planted is dead); forms carry
``csrf_token()``; failed sign-ins are throttled (429); ``session.clear()`` signs out for
real, ending the session in the store. The cookie is ``Secure``: to try it over plain
HTTP on your own machine, start it with ``SESSIONWARD_COOKIE_SECURE=false``.
"""

from __future__ import annotations

import hmac
import os
from typing import Any

from quart import Quart, redirect, render_template_string, request, session

from sessionward.core.errors import LoginRefusedError
from sessionward.quart import SessionWard, current_session

USERS = {"alice": "alice-demo-pass", "bob": "bob-demo-pass"}  # a real app checks password hashes

PAGE = """<!doctype html><title>sessionward + Quart</title>
{% if user %}<p>Signed in as {{ user }}.</p>
<form method="post" action="/logout"><input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
<button>Sign out</button></form>
{% else %}<p>{{ message }}</p><form method="post" action="/login">
<input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
<input name="username"> <input name="password" type="password"> <button>Sign in</button></form>{% endif %}"""


def create_app(config: dict[str, Any] | None = None) -> Quart:
    """Build the app; ``config`` overrides Quart config keys (tests pass their store, clock…)."""
    app = Quart(__name__)
    app.config.update({k: v for k, v in os.environ.items() if k.startswith("SESSIONWARD_")})
    app.config.update(config or {})
    SessionWard(app, clock=app.config.get("SESSIONWARD_TEST_CLOCK"))

    @app.get("/")
    async def index() -> str:
        return await render_template_string(PAGE, user=current_session().user, message=request.args.get("reason", ""))

    @app.post("/login")
    async def login() -> Any:
        form = await request.form
        name = form.get("username", "")
        await current_session().throttle.check(name)  # LoginThrottledError: 429 with Retry-After
        if not hmac.compare_digest(USERS.get(name, "\0"), form.get("password", "")):
            await current_session().throttle.failed(name)
            return await render_template_string(PAGE, user=None, message="Wrong name or password."), 401
        await current_session().throttle.succeeded(name)
        try:
            await current_session().login(name)
        except LoginRefusedError:
            return await render_template_string(PAGE, user=None, message="Signed in elsewhere already."), 409
        session["greeting"] = f"Welcome back, {name}"
        return redirect("/", 303)

    @app.post("/logout")
    async def logout() -> Any:
        session.clear()  # ends the session in the store and clears its cookie
        return redirect("/", 303)

    return app


app = create_app()
