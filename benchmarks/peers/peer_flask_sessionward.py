"""Flask with sessionward (``sessionward.flask``) on Redis, on the peers' endpoints.

sessionward's defaults everywhere (firewall, CSRF check, security headers, strict cookies,
timeouts, a new ID at login) except ``Secure``, since the load generator speaks plain
HTTP. Served by gunicorn; the Redis URL comes from ``BENCH_REDIS_URL``.
"""

from __future__ import annotations

import os

from flask import Flask, session
from tuning import after_startup

from sessionward.flask import FlaskSession, SessionWard

app = Flask(__name__)
app.config.update(
    SESSIONWARD_STORE=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0") + "?key_prefix=swflask:",
    SESSIONWARD_COOKIE_SECURE=False,
)
SessionWard(app)


@app.post("/login")
def login() -> dict[str, object]:
    assert isinstance(session, FlaskSession)
    session.login("bench")
    session["n"] = 0
    return {"ok": True}


@app.get("/read")
def read() -> tuple[dict[str, object], int]:
    assert isinstance(session, FlaskSession)
    if session.user is None:
        return {"error": "no session"}, 401
    return {"n": session["n"]}, 200


@app.post("/incr")
def incr() -> tuple[dict[str, object], int]:
    assert isinstance(session, FlaskSession)
    if session.user is None:
        return {"error": "no session"}, 401
    session["n"] = int(str(session["n"])) + 1
    return {"n": session["n"]}, 200


after_startup()
