"""Flask with Flask-Session on Redis, as seed 000's own example configures it, on the peers' endpoints.

Served by gunicorn; the Redis URL comes from ``BENCH_REDIS_URL`` (set by ``benchmarks/peers.py``).
"""

from __future__ import annotations

import os

import redis
from flask import Flask, session
from flask_session import Session  # type: ignore[import-untyped]
from tuning import after_startup

app = Flask(__name__)
app.config.update(
    SECRET_KEY="benchmark-secret-not-for-production",
    SESSION_TYPE="redis",
    SESSION_PERMANENT=True,
    PERMANENT_SESSION_LIFETIME=1800,
    SESSION_REDIS=redis.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")),
    SESSION_COOKIE_HTTPONLY=True,
    SESSION_COOKIE_SECURE=False,
    SESSION_COOKIE_SAMESITE="Lax",
    SESSION_COOKIE_NAME="sid",
)
Session(app)


@app.post("/login")
def login() -> dict[str, object]:
    session.clear()
    session["user"] = "bench"
    session["n"] = 0
    return {"ok": True}


@app.get("/read")
def read() -> tuple[dict[str, object], int]:
    if "user" not in session:
        return {"error": "no session"}, 401
    return {"n": session["n"]}, 200


@app.post("/incr")
def incr() -> tuple[dict[str, object], int]:
    if "user" not in session:
        return {"error": "no session"}, 401
    session["n"] += 1
    return {"n": session["n"]}, 200


after_startup()
