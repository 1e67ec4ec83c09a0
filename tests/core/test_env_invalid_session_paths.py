"""Where invalid sessions go is settable from the environment and app config like every setting."""

from __future__ import annotations

import pytest
from flask import Flask

from sessionward import ConfigError, SessionPolicy
from sessionward.flask import SessionWard


def test_redirect_api_prefixes_and_excluded_paths_come_from_the_environment() -> None:
    policy = SessionPolicy.from_env(
        {
            "SESSIONWARD_REDIRECT_URL": "/signin",
            "SESSIONWARD_API_PREFIXES": "/api/, /v2/",
            "SESSIONWARD_EXCLUDED_PATHS": "/signin,/static/",
        }
    )
    assert policy.invalid_session.redirect_url == "/signin"
    assert policy.invalid_session.api_prefixes == ("/api/", "/v2/")
    assert policy.invalid_session.excluded_paths == ("/signin", "/static/")
    assert policy.invalid_session.is_excluded("/static/app.css")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SESSIONWARD_REDIRECT_URL", "//evil.example/login"),  # an open redirect to another site
        ("SESSIONWARD_REDIRECT_URL", "https://evil.example/login"),
        ("SESSIONWARD_REDIRECT_URL", "/login\r\nSet-Cookie: planted=1"),  # header injection
        ("SESSIONWARD_API_PREFIXES", "api/"),
        ("SESSIONWARD_EXCLUDED_PATHS", "/login,static/"),
    ],
)
def test_open_redirect_and_malformed_paths_are_refused_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        SessionPolicy.from_env({variable: value})
    assert raised.value.setting == variable


def test_a_flask_app_redirects_a_dead_session_where_its_config_says() -> None:
    app = Flask(__name__)
    app.config["SESSIONWARD_REDIRECT_URL"] = "/signin"

    @app.get("/account")
    def account() -> str:
        return "account"

    SessionWard(app)
    client = app.test_client()
    client.set_cookie("__Host-sid", "A" * 43)  # well-formed, but no such session
    answer = client.get("/account")
    assert answer.status_code in (302, 303)
    assert answer.headers["Location"].startswith("/signin?reason=")
