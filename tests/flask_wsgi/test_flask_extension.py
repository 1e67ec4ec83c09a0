"""The Flask extension's API: mapping, verbs, registry, config keys, events, outages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, jsonify, render_template_string

from sessionward import ManualClock
from sessionward._sync.stores import MemoryStore
from sessionward.core.config import Creation
from sessionward.core.errors import ConfigError, SessionDataError, StoreUnavailableError
from sessionward.flask import SessionWard

from .support import client, cookie_header, make_app, plain_policy, set_cookie, ward_session

FORM = "application/x-www-form-urlencoded"


def test_anonymous_reads_create_no_session(app: Flask) -> None:
    response = client(app).get("/whoami")

    assert response.json == {"user": None, "data": {}, "handle": None}
    assert set_cookie(response) is None  # creation policy if_required (F9)


def test_first_write_creates_the_session_and_later_requests_see_it(app: Flask) -> None:
    sid = set_cookie(client(app).post("/set", query_string={"theme": "dark"}))
    assert sid

    response = client(app).get("/whoami", headers=cookie_header(sid))

    assert response.json is not None
    assert response.json["data"] == {"theme": "dark"}
    assert "Cookie" in response.headers["Vary"]
    assert response.headers["Cache-Control"] == "no-store"


def test_a_value_that_is_not_json_fails_at_once_naming_the_key(app: Flask) -> None:
    failures: list[str] = []

    @app.post("/bad")
    def bad() -> Any:
        try:
            ward_session()["when"] = {1, 2}
        except SessionDataError as error:
            failures.append(str(error))
        return jsonify(ok=True)

    client(app).post("/bad")

    assert len(failures) == 1
    assert "when" in failures[0]


def test_rotate_elevate_status_and_registry(store: MemoryStore, clock: ManualClock) -> None:
    app = make_app(store, clock)
    calls: dict[str, Any] = {}

    @app.post("/admin/elevate")
    def elevate() -> Any:
        session = ward_session()
        session.elevate()
        calls["elevated"] = session.is_elevated
        return jsonify(ok=True)

    @app.get("/devices")
    def devices() -> Any:
        return jsonify([info.as_dict() for info in ward_session().list_sessions()])

    @app.post("/devices/revoke-others")
    def revoke_others() -> Any:
        return jsonify(revoked=ward_session().revoke_others())

    phone = set_cookie(client(app).post("/login"))
    laptop = set_cookie(client(app).post("/login"))
    assert phone
    assert laptop
    elevated = client(app).post("/admin/elevate", headers=cookie_header(laptop))
    laptop_now = set_cookie(elevated)
    assert laptop_now
    assert laptop_now != laptop
    assert calls["elevated"] is True

    listed = client(app).get("/devices", headers=cookie_header(laptop_now)).json
    assert listed is not None
    assert sorted(d["current"] for d in listed) == [False, True]

    revoked = client(app).post("/devices/revoke-others", headers=cookie_header(laptop_now)).json
    assert revoked == {"revoked": 1}
    assert client(app).get("/api/status", headers=cookie_header(phone)).json == {
        "error": "session_invalid",
        "reason": "revoked",
    }
    assert client(app).get("/api/status", headers=cookie_header(laptop_now)).json == {
        "authenticated": True,
        "remaining_idle_s": 1800.0,
    }


def test_csrf_token_is_a_template_global(app: Flask) -> None:
    @app.get("/page")
    def page() -> str:
        return render_template_string('<input name="csrf_token" value="{{ csrf_token() }}">')

    response = client(app).get("/page")
    assert set_cookie(response) is None  # a form for a visitor makes no session
    carried = set_cookie(response, "sid-csrf")
    assert carried  # the token rides in the pre-session cookie, so the login form can be posted
    token = response.text.split('value="')[1].split('"')[0]

    posted = client(app).post(
        "/form",
        data=f"csrf_token={token}",
        headers=cookie_header(carried, "sid-csrf"),
        content_type="application/x-www-form-urlencoded",
    )

    assert posted.status_code == 200


def test_policy_comes_from_flask_config_keys(store: MemoryStore) -> None:
    app = Flask(__name__)
    app.config.update(SESSIONWARD_IDLE_TIMEOUT=120, SESSIONWARD_MAX_SESSIONS=2, SESSIONWARD_COOKIE_SECURE=False)
    ward = SessionWard(app, store=store)

    assert ward.policy is not None
    assert ward.policy.timeouts.idle_timeout_s == 120
    assert ward.policy.login.max_sessions == 2
    assert ward.policy.cookie.cookie_name == "sid"


def test_a_malformed_config_key_stops_start_up_naming_it(store: MemoryStore) -> None:
    app = Flask(__name__)
    app.config["SESSIONWARD_IDLE_TIMEOUT"] = "soon"

    with pytest.raises(ConfigError, match="SESSIONWARD_IDLE_TIMEOUT"):
        SessionWard(app, store=store)


def test_store_url_comes_from_config(tmp_path: Path) -> None:
    app = Flask(__name__)
    app.config.update(SESSIONWARD_STORE=f"file://{tmp_path}/sessions", SESSIONWARD_COOKIE_SECURE="false")
    ward = SessionWard(app)
    assert ward.store is not None
    ward.store.setup()

    @app.post("/set")
    def set_value() -> Any:
        ward_session()["a"] = 1
        return jsonify(ok=True)

    assert set_cookie(client(app).post("/set"))
    assert (tmp_path / "sessions" / "sessions").is_dir()


def test_audit_log_writes_one_json_line_per_event_without_the_raw_id(store: MemoryStore, tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    app = make_app(store, ManualClock(), SESSIONWARD_AUDIT_LOG=str(log))

    sid = set_cookie(client(app).post("/login"))
    assert sid
    client(app).post("/logout", headers=cookie_header(sid))

    ward = app.extensions["sessionward"]
    assert isinstance(ward, SessionWard)
    assert ward.audit_logger is not None
    ward.audit_logger.close()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["event"] for line in lines] == ["session_created", "authn_login_success", "session_expired:logout"]
    assert sid not in log.read_text()


class _DownStore(MemoryStore):
    def load(self, key: str, now: float) -> Any:
        raise StoreUnavailableError("down for the test")


def test_store_outage_answers_503_and_logs_nobody_out(clock: ManualClock) -> None:
    up = MemoryStore()
    sid = set_cookie(client(make_app(up, clock)).post("/login"))
    assert sid
    down = make_app(_DownStore(), clock)

    response = client(down).get("/whoami", headers=cookie_header(sid))

    assert response.status_code == 503
    assert response.json is not None
    assert response.json["error"] == "session_store_unavailable"
    assert set_cookie(response) is None  # the cookie is kept: service resumes when the store returns


def test_stateless_policy_never_sets_a_cookie(store: MemoryStore, clock: ManualClock) -> None:
    app = make_app(store, clock, plain_policy(creation=Creation.STATELESS))

    response = client(app).post("/set", query_string={"a": "1"})

    assert set_cookie(response) is None
