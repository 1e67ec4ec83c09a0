"""The demo's settings, users and start-up failures (SPEC §4, §6)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sessionward.core.config import Fixation
from sessionward.core.errors import ConfigError
from sessionward.demo import create_app
from sessionward.demo.settings import DEFAULT_STORE_URL, load_settings
from sessionward.demo.users import DEFAULT_USERS, UserDirectory, UserSpec, parse_users, password_problem


def test_defaults_use_the_embedded_sqlite_store_and_the_demo_users() -> None:
    settings = load_settings({})
    assert settings.store_url == DEFAULT_STORE_URL == "sqlite:///./.sessionward/sessions.db"
    assert [(user.name, user.admin) for user in settings.users] == [("alice", True), ("bob", False)]
    assert settings.policy.invalid_session.redirect_url == "/login"
    assert settings.policy.invalid_session.excluded_paths == ("/api/login", "/login", "/static/")
    assert settings.policy.is_passive("/api/session/status")
    assert not settings.policy.is_passive("/api/session/touch")
    assert settings.policy.cookie.cookie_name == "__Host-sid"


def test_environment_variables_reach_the_policy() -> None:
    settings = load_settings(
        {
            "SESSIONWARD_STORE": "memory://",
            "SESSIONWARD_IDLE_TIMEOUT": "3",
            "SESSIONWARD_MAX_SESSIONS": "2",
            "SESSIONWARD_PREVENT_LOGIN": "true",
            "SESSIONWARD_FIXATION": "migrate",
            "SESSIONWARD_REAUTH_WINDOW": "30",
            "SESSIONWARD_ELEVATION_TIMEOUT": "45",
            "SESSIONWARD_COOKIE_SECURE": "false",
        }
    )
    assert settings.store_url == "memory://"
    policy = settings.policy
    assert policy.timeouts.idle_timeout_s == 3
    assert policy.login.max_sessions == 2
    assert policy.login.prevent_login is True
    assert policy.login.fixation is Fixation.MIGRATE
    assert policy.login.reauth_window_s == 30
    assert policy.login.elevation_timeout_s == 45
    assert policy.cookie.cookie_name == "sid"
    # The demo's own routing survives the environment's changes.
    assert policy.invalid_session.redirect_url == "/login"


def test_store_argument_wins_over_the_environment() -> None:
    assert load_settings({"SESSIONWARD_STORE": "memory://"}, store_url="sqlite:///x.db").store_url == "sqlite:///x.db"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SESSIONWARD_IDLE_TIMEOUT", "soon"),
        ("SESSIONWARD_MAX_SESSIONS", "-1"),
        ("SESSIONWARD_PREVENT_LOGIN", "maybe"),
        ("SESSIONWARD_FIXATION", "keep"),
        ("SESSIONWARD_REAUTH_WINDOW", "0"),
        ("SESSIONWARD_ELEVATION_TIMEOUT", "x"),
        ("SESSIONWARD_DEMO_USERS", "alice"),
        ("SESSIONWARD_STORE", "ftp://example"),
    ],
)
def test_a_malformed_variable_stops_start_up_naming_it(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        create_app(environ={variable: value})
    assert caught.value.setting == variable
    assert variable in str(caught.value)


def test_demo_users_variable_replaces_the_defaults() -> None:
    users = parse_users("carol:carol-pass-1, dave:dave-pass-22:admin")
    assert users == (UserSpec("carol", "carol-pass-1"), UserSpec("dave", "dave-pass-22", admin=True))
    # Without a marked admin the first user is the admin.
    assert [user.admin for user in parse_users("erin:erin-pass-1,frank:frank-pass-1")] == [True, False]
    settings = load_settings({"SESSIONWARD_DEMO_USERS": "carol:carol-pass-1"})
    assert [user.name for user in settings.users] == ["carol"]


@pytest.mark.parametrize("text", ["alice", ":pw", "al ice:pw", "alice:", "a:b,a:c", "alice:pw,,bob:pw"])
def test_malformed_demo_users_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="SESSIONWARD_DEMO_USERS"):
        parse_users(text)


def test_passwords_never_appear_in_the_repr_of_a_user() -> None:
    assert "alice-demo-pass" not in repr(DEFAULT_USERS)


def test_user_directory_verifies_argon2_hashes() -> None:
    users = UserDirectory(DEFAULT_USERS)
    assert users.verify("alice", "alice-demo-pass")
    assert not users.verify("alice", "bob-demo-pass")
    assert not users.verify("mallory", "alice-demo-pass")
    assert users.is_admin("alice")
    assert not users.is_admin("bob")
    assert not users.is_admin("mallory")
    users.set_password("bob", "bob-new-passphrase")
    assert users.verify("bob", "bob-new-passphrase")
    assert not users.verify("bob", "bob-demo-pass")
    with pytest.raises(KeyError):
        users.set_password("mallory", "whatever-passphrase")


def test_password_rules() -> None:
    assert password_problem("alice", "correct horse battery") is None
    assert password_problem("alice", "short") is not None
    assert password_problem("alice", "Password123") is not None
    assert password_problem("alice", "ALICE-rocks-1") is not None
    assert password_problem("alice", "same-as-before", current="same-as-before") is not None


def test_python_m_demo_with_a_bad_variable_exits_2_with_one_line_and_no_traceback() -> None:
    env = {**os.environ, "SESSIONWARD_IDLE_TIMEOUT": "soon"}
    result = subprocess.run(
        [sys.executable, "-m", "sessionward.demo", "--port", "0", "--store", "memory://"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "SESSIONWARD_IDLE_TIMEOUT" in result.stderr
    assert "Traceback" not in result.stderr


def test_python_m_demo_with_a_bad_argument_exits_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sessionward.demo", "--port", "not-a-port"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_python_m_demo_with_an_unreachable_store_exits_1_without_a_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sessionward.demo", "--port", "0", "--store", "postgresql://nobody:pw@127.0.0.1:1/x"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "not usable" in result.stderr
    assert "Traceback" not in result.stderr
    assert ":pw@" not in result.stderr  # the store's password is never printed


def test_the_demo_server_freezes_what_start_up_built_before_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """Full collections must not walk the long-lived start-up objects while requests wait (p99)."""
    import gc

    import uvicorn

    from sessionward.demo import server

    frozen_at_serve: list[int] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: frozen_at_serve.append(gc.get_freeze_count()))
    gc.unfreeze()
    try:
        server.serve(store_url="memory://")
    finally:
        gc.unfreeze()
    assert len(frozen_at_serve) == 1
    assert frozen_at_serve[0] > 1000
