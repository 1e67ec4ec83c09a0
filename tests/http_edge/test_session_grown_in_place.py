"""A list grown in place past ``max_data_bytes``: a clear error the application can act on.

Assignments are size-checked at once; ``session["cart"].append(...)`` is not, and used to
fail only at commit, as a traceback and a bare 500 the handler could not catch. Now the
handler can ask (``session.check_size()``), and an unchecked overflow gets a defined
answer: 500 ``session_too_large`` JSON, an error logged naming the key, nothing saved.
"""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from sessionward import ManualClock, SessionTooLargeError
from sessionward.core.session import Session
from sessionward.testing import plain_http_policy

from .support import SMALL_LIMIT, flask_app, starlette_app, starlette_client

POLICY = plain_http_policy().with_(max_data_bytes=SMALL_LIMIT)


def _too_large_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    messages = [record.getMessage() for record in caplog.records if record.name == "sessionward"]
    return [message for message in messages if "nothing this request changed was saved" in message]


def test_list_grown_in_place_past_the_limit_gets_a_session_too_large_answer_asgi(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    app = starlette_app(POLICY, clock)
    with starlette_client(app, raise_server_exceptions=True) as client:
        client.post("/login")
        assert client.post("/cart/add").json() == {"items": 1}
        response = client.post("/cart/add")  # 2 x 600 bytes: over 1 KiB
        assert response.status_code == 500
        assert response.json()["error"] == "session_too_large"
        assert response.headers["cache-control"] == "no-store"
        # Nothing of that request was saved; the session itself is intact.
        assert client.get("/whoami").json() == {"user": "alice", "cart": ["x" * 600]}
    (logged,) = _too_large_errors(caplog)
    assert "'cart'" in logged
    assert "max_data_bytes" in logged


def test_list_grown_in_place_past_the_limit_gets_a_session_too_large_answer_flask(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    client = FlaskClient(flask_app(POLICY, clock), use_cookies=True)
    client.post("/login")
    assert client.post("/cart/add").json == {"items": 1}
    response = client.post("/cart/add")
    assert response.status_code == 500
    assert response.json is not None
    assert response.json["error"] == "session_too_large"
    assert response.headers["Cache-Control"] == "no-store"
    assert client.get("/whoami").json == {"user": "alice", "cart": ["x" * 600]}
    (logged,) = _too_large_errors(caplog)
    assert "'cart'" in logged


def test_check_size_lets_the_handler_refuse_the_growth_asgi(clock: ManualClock) -> None:
    app = starlette_app(POLICY, clock)
    with starlette_client(app) as client:
        client.post("/login")
        client.post("/cart/add")
        response = client.post("/cart/add-checked")
        assert (response.status_code, response.json()) == (409, {"error": "cart_full", "keys": ["cart"]})
        assert client.get("/whoami").json() == {"user": "alice", "cart": ["x" * 600]}


def test_check_size_lets_the_view_refuse_the_growth_flask(clock: ManualClock) -> None:
    client = FlaskClient(flask_app(POLICY, clock), use_cookies=True)
    client.post("/login")
    client.post("/cart/add")
    response = client.post("/cart/add-checked")
    assert (response.status_code, response.json) == (409, {"error": "cart_full", "keys": ["cart"]})
    assert client.get("/whoami").json == {"user": "alice", "cart": ["x" * 600]}


def test_a_list_assigned_then_grown_in_place_is_measured_too() -> None:
    # It used to escape every check: assigned small, grown after, saved over the limit.
    session = Session(None, max_bytes=SMALL_LIMIT)
    session["cart"] = []
    cart = session["cart"]
    assert isinstance(cart, list)
    cart.extend(["x" * 600] * 2)
    with pytest.raises(SessionTooLargeError):
        session.changes()  # what the commit writes
    with pytest.raises(SessionTooLargeError) as raised:
        session.check_size()
    assert raised.value.keys == ("cart",)


def test_the_error_names_every_container_that_grew_and_only_those() -> None:
    session = Session(None, max_bytes=SMALL_LIMIT)
    session["notes"] = ["n" * 100]
    session["cart"] = []
    session["tags"] = ["t" * 100]
    notes, cart, tags = session["notes"], session["cart"], session["tags"]
    assert isinstance(notes, list)
    assert isinstance(cart, list)
    assert isinstance(tags, list)
    notes.clear()  # changed in place, but shrunk
    cart.append("x" * 600)
    tags.append("t" * 600)
    with pytest.raises(SessionTooLargeError, match="session keys 'cart', 'tags'") as raised:
        session.check_size()
    assert raised.value.keys == ("cart", "tags")


def test_an_assignment_after_growth_in_place_counts_that_growth() -> None:
    # The running total taken before the list grew must not let a later assignment through.
    session = Session(None, max_bytes=SMALL_LIMIT)
    session["cart"] = []
    session["note"] = "n"  # the total is taken here, with an empty cart
    cart = session["cart"]
    assert isinstance(cart, list)
    cart.append("x" * 600)
    with pytest.raises(SessionTooLargeError, match="'note'"):
        session["note"] = "n" * 500
