"""The Flask baseline: the peers' endpoints on a bare Flask app without sessions.

``/read`` and ``/incr`` answer a constant counter: what is measured is gunicorn, Flask and
the load generator, i.e. everything a Flask session library adds its cost to.
"""

from __future__ import annotations

from flask import Flask
from tuning import after_startup

app = Flask(__name__)


@app.post("/login")
def login() -> dict[str, object]:
    return {"ok": True}


@app.get("/read")
def read() -> dict[str, object]:
    return {"n": 0}


@app.post("/incr")
def incr() -> dict[str, object]:
    return {"n": 0}


after_startup()
