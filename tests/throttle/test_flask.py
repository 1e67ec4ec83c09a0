"""Flask: ``current_session().throttle`` throttles sign-ins like the ASGI side, synchronously.

A ``LoginThrottledError`` the view does not catch is answered by the extension:
``429 {"error": "throttled", "retry_after_s": n}`` with ``Retry-After``. The counts live
in the generated sync store (memory, and SQLite shared with the async store's format).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, jsonify, request

from sessionward import ManualClock, SessionPolicy
from sessionward._sync.stores import MemoryStore
from sessionward._sync.stores.base import SessionStore
from sessionward._sync.stores.sql import SqlStore
from sessionward.core.config import CookiePolicy
from sessionward.core.events import EventBus
from sessionward.flask import SessionWard, current_session
from support.helpers import Recorder
from throttle.support import PASSWORDS, PasswordBook


def flask_login_app(store: SessionStore, clock: ManualClock, events: EventBus) -> tuple[Flask, PasswordBook]:
    book = PasswordBook()
    app = Flask(__name__)
    app.config["SESSIONWARD_CSRF"] = False  # a JSON API called by scripts in this test
    policy = SessionPolicy(cookie=CookiePolicy(secure=False))
    SessionWard(app, store=store, policy=policy, clock=clock, events=events)

    @app.post("/login")
    def login() -> Any:
        body = request.get_json()
        username, password = str(body["username"]), str(body["password"])
        throttle = current_session().throttle
        throttle.check(username)  # uncaught LoginThrottledError: the extension answers 429
        if not book.verify(username, password):
            throttle.failed(username)
            return jsonify(error="invalid_credentials"), 401
        throttle.succeeded(username)
        current_session().login(username)
        return jsonify(ok=True, user=username)

    return app, book


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_flask_brute_force_of_one_account_is_throttled_with_429_and_retry_after(
    kind: str, clock: ManualClock, tmp_path: Path
) -> None:
    store: SessionStore = MemoryStore() if kind == "memory" else SqlStore.from_url(f"sqlite:///{tmp_path / 's.db'}")
    store.setup()
    recorder = Recorder()
    events = EventBus()
    events.subscribe(recorder)
    app, book = flask_login_app(store, clock, events)
    client = app.test_client()
    answers = [client.post("/login", json={"username": "alice", "password": f"guess-{i}"}) for i in range(50)]
    assert Counter(answer.status_code for answer in answers) == {401: 5, 429: 45}
    assert book.checked == 5
    assert answers[-1].get_json() == {"error": "throttled", "retry_after_s": 1}
    assert answers[-1].headers["Retry-After"] == "1"
    right = {"username": "alice", "password": PASSWORDS["alice"]}
    assert client.post("/login", json=right).status_code == 429
    clock.advance(1)
    assert client.post("/login", json=right).status_code == 200
    names = Counter(recorder.names())
    assert (names["login_failed"], names["login_throttled"], names["login"]) == (5, 46, 1)
    store.close()
