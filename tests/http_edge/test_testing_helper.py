"""``sessionward.testing.plain_http_policy`` keeps a test client signed in over ``http://``."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from sessionward import CookiePolicy, ManualClock, SessionPolicy
from sessionward.testing import plain_http_policy

from .support import flask_app, starlette_app, starlette_client


def test_plain_http_policy_keeps_a_starlette_testclient_signed_in(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    app = starlette_app(plain_http_policy(), clock)
    with starlette_client(app) as client:
        response = client.post("/login")
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("sid=")
        assert "Secure" not in cookie
        assert client.get("/whoami").json()["user"] == "alice"
    assert not [record for record in caplog.records if "plain HTTP" in record.getMessage()]


def test_plain_http_policy_keeps_a_flask_test_client_signed_in(clock: ManualClock) -> None:
    app = flask_app(plain_http_policy(), clock)
    client = FlaskClient(app, use_cookies=True)
    response = client.post("/login")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("sid=")
    assert "Secure" not in cookie
    assert client.get("/whoami").json == {"user": "alice", "cart": None}


def test_plain_http_policy_keeps_everything_but_what_needs_secure() -> None:
    production = SessionPolicy(
        cookie=CookiePolicy(name="__Host-shop", same_site="none"), max_data_bytes=4096, id_bits=192
    )
    tested = plain_http_policy(production)
    assert tested.cookie == CookiePolicy(name="shop", secure=False, same_site="lax")
    assert (tested.max_data_bytes, tested.id_bits) == (4096, 192)
