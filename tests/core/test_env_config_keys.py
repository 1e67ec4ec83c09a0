"""A framework's own config keys (Flask, Quart) read as the environment variables are."""

from __future__ import annotations

import pytest

from sessionward.core.config import SessionPolicy
from sessionward.core.env import config_flag, config_items, settings_from_config
from sessionward.core.errors import ConfigError


def test_config_values_become_the_text_the_environment_would_hold() -> None:
    store = object()
    settings = settings_from_config(
        {
            "SESSIONWARD_IDLE_TIMEOUT": 600,
            "SESSIONWARD_COOKIE_SECURE": False,
            "SESSIONWARD_TRUSTED_PROXIES": ["10.0.0.0/8", "192.0.2.1"],
            "SESSIONWARD_STORE": store,
            "SESSIONWARD_MAX_SESSIONS": None,
            "SECRET_KEY": "not ours",
        }
    )
    assert settings == {
        "SESSIONWARD_IDLE_TIMEOUT": "600",
        "SESSIONWARD_COOKIE_SECURE": "false",
        "SESSIONWARD_TRUSTED_PROXIES": "10.0.0.0/8,192.0.2.1",
    }
    policy = SessionPolicy.from_env(settings)
    assert policy.timeouts.idle_timeout_s == 600
    assert policy.cookie.secure is False


def test_a_bad_config_value_is_named_like_a_bad_variable() -> None:
    with pytest.raises(ConfigError, match="SESSIONWARD_TRUSTED_PROXIES"):
        SessionPolicy.from_env(settings_from_config({"SESSIONWARD_TRUSTED_PROXIES": ["not-a-network"]}))


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("off", False), ("0", False), ("", False), ("yes", True), (1, True)],
)
def test_flags(value: object, expected: bool) -> None:
    assert config_flag(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, []), ("a, b,,c", ["a", "b", "c"]), (("x", "y"), ["x", "y"]), ("one", ["one"])],
)
def test_items(value: object, expected: list[str]) -> None:
    assert config_items(value) == expected
