"""Configuration from Django's settings, and the checks of the installation."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped]
from django.test import override_settings  # type: ignore[import-untyped]
from django_support import MIDDLEWARE, Client, Configure, configure, cookie_of, store

from sessionward import ManualClock
from sessionward._sync.stores.base import SessionStore
from sessionward.core import ids
from sessionward.core.errors import ConfigError
from sessionward.core.records import SessionRecord
from sessionward.django.apps import check_installation, get_manager
from sessionward.django.middleware import SessionwardMiddleware

__all__ = ["configure", "store"]  # fixtures

DJANGO_SESSIONS = "django.contrib.sessions.middleware.SessionMiddleware"


def ids_of(errors: list[object]) -> list[str]:
    return [str(getattr(error, "id", "")) for error in errors]


def test_a_correct_installation_passes_the_checks() -> None:
    assert check_installation() == []


def test_the_engine_without_the_middleware_fails_the_checks() -> None:
    with override_settings(MIDDLEWARE=[DJANGO_SESSIONS]):
        assert ids_of(check_installation()) == ["sessionward.E001"]


def test_the_middleware_without_the_engine_fails_the_checks() -> None:
    with override_settings(SESSION_ENGINE="django.contrib.sessions.backends.db"):
        assert ids_of(check_installation()) == ["sessionward.E002"]


def test_both_session_middlewares_fail_the_checks() -> None:
    with override_settings(MIDDLEWARE=[*MIDDLEWARE, DJANGO_SESSIONS]):
        assert ids_of(check_installation()) == ["sessionward.E003"]


def test_djangos_check_command_runs_the_checks() -> None:
    from django.core.management import call_command  # type: ignore[import-untyped]
    from django.core.management.base import SystemCheckError  # type: ignore[import-untyped]

    with override_settings(MIDDLEWARE=[DJANGO_SESSIONS]), pytest.raises(SystemCheckError, match=r"sessionward\.E001"):
        call_command("check")


def _ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def test_the_middleware_refuses_to_run_beside_djangos() -> None:
    with override_settings(MIDDLEWARE=[*MIDDLEWARE, DJANGO_SESSIONS]), pytest.raises(ImproperlyConfigured):
        SessionwardMiddleware(_ok)


def test_the_middleware_refuses_another_session_engine() -> None:
    with (
        override_settings(SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies"),
        pytest.raises(ImproperlyConfigured, match=r"sessionward\.django\.backend"),
    ):
        SessionwardMiddleware(_ok)


def test_policy_variables_in_the_settings_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONWARD_IDLE_TIMEOUT", "300")
    monkeypatch.setenv("SESSIONWARD_MAX_SESSIONS", "4")

    with override_settings(SESSIONWARD_POLICY=None, SESSIONWARD_IDLE_TIMEOUT=120, SESSIONWARD_PREVENT_LOGIN=True):
        policy = get_manager().policy

    assert policy.timeouts.idle_timeout_s == 120
    assert policy.login.max_sessions == 4
    assert policy.login.prevent_login is True


def test_test_settings_can_turn_the_secure_cookie_off() -> None:
    with override_settings(SESSIONWARD_POLICY=None, SESSIONWARD_COOKIE_SECURE=False):
        cookie = get_manager().policy.cookie

    assert cookie.cookie_name == "sid"
    assert cookie.secure is False


def test_a_malformed_policy_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with (
        override_settings(SESSIONWARD_POLICY=None, SESSIONWARD_IDLE_TIMEOUT="soon"),
        pytest.raises(ConfigError, match="SESSIONWARD_IDLE_TIMEOUT"),
    ):
        get_manager()


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("SESSIONWARD_STORE", 42),
        ("SESSIONWARD_STORE", "gopher://store"),
        ("SESSIONWARD_POLICY", {"idle": 5}),
        ("SESSIONWARD_CLOCK", 1700000000),
        ("SESSIONWARD_EVENTS", []),
        ("SESSIONWARD_STORE_TIMEOUT", 0),
    ],
)
def test_a_malformed_object_setting_is_named(setting: str, value: object) -> None:
    with override_settings(**{setting: value}), pytest.raises(ConfigError, match=setting):
        get_manager()


def test_changing_a_setting_builds_the_manager_again(configure: Configure) -> None:
    before = get_manager()
    assert get_manager() is before

    configure(SESSIONWARD_STORE_TIMEOUT=5)

    assert get_manager() is not before
    assert get_manager().store_timeout_s == 5


def test_a_store_url_is_opened_and_used(configure: Configure, tmp_path: Path, clock: ManualClock) -> None:
    configure(SESSIONWARD_STORE=f"sqlite:///{tmp_path}/sessions.db")
    opened = get_manager().store
    assert isinstance(opened, SessionStore)
    opened.setup()

    sid = cookie_of(Client().post("/set?a=1"))

    assert sid
    record = opened.load(ids.storage_key(sid), clock())
    assert isinstance(record, SessionRecord)
    assert record.data == {"a": "1"}
