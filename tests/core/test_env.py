"""``SESSIONWARD_*`` variables build the policy; a malformed one names the variable (SPEC §6)."""

from __future__ import annotations

import ipaddress

import pytest

from sessionward import ConfigError, Fixation, SessionPolicy


def test_every_documented_variable_is_read() -> None:
    policy = SessionPolicy.from_env(
        {
            "SESSIONWARD_IDLE_TIMEOUT": "3",
            "SESSIONWARD_ABSOLUTE_TIMEOUT": "120",
            "SESSIONWARD_RENEWAL_INTERVAL": "0",
            "SESSIONWARD_MAX_SESSIONS": "1",
            "SESSIONWARD_PREVENT_LOGIN": "true",
            "SESSIONWARD_FIXATION": "migrate",
            "SESSIONWARD_BINDING": "ua+ip_prefix",
            "SESSIONWARD_COOKIE_SECURE": "false",
            "SESSIONWARD_TRUSTED_PROXIES": "10.0.0.0/8, ::1",
            "SESSIONWARD_REAUTH_WINDOW": "60",
            "SESSIONWARD_ELEVATION_TIMEOUT": "30",
            "SESSIONWARD_STORE": "memory://",  # read by the application, ignored here
            "SESSIONWARD_DEMO_USERS": "a:b",
        }
    )
    assert policy.timeouts.idle_timeout_s == 3
    assert policy.timeouts.absolute_timeout_s == 120
    assert policy.timeouts.renewal_interval_s == 0
    assert policy.login.max_sessions == 1
    assert policy.login.prevent_login is True
    assert policy.login.fixation is Fixation.MIGRATE
    assert policy.binding.user_agent
    assert policy.binding.ip_prefix
    assert policy.cookie.secure is False
    assert policy.cookie.cookie_name == "sid"
    assert policy.trusted_proxies == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1"))
    assert policy.login.reauth_window_s == 60
    assert policy.login.elevation_timeout_s == 30


def test_preset_then_explicit_override() -> None:
    policy = SessionPolicy.from_env({"SESSIONWARD_PRESET": "banking", "SESSIONWARD_IDLE_TIMEOUT": "60"})
    assert policy.timeouts.idle_timeout_s == 60
    assert policy.timeouts.absolute_timeout_s == 1800


def test_empty_environment_keeps_defaults() -> None:
    assert SessionPolicy.from_env({}) == SessionPolicy()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SESSIONWARD_IDLE_TIMEOUT", "soon"),
        ("SESSIONWARD_IDLE_TIMEOUT", "-5"),
        ("SESSIONWARD_IDLE_TIMEOUT", "nan"),
        ("SESSIONWARD_IDLE_TIMEOUT", "0"),
        ("SESSIONWARD_ABSOLUTE_TIMEOUT", "inf"),
        ("SESSIONWARD_RENEWAL_INTERVAL", "hourly"),
        ("SESSIONWARD_PRESET", "casino"),
        ("SESSIONWARD_MAX_SESSIONS", "-1"),
        ("SESSIONWARD_MAX_SESSIONS", "two"),
        ("SESSIONWARD_PREVENT_LOGIN", "maybe"),
        ("SESSIONWARD_FIXATION", "keep"),
        ("SESSIONWARD_BINDING", "mac"),
        ("SESSIONWARD_COOKIE_SECURE", "sometimes"),
        ("SESSIONWARD_TRUSTED_PROXIES", "10.0.0.0/33"),
        ("SESSIONWARD_REAUTH_WINDOW", "0"),
        ("SESSIONWARD_ELEVATION_TIMEOUT", "x"),
    ],
)
def test_malformed_variable_is_named(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        SessionPolicy.from_env({variable: value})
    assert raised.value.setting == variable
    assert variable in str(raised.value)


def test_cross_setting_error_names_the_variable_that_was_set() -> None:
    with pytest.raises(ConfigError) as raised:
        SessionPolicy.from_env({"SESSIONWARD_IDLE_TIMEOUT": "99999"})
    assert raised.value.setting == "SESSIONWARD_IDLE_TIMEOUT"


def test_anonymous_idle_timeout_is_read_and_checked_against_the_idle_timeout() -> None:
    policy = SessionPolicy.from_env({"SESSIONWARD_ANONYMOUS_IDLE_TIMEOUT": "120"})
    assert policy.timeouts.effective_anonymous_idle_timeout_s == 120
    with pytest.raises(ConfigError) as raised:
        SessionPolicy.from_env({"SESSIONWARD_IDLE_TIMEOUT": "60", "SESSIONWARD_ANONYMOUS_IDLE_TIMEOUT": "120"})
    assert raised.value.setting == "SESSIONWARD_ANONYMOUS_IDLE_TIMEOUT"
