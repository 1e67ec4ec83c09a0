"""Attacks on a Flask app, mirroring tests/security for the ASGI side: each test names what it stops."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from sessionward import BindingPolicy, EventBus, ManualClock, TimeoutPolicy
from sessionward._sync.stores import MemoryStore
from sessionward.core.config import InvalidSessionPolicy
from sessionward.core.ids import generate_id, storage_key
from sessionward.core.records import EndReason, Tombstone

from .support import client, cookie_header, make_app, plain_policy, set_cookie

FORM = "application/x-www-form-urlencoded"


def logged_in(app: Flask, user: str = "alice", **headers: str) -> str:
    """Log ``user`` in from a fresh client; return the session cookie."""
    response = client(app).post("/login", query_string={"user": user}, headers=headers)
    assert response.status_code == 200, response.json
    sid = set_cookie(response)
    assert sid
    return sid


# -- fixation (F6) ---------------------------------------------------------------------------


def test_pre_login_id_dies_at_login(app: Flask) -> None:
    visitor = client(app)
    pre_login = set_cookie(visitor.post("/set", query_string={"cart": "book"}))
    assert pre_login

    response = visitor.post("/login", headers=cookie_header(pre_login))

    post_login = set_cookie(response)
    assert post_login
    assert post_login != pre_login
    assert visitor.get("/whoami", headers=cookie_header(post_login)).json == {
        "user": "alice",
        "data": {"cart": "book"},
        "handle": storage_key(post_login)[:16],
    }
    replay = client(app).get("/whoami", headers=cookie_header(pre_login))
    assert replay.json is not None
    assert replay.json["user"] is None
    assert set_cookie(replay) == ""  # the dead cookie is cleared


def test_planted_unknown_id_is_never_adopted(app: Flask, store: MemoryStore, clock: ManualClock) -> None:
    planted = generate_id()

    issued = set_cookie(client(app).post("/login", headers=cookie_header(planted)))

    assert issued
    assert issued != planted
    assert store.load(storage_key(planted), clock()) is None
    attacker = client(app).get("/whoami", headers=cookie_header(planted))
    assert attacker.json is not None
    assert attacker.json["user"] is None


def test_flask_session_clear_pattern_ends_the_planted_id_and_so_does_login(
    app: Flask, store: MemoryStore, clock: ManualClock, redis_url: str
) -> None:
    """The seed's Flask-Session login (``session.clear()``) is a fixation hole; here clear() and login() close it."""
    import redis
    from flask import Flask as PlainFlask
    from flask import jsonify, session
    from flask_session import Session  # type: ignore[import-untyped]

    peer = PlainFlask(__name__)
    peer.config.update(
        SECRET_KEY="x" * 32,
        SESSION_TYPE="redis",
        SESSION_REDIS=redis.from_url(redis_url),
        SESSION_KEY_PREFIX=f"fixation-{generate_id()[:8]}:",
    )
    Session(peer)

    @peer.post("/set")
    def peer_set() -> Any:
        session["cart"] = "book"
        return jsonify(ok=True)

    @peer.post("/clear-and-set-user")
    def peer_login() -> Any:
        session.clear()  # the seed's "login": same ID, new data
        session["user_id"] = "alice"
        return jsonify(ok=True)

    @peer.get("/whoami")
    def peer_whoami() -> Any:
        return jsonify(user=session.get("user_id"))

    attacker_cookie = set_cookie(client(peer).post("/set"), "session")
    assert attacker_cookie
    # The victim is lured into using the attacker's cookie and logs in the seed's way.
    client(peer).post("/clear-and-set-user", headers=cookie_header(attacker_cookie, "session"))
    hijacked = client(peer).get("/whoami", headers=cookie_header(attacker_cookie, "session"))
    assert hijacked.json == {"user": "alice"}  # Flask-Session: the attacker is now alice

    # The same pattern on sessionward ends the planted session: clear() is a logout, and
    # what is written after it goes to a new anonymous session under a new ID…
    planted = set_cookie(client(app).post("/set", query_string={"cart": "book"}))
    assert planted
    cleared = client(app).post("/clear-and-set-user", headers=cookie_header(planted))
    assert set_cookie(cleared) not in (None, "", planted)
    assert isinstance(store.load(storage_key(planted), clock()), Tombstone)
    # …and the login is a verb: it moves the victim to a new ID and kills the planted one.
    planted = set_cookie(client(app).post("/set", query_string={"cart": "book"}))
    assert planted
    fresh = set_cookie(client(app).post("/login", headers=cookie_header(planted)))
    assert fresh
    assert fresh != planted
    attacker = client(app).get("/whoami", headers=cookie_header(planted))
    assert attacker.json is not None
    assert attacker.json["user"] is None


# -- replay after logout, garbage cookies ------------------------------------------------------


def test_replay_after_logout_is_refused(app: Flask, store: MemoryStore, clock: ManualClock) -> None:
    sid = logged_in(app)

    response = client(app).post("/logout", headers=cookie_header(sid))

    assert set_cookie(response) == ""
    entry = store.load(storage_key(sid), clock())
    assert isinstance(entry, Tombstone)
    assert entry.reason is EndReason.LOGGED_OUT
    replay = client(app).get("/api/status", headers=cookie_header(sid))
    assert replay.status_code == 401
    assert replay.json == {"error": "session_invalid", "reason": "logged_out"}


@pytest.mark.parametrize(
    "value",
    ["x" * 5000, "short", "!!!!not-base64!!!!", "\u00e9" * 43, generate_id() + "A"],
    ids=["too-long", "too-short", "wrong-alphabet", "not-ascii", "one-char-too-many"],
)
def test_garbage_cookie_never_reaches_the_store(app: Flask, value: str) -> None:
    cookie = value.encode("utf-8").decode("latin-1")
    response = client(app).get("/api/status", headers={"Cookie": f"sid={cookie}"})

    assert response.status_code == 401
    assert response.json is not None
    assert response.json["error"] == "session_invalid"
    assert set_cookie(response) == ""


def test_two_values_for_the_session_cookie_fail_closed(app: Flask) -> None:
    sid = logged_in(app)

    response = client(app).get("/whoami", headers={"Cookie": f"sid={sid}; sid={generate_id()}"})

    assert response.json is not None
    assert response.json["user"] is None


# -- expiry enforced server-side (F8) --------------------------------------------------------


def test_idle_session_expires_server_side(store: MemoryStore, clock: ManualClock) -> None:
    app = make_app(store, clock, plain_policy(timeouts=TimeoutPolicy(idle_timeout_s=300, absolute_timeout_s=3600)))
    sid = logged_in(app)
    clock.advance(299)
    assert client(app).get("/api/status", headers=cookie_header(sid)).status_code == 200

    clock.advance(301)
    response = client(app).get("/api/status", headers=cookie_header(sid))

    assert response.status_code == 401
    assert response.json == {"error": "session_invalid", "reason": "idle_timeout"}


def test_absolute_timeout_ends_even_an_active_session(store: MemoryStore, clock: ManualClock) -> None:
    timeouts = TimeoutPolicy(idle_timeout_s=300, absolute_timeout_s=900, renewal_interval_s=0)
    app = make_app(store, clock, plain_policy(timeouts=timeouts))
    sid = logged_in(app)
    for _ in range(4):
        clock.advance(200)
        assert client(app).get("/api/status", headers=cookie_header(sid)).status_code == 200

    clock.advance(200)
    response = client(app).get("/api/status", headers=cookie_header(sid))

    assert response.json == {"error": "session_invalid", "reason": "absolute_timeout"}


def test_invalid_session_on_a_page_redirects_with_the_reason(store: MemoryStore, clock: ManualClock) -> None:
    app = make_app(store, clock, plain_policy(invalid_session=InvalidSessionPolicy(redirect_url="/login")))
    sid = logged_in(app)
    client(app).post("/logout", headers=cookie_header(sid))

    response = client(app).get("/whoami", headers=cookie_header(sid))

    assert response.status_code == 303
    assert response.headers["Location"] == "/login?reason=logged_out"


# -- CSRF (F15) --------------------------------------------------------------------------------


def test_cross_site_post_is_refused_before_the_view(app: Flask) -> None:
    sid = logged_in(app)
    headers = cookie_header(sid) | {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}

    response = client(app).post("/logout", headers=headers)

    assert response.status_code == 403
    assert response.json == {"error": "csrf_refused", "reason": "cross_site"}
    assert client(app).get("/whoami", headers=cookie_header(sid)).json["user"] == "alice"  # type: ignore[index]


def test_origin_mismatch_without_fetch_metadata_is_refused(app: Flask) -> None:
    sid = logged_in(app)

    response = client(app).post("/logout", headers=cookie_header(sid) | {"Origin": "https://evil.example"})

    assert response.json == {"error": "csrf_refused", "reason": "origin_mismatch"}


def test_form_post_without_the_synchronizer_token_is_refused(app: Flask) -> None:
    sid = logged_in(app)

    response = client(app).post("/form", data="field=1", headers=cookie_header(sid), content_type=FORM)

    assert response.json == {"error": "csrf_refused", "reason": "token_missing"}


def test_form_post_with_a_forged_token_is_refused_and_the_real_one_passes(app: Flask) -> None:
    sid = logged_in(app)
    token = client(app).get("/form", headers=cookie_header(sid)).json["token"]  # type: ignore[index]

    forged = client(app).post("/form", data="field=1&csrf_token=forged", headers=cookie_header(sid), content_type=FORM)
    genuine = client(app).post(
        "/form", data=f"field=1&csrf_token={token}", headers=cookie_header(sid), content_type=FORM
    )

    assert forged.json == {"error": "csrf_refused", "reason": "token_mismatch"}
    assert genuine.json == {"ok": True, "field": "1"}  # the body read for the token reached the view


def test_token_learned_before_login_is_worthless_after(app: Flask) -> None:
    visitor = client(app)
    first = visitor.get("/form")
    pre_login, token = set_cookie(first, "sid-csrf"), first.json["token"]  # type: ignore[index]
    assert pre_login is not None
    assert pre_login == token  # a visitor's token rides in the pre-session cookie
    post_login = set_cookie(visitor.post("/login", headers=cookie_header(pre_login, "sid-csrf")))
    assert post_login

    response = visitor.post("/form", data=f"csrf_token={token}", headers=cookie_header(post_login), content_type=FORM)

    assert response.json == {"error": "csrf_refused", "reason": "token_mismatch"}


# -- binding (F13), firewall (F5), events ------------------------------------------------------


def test_stolen_cookie_replayed_from_another_client_is_refused(store: MemoryStore, clock: ManualClock) -> None:
    recorded: list[str] = []
    events = EventBus()
    events.subscribe(lambda event: recorded.append(event.name.value))
    app = make_app(store, clock, plain_policy(binding=BindingPolicy.parse("ua")), events=events)
    sid = set_cookie(client(app, user_agent="Victim/1.0").post("/login"))
    assert sid

    stolen = client(app, user_agent="curl/8.5").get("/api/status", headers=cookie_header(sid))

    assert stolen.status_code == 401
    assert stolen.json == {"error": "session_invalid", "reason": "binding_mismatch"}
    assert "binding_mismatch" in recorded
    # The session is ended for everyone: thief and victim cannot be told apart.
    victim = client(app, user_agent="Victim/1.0").get("/api/status", headers=cookie_header(sid))
    assert victim.status_code == 401


@pytest.mark.parametrize(
    ("target", "status"),
    [("/whoami;jsessionid=x", 400), ("/a/%2e%2e/whoami", 400), ("/a%2fb", 400), ("//whoami", 400)],
)
def test_firewall_refuses_smuggled_paths_before_the_session_is_read(
    store: MemoryStore, clock: ManualClock, target: str, status: int
) -> None:
    recorded: list[str] = []
    events = EventBus()
    events.subscribe(lambda event: recorded.append(event.name.value))
    app = make_app(store, clock, events=events)

    response = client(app).get("/", environ_overrides={"RAW_URI": target, "PATH_INFO": "/whoami"})

    assert response.status_code == status
    assert response.json is not None
    assert response.json["error"] == "request_rejected"
    assert recorded == ["firewall_refused"]


def test_trace_is_refused_with_405(app: Flask) -> None:
    assert client(app).open("/whoami", method="TRACE").status_code == 405


def test_session_id_in_the_url_is_ignored(app: Flask) -> None:
    sid = logged_in(app)

    response = client(app).get("/whoami", query_string={"sid": sid})

    assert response.json is not None
    assert response.json["user"] is None


def test_flask_session_clear_logs_the_user_out(app: Flask, store: MemoryStore, clock: ManualClock) -> None:
    """``session.clear()`` is how most Flask apps log out: the login must not survive it."""
    sid = logged_in(app)

    response = client(app).post("/clear-and-set-user", headers=cookie_header(sid))

    assert set_cookie(response) != sid
    entry = store.load(storage_key(sid), clock())
    assert isinstance(entry, Tombstone), "the logged-in session outlived session.clear()"
    assert entry.reason is EndReason.LOGGED_OUT
    replay = client(app).get("/whoami", headers=cookie_header(sid))
    assert replay.json is not None
    assert replay.json["user"] is None


def test_a_csrf_token_planted_after_a_comma_is_not_believed(app: Flask) -> None:
    """A sibling domain can plant ``x=1,sid-csrf=T``; the joined-header reading must not make it a token."""
    token = "T" * 43
    planted = client(app).post(
        "/form", data=f"csrf_token={token}", headers={"Cookie": f"x=1,sid-csrf={token}"}, content_type=FORM
    )
    assert planted.json == {"error": "csrf_refused", "reason": "token_mismatch"}
    honest = client(app).post(
        "/form", data=f"csrf_token={token}", headers={"Cookie": f"x=1; sid-csrf={token}"}, content_type=FORM
    )
    assert honest.status_code == 200
