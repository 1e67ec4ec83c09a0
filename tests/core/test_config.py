"""The policy refuses insecure or malformed settings at construction, naming the setting."""

from __future__ import annotations

import pytest

from sessionward import (
    ConfigError,
    CookiePolicy,
    Creation,
    Fixation,
    InvalidSessionPolicy,
    LoginPolicy,
    SessionPolicy,
    TimeoutPolicy,
)
from sessionward.core.config import PRESETS, BindingPolicy


def test_defaults_are_hardened() -> None:
    policy = SessionPolicy()
    cookie = policy.cookie
    assert (cookie.cookie_name, cookie.secure, cookie.http_only, cookie.same_site) == ("__Host-sid", True, True, "lax")
    assert (cookie.path, cookie.domain, cookie.max_age_s) == ("/", None, None)
    assert policy.id_bits == 256
    assert policy.login.fixation is Fixation.CHANGE_ID
    assert policy.creation is Creation.IF_REQUIRED
    assert CookiePolicy(secure=False).cookie_name == "sid"


@pytest.mark.parametrize(
    ("build", "setting"),
    [
        (lambda: CookiePolicy(same_site="none", secure=False), "cookie.same_site"),
        (lambda: CookiePolicy(same_site="loose"), "cookie.same_site"),  # type: ignore[arg-type]
        (lambda: CookiePolicy(name="__Host-x", domain="example.com"), "cookie.domain"),
        (lambda: CookiePolicy(name="__Host-x", secure=False), "cookie.name"),
        (lambda: CookiePolicy(name="__Host-x", path="/app"), "cookie.path"),
        (lambda: CookiePolicy(name="__Secure-x", secure=False), "cookie.name"),
        (lambda: CookiePolicy(name="bad name"), "cookie.name"),
        (lambda: CookiePolicy(name="a;b"), "cookie.name"),
        (lambda: CookiePolicy(path="/x;Domain=evil"), "cookie.path"),
        (lambda: CookiePolicy(secure=False, domain="ex\r\nample.com"), "cookie.domain"),
        (lambda: CookiePolicy(max_age_s=0), "cookie.max_age_s"),
        (lambda: TimeoutPolicy(idle_timeout_s=0), "timeouts.idle_timeout_s"),
        (lambda: TimeoutPolicy(idle_timeout_s=100, absolute_timeout_s=50), "timeouts.idle_timeout_s"),
        (lambda: TimeoutPolicy(renewal_interval_s=-1), "timeouts.renewal_interval_s"),
        (lambda: TimeoutPolicy(rotation_grace_s=120), "timeouts.rotation_grace_s"),
        (lambda: TimeoutPolicy(anonymous_idle_timeout_s=3600), "timeouts.anonymous_idle_timeout_s"),
        (lambda: TimeoutPolicy(anonymous_idle_timeout_s=0), "timeouts.anonymous_idle_timeout_s"),
        # Renewals inside one grace period chain up; more links than are followed is refused.
        (lambda: TimeoutPolicy(renewal_interval_s=0.5, rotation_grace_s=60), "timeouts.rotation_grace_s"),
        (lambda: LoginPolicy(max_sessions=-1), "login.max_sessions"),
        (lambda: LoginPolicy(fixation="sometimes"), "login.fixation"),  # type: ignore[arg-type]
        (lambda: InvalidSessionPolicy(redirect_url="https://evil.example/"), "invalid_session.redirect_url"),
        (lambda: InvalidSessionPolicy(redirect_url="//evil.example/"), "invalid_session.redirect_url"),
        (lambda: BindingPolicy(ip=True, ip_prefix=True), "binding"),
        (lambda: SessionPolicy(id_bits=64), "id_bits"),
        (lambda: SessionPolicy(id_bits=130), "id_bits"),
        (lambda: SessionPolicy(max_data_bytes=10), "max_data_bytes"),
        (
            lambda: SessionPolicy(cookie=CookiePolicy(max_age_s=100_000), timeouts=TimeoutPolicy()),
            "cookie.max_age_s",
        ),
    ],
)
def test_insecure_or_malformed_setting_is_refused(build: object, setting: str) -> None:
    with pytest.raises(ConfigError) as raised:
        build()  # type: ignore[operator]
    assert raised.value.setting == setting
    assert str(raised.value).startswith(setting + ": ")


def test_presets_follow_the_seed_table() -> None:
    # (idle range, absolute range) in seconds, from seed 000's recommended values
    expected = {
        "banking": ((120, 300), (900, 1800)),
        "medical": ((300, 600), (3600, 7200)),
        "web": ((900, 1800), (14400, 28800)),
        "admin": ((300, 900), (3600, 7200)),
    }
    assert set(PRESETS) == set(expected)
    for name, ((idle_lo, idle_hi), (abs_lo, abs_hi)) in expected.items():
        preset = TimeoutPolicy.preset(name)
        assert idle_lo <= preset.idle_timeout_s <= idle_hi, name
        assert abs_lo <= preset.absolute_timeout_s <= abs_hi, name
    with pytest.raises(ConfigError, match="preset"):
        TimeoutPolicy.preset("casino")


def test_touch_interval_is_capped_at_a_tenth_of_idle() -> None:
    assert TimeoutPolicy(idle_timeout_s=3, absolute_timeout_s=60).effective_touch_interval_s == pytest.approx(0.3)
    assert TimeoutPolicy(idle_timeout_s=1800).effective_touch_interval_s == 60
    assert TimeoutPolicy(idle_timeout_s=1800, touch_interval_s=600).effective_touch_interval_s == 180


def test_binding_parse() -> None:
    assert not BindingPolicy.parse("none").enabled
    both = BindingPolicy.parse("ua+ip_prefix")
    assert (both.user_agent, both.ip, both.ip_prefix) == (True, False, True)
    for bad in ("", "mac", "none+ua", "ip+ip_prefix"):
        with pytest.raises(ConfigError):
            BindingPolicy.parse(bad)


def test_invalid_session_paths() -> None:
    settings = InvalidSessionPolicy(excluded_paths=("/login", "/static/"))
    assert settings.is_excluded("/login")
    assert not settings.is_excluded("/login/x")
    assert settings.is_excluded("/static/app.css")
    assert settings.is_api("/api/x")
    assert not settings.is_api("/apiary")
