"""A misspelt ``SESSIONWARD_*`` variable is reported at start-up with the nearest valid name.

A typo such as ``SESSIONWARD_IDLE_TIMOUT=60`` would otherwise leave the idle timeout at
its default without a word: an operator who believes sessions end after a minute would
have them last half an hour.
"""

from __future__ import annotations

import logging

import pytest
from flask import Flask

from sessionward import SessionPolicy
from sessionward.core.env import unknown_variables
from sessionward.flask import SessionWard


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "sessionward" and record.levelno == logging.WARNING
    ]


def test_misspelt_idle_timeout_is_reported_with_the_right_name(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sessionward"):
        policy = SessionPolicy.from_env({"SESSIONWARD_IDLE_TIMOUT": "60"})
    assert policy.timeouts.idle_timeout_s == 1800  # ignored, as before: only reported
    assert warnings_of(caplog) == [
        "SESSIONWARD_IDLE_TIMOUT is not a sessionward setting and is ignored; did you mean SESSIONWARD_IDLE_TIMEOUT?"
    ]


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("SESSIONWARD_COOKIE_SAME_SITE", "SESSIONWARD_COOKIE_SAMESITE"),
        ("SESSIONWARD_TRUSTED_PROXY", "SESSIONWARD_TRUSTED_PROXIES"),
        ("SESSIONWARD_MAX_SESSION", "SESSIONWARD_MAX_SESSIONS"),
        ("SESSIONWARD_ABSOLUTETIMEOUT", "SESSIONWARD_ABSOLUTE_TIMEOUT"),
    ],
)
def test_each_typo_names_the_variable_meant(typo: str, meant: str) -> None:
    assert unknown_variables({typo: "1"}) == [(typo, meant)]


def test_a_name_like_no_setting_is_reported_without_a_guess(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sessionward"):
        SessionPolicy.from_env({"SESSIONWARD_FOO": "1"})
    assert warnings_of(caplog) == [
        "SESSIONWARD_FOO is not a sessionward setting and is ignored; no setting has a similar name"
    ]


def test_known_names_other_prefixes_and_the_test_suites_own_are_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    environment = {
        "SESSIONWARD_IDLE_TIMEOUT": "60",
        "SESSIONWARD_STORE": "memory://",
        "SESSIONWARD_DEMO_USERS": "a:b",
        "SESSIONWARD_TEST_CLOCK": "x",
        "PATH": "/usr/bin",
        "SESSIONWARDEN": "1",
    }
    with caplog.at_level(logging.WARNING, logger="sessionward"):
        assert SessionPolicy.from_env(environment).timeouts.idle_timeout_s == 60
    assert warnings_of(caplog) == []


def test_a_typo_in_a_flask_apps_config_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    app = Flask(__name__)
    app.config["SESSIONWARD_STORE"] = "memory://"
    app.config["SESSIONWARD_MAX_SESSION"] = 1
    with caplog.at_level(logging.WARNING, logger="sessionward"):
        SessionWard(app)
    assert warnings_of(caplog) == [
        "SESSIONWARD_MAX_SESSION is not a sessionward setting and is ignored; did you mean SESSIONWARD_MAX_SESSIONS?"
    ]
