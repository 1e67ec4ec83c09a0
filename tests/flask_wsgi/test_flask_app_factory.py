"""One ``SessionWard()`` for several apps (the application factory pattern), and ``current_session()``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, jsonify

from sessionward.core.errors import SessionNotAvailableError
from sessionward.flask import FlaskSession, SessionWard, current_session

from .support import client, cookie_header, set_cookie


def _app(**config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(SESSIONWARD_STORE="memory://", SESSIONWARD_COOKIE_SECURE="false", **config)

    @app.post("/login")
    def login() -> Any:
        current_session().login("alice")
        return jsonify(ok=True)

    @app.get("/me")
    def me() -> Any:
        return jsonify(user=current_session().user)

    @app.post("/logout")
    def logout() -> Any:
        current_session().logout()
        return jsonify(ok=True)

    return app


def test_init_app_on_a_second_app_does_not_give_it_the_first_apps_store_and_timeouts() -> None:
    ward = SessionWard()
    first = _app(SESSIONWARD_IDLE_TIMEOUT="60")
    second = _app(SESSIONWARD_IDLE_TIMEOUT="600")

    ward.init_app(first)
    ward.init_app(second)

    assert ward.state(first).policy.timeouts.idle_timeout_s == 60
    assert ward.state(second).policy.timeouts.idle_timeout_s == 600
    assert ward.state(first).store is not ward.state(second).store
    sid = set_cookie(client(first).post("/login"))
    assert sid
    assert client(first).get("/me", headers=cookie_header(sid)).json == {"user": "alice"}
    # The second app keeps its own sessions: the first app's cookie means nothing there.
    assert client(second).get("/me", headers=cookie_header(sid)).json != {"user": "alice"}


def test_the_state_follows_the_app_context_and_refuses_to_guess_between_apps() -> None:
    ward = SessionWard()
    first, second = _app(SESSIONWARD_IDLE_TIMEOUT="60"), _app(SESSIONWARD_IDLE_TIMEOUT="600")
    ward.init_app(first)
    assert ward.policy.timeouts.idle_timeout_s == 60  # one app: no context needed
    ward.init_app(second)

    with first.app_context():
        assert ward.manager is ward.state(first).manager
    with second.app_context():
        assert ward.policy.timeouts.idle_timeout_s == 600
    with pytest.raises(RuntimeError, match="several apps"):
        _ = ward.store
    with pytest.raises(RuntimeError, match="init_app"):
        ward.state(_app())


def test_each_apps_audit_log_holds_only_its_own_events(tmp_path: Path) -> None:
    heard: list[str] = []
    ward = SessionWard()
    ward.events.subscribe(lambda event: heard.append(event.name.value))
    first = _app(SESSIONWARD_AUDIT_LOG=str(tmp_path / "first.jsonl"))
    second = _app(SESSIONWARD_AUDIT_LOG=str(tmp_path / "second.jsonl"))
    ward.init_app(first)
    ward.init_app(second)

    client(first).post("/login")

    for app in (first, second):
        logger = ward.state(app).audit_logger
        assert logger is not None
        logger.close()
    first_lines = [json.loads(line) for line in (tmp_path / "first.jsonl").read_text().splitlines()]
    assert first_lines
    assert (tmp_path / "second.jsonl").read_text() == ""
    assert len(heard) == len(first_lines)  # the shared bus still hears everything


def test_current_session_is_the_typed_flask_session_and_refuses_outside_a_request() -> None:
    app = _app()
    SessionWard(app)
    seen: list[object] = []

    @app.get("/kind")
    def kind() -> Any:
        seen.append(current_session())
        return jsonify(ok=True)

    client(app).get("/kind")

    assert isinstance(seen[0], FlaskSession)
    with app.test_request_context("/"), pytest.raises(SessionNotAvailableError):
        current_session()
