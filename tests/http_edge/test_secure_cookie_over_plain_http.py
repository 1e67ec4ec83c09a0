"""A Secure session cookie set over plain HTTP never comes back: say so, once, and how to fix it.

Starlette's ``TestClient`` (httpx) keeps a Secure cookie and never returns it over
``http://``: a client signs in, and its next request is anonymous, with no error. The
middleware warns, once, through the ``sessionward`` logger; not over HTTPS, not on
loopback (browsers return Secure cookies to ``http://localhost``), not when the scheme
is HTTPS behind a trusted proxy.
"""

from __future__ import annotations

import ipaddress

import pytest
from flask.testing import FlaskClient

from sessionward import ManualClock, SessionPolicy

from .support import flask_app, starlette_app, starlette_client


def _plain_http_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "sessionward" and record.levelname == "WARNING" and "plain HTTP" in record.getMessage()
    ]


def test_secure_cookie_set_over_plain_http_is_warned_once_asgi(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    app = starlette_app(SessionPolicy(), clock)
    with starlette_client(app) as client:
        assert client.post("/login").json() == {"user": "alice"}
        # The trap itself: the cookie was set, and not sent back.
        assert client.get("/whoami").json()["user"] is None
        client.post("/login")
        client.post("/login")
    warnings = _plain_http_warnings(caplog)
    assert len(warnings) == 1
    message = warnings[0]
    assert "__Host-sid" in message
    assert "testserver" in message
    assert "HTTPS" in message
    assert "SESSIONWARD_TRUSTED_PROXIES" in message
    assert "SESSIONWARD_COOKIE_SECURE=false" in message
    assert "sessionward.testing.plain_http_policy()" in message


def test_secure_cookie_set_over_plain_http_is_warned_once_wsgi(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    app = flask_app(SessionPolicy(), clock)
    client = FlaskClient(app, use_cookies=True)
    client.environ_base["REMOTE_ADDR"] = "203.0.113.7"  # a client elsewhere on the network
    for _ in range(3):
        assert client.post("/login", base_url="http://shop.example").status_code == 200
    warnings = _plain_http_warnings(caplog)
    assert len(warnings) == 1
    assert "shop.example" in warnings[0]


def test_forwarded_proto_from_an_untrusted_peer_is_not_believed_and_is_warned(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    app = starlette_app(SessionPolicy(), clock)
    with starlette_client(app, client=("203.0.113.7", 50000)) as client:
        client.post("/login", headers={"X-Forwarded-Proto": "https"})
    assert len(_plain_http_warnings(caplog)) == 1


# -- no false alarm ----------------------------------------------------------------------------


def test_secure_cookie_over_https_is_not_warned_and_the_login_holds(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    app = starlette_app(SessionPolicy(), clock)
    with starlette_client(app, base_url="https://testserver") as client:
        client.post("/login")
        assert client.get("/whoami").json()["user"] == "alice"
    assert _plain_http_warnings(caplog) == []


@pytest.mark.parametrize(
    ("peer", "base_url"),
    [
        pytest.param(("127.0.0.1", 50000), "http://testserver", id="loopback-client"),
        pytest.param(("::1", 50000), "http://testserver", id="ipv6-loopback-client"),
        pytest.param(("172.17.0.1", 50000), "http://localhost:8000", id="addressed-to-localhost"),
        pytest.param(("172.17.0.1", 50000), "http://127.0.0.1:8000", id="addressed-to-127.0.0.1"),
        pytest.param(("172.17.0.1", 50000), "http://[::1]:8000", id="addressed-to-[::1]"),
    ],
)
def test_secure_cookie_over_plain_http_on_loopback_is_not_warned(
    clock: ManualClock, caplog: pytest.LogCaptureFixture, peer: tuple[str, int], base_url: str
) -> None:
    # Browsers send Secure cookies back to http://localhost and loopback addresses.
    app = starlette_app(SessionPolicy(), clock)
    with starlette_client(app, client=peer, base_url=base_url) as client:
        client.post("/login")
    assert _plain_http_warnings(caplog) == []


def test_https_forwarded_by_a_trusted_proxy_is_not_warned(clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    policy = SessionPolicy(trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),))
    app = starlette_app(policy, clock)
    with starlette_client(app, client=("10.0.0.2", 50000)) as client:
        client.post("/login", headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"})
    assert _plain_http_warnings(caplog) == []
