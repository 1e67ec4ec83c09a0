"""``sessionward audit`` against Flask sites signing in the Flask-Login way (see ``flask_sites``)."""

from __future__ import annotations

import pytest

pytest.importorskip("flask_session", reason="Flask-Session comes with the dev extra")

from flask_sites import flask_cookie_site, flask_session_site, serve_wsgi
from test_audit_targets import LOCAL, NO_SECURITY_HEADERS, RANDOM_IDS, signed_in

COOKIE_ATTRIBUTES = {
    "cookie name is generic": "fail",  # session
    "cookie HttpOnly": "pass",
    "cookie Secure": "fail",
    "cookie SameSite": "fail",
    "cookie Path": "pass",
    "cookie Domain": "pass",
    "cookie name prefix": "warn",
    "Cache-Control on the cookie-setting response": "warn",
}


def test_flask_with_flask_session_and_a_flask_login_form_is_reported_item_by_item() -> None:
    with serve_wsgi(flask_session_site()) as url:
        status, report, checks = signed_in(url)

    assert checks == {
        **LOCAL,
        **NO_SECURITY_HEADERS,
        **RANDOM_IDS,
        **COOKIE_ATTRIBUTES,
        "cookie lifetime": "warn",  # SESSION_PERMANENT: 31 days
        "session ID not accepted from the URL": "pass",
        "unknown session ID refused at login": "pass",
        "fixation on login": "fail",  # login_user keeps the session ID
        "logout invalidates the session": "pass",
        "logout clears the cookie": "warn",
        "unknown session ID refused (strict mode)": "pass",  # Flask-Session 0.8 makes a new ID
        "no session ID in redirects or links": "pass",
        "session responses kept out of shared caches": "pass",  # Vary: Cookie
    }
    assert status == 1
    assert report["cookie_format"] == "itsdangerous signed ID (<id>.<signature>, Flask-Session)"
    assert report["login"] == "form#login-form (POST /login) on /login"  # csrf_token went along


def test_flask_default_sessions_fail_as_session_data_in_the_cookie() -> None:
    with serve_wsgi(flask_cookie_site()) as url:
        status, report, checks = signed_in(url)

    no_id = "skip"
    assert checks == {
        **LOCAL,
        **NO_SECURITY_HEADERS,
        **COOKIE_ATTRIBUTES,
        "cookie lifetime": "pass",
        "session ID not accepted from the URL": "pass",
        "unknown session ID refused at login": "pass",  # a made-up value fails the signature
        "fixation on login": "pass",  # the cookie changes with the data
        "logout invalidates the session": "fail",  # a copy of the signed-in cookie still works
        "logout clears the cookie": "pass",  # the browser's copy is replaced by the emptied session
        "unknown session ID refused (strict mode)": no_id,
        "session data stays on the server": "fail",
        "ID length and entropy": no_id,
        "ID uniqueness": no_id,
        "ID carries no user data": "fail",  # _user_id is readable
        "ID randomness (FIPS 140-2)": no_id,
        "ID independence": no_id,
        "no session ID in redirects or links": "pass",
        "session responses kept out of shared caches": "pass",
    }
    assert status == 1
    assert report["cookie_format"] == "itsdangerous signed session data (Flask, Starlette)"
