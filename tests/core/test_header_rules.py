"""The security-header rules on plain header lists: which headers a response leaves with.

Each row names the attack its header meets (clickjacking, MIME sniffing, SSL stripping, a
shared cache serving one user's session page to the next…); the ASGI and WSGI
middlewares apply these same functions.
"""

from __future__ import annotations

import pytest

from sessionward import ConfigError, ManualClock, SessionPolicy
from sessionward.core.engine import ClientInfo
from sessionward.core.headers import (
    DEFAULT_CSP,
    HeaderPairs,
    SecurityHeadersPolicy,
    carries_session,
    secure_headers,
    with_session_headers,
)
from sessionward.core.outcomes import CookieAction

SET_COOKIE = (b"set-cookie", b"__Host-sid=abc; Path=/; Secure; HttpOnly")


def value(headers: HeaderPairs, name: bytes) -> list[bytes]:
    return [v for n, v in headers if n.lower() == name]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param(b"strict-transport-security", b"max-age=31536000; includeSubDomains", id="ssl-stripping"),
        pytest.param(b"content-security-policy", DEFAULT_CSP.encode(), id="script-injection"),
        pytest.param(b"x-content-type-options", b"nosniff", id="mime-sniffing"),
        pytest.param(b"x-frame-options", b"DENY", id="clickjacking"),
        pytest.param(b"referrer-policy", b"same-origin", id="url-leak-to-other-sites"),
        pytest.param(b"cross-origin-opener-policy", b"same-origin", id="cross-window-attacks"),
    ],
)
def test_every_response_gets_the_default_headers(name: bytes, expected: bytes) -> None:
    secured = secure_headers(SecurityHeadersPolicy(), [], carries_session=False)
    assert value(secured, name) == [expected]


@pytest.mark.parametrize(
    ("response", "carries", "cache_control"),
    [
        pytest.param(
            [(b"cache-control", b"public, max-age=3600")], True, [b"no-store"], id="shared-cache-session-page"
        ),
        pytest.param([(b"Cache-Control", b"private")], True, [b"no-store"], id="app-cache-header-any-case-replaced"),
        pytest.param([], True, [b"no-store"], id="session-page-without-cache-header"),
        pytest.param(
            [(b"cache-control", b"public, max-age=60")], False, [b"public, max-age=60"], id="public-page-kept"
        ),
        pytest.param([], False, [], id="public-page-without-cache-header"),
    ],
)
def test_a_response_carrying_a_session_is_never_cached(
    response: HeaderPairs, carries: bool, cache_control: list[bytes]
) -> None:
    secured = secure_headers(SecurityHeadersPolicy(), response, carries_session=carries)
    assert value(secured, b"cache-control") == cache_control


def test_no_store_can_be_left_to_the_application() -> None:
    policy = SecurityHeadersPolicy(no_store_session_responses=False)
    secured = secure_headers(policy, [(b"cache-control", b"private")], carries_session=True)
    assert value(secured, b"cache-control") == [b"private"]


def test_a_header_the_application_set_is_left_alone() -> None:
    own = [(b"Content-Security-Policy", b"default-src 'none'"), (b"X-Frame-Options", b"SAMEORIGIN")]
    secured = secure_headers(SecurityHeadersPolicy(), own, carries_session=False)
    assert value(secured, b"content-security-policy") == [b"default-src 'none'"]
    assert value(secured, b"x-frame-options") == [b"SAMEORIGIN"]
    assert value(secured, b"x-content-type-options") == [b"nosniff"]


def test_the_given_list_is_not_changed() -> None:
    response = [(b"cache-control", b"public")]
    secure_headers(SecurityHeadersPolicy(), response, carries_session=True)
    assert response == [(b"cache-control", b"public")]


@pytest.mark.parametrize(
    ("policy", "name", "expected"),
    [
        (SecurityHeadersPolicy(hsts_max_age_s=0), b"strict-transport-security", []),
        (
            SecurityHeadersPolicy(hsts_preload=True),
            b"strict-transport-security",
            [b"max-age=31536000; includeSubDomains; preload"],
        ),
        (SecurityHeadersPolicy(hsts_include_subdomains=False), b"strict-transport-security", [b"max-age=31536000"]),
        (SecurityHeadersPolicy(content_security_policy=None), b"content-security-policy", []),
        (SecurityHeadersPolicy(frame_options="SAMEORIGIN"), b"x-frame-options", [b"SAMEORIGIN"]),
        (SecurityHeadersPolicy(frame_options=None), b"x-frame-options", []),
        (SecurityHeadersPolicy(content_type_options=False), b"x-content-type-options", []),
        (SecurityHeadersPolicy(referrer_policy="no-referrer"), b"referrer-policy", [b"no-referrer"]),
        (SecurityHeadersPolicy(cross_origin_opener_policy=None), b"cross-origin-opener-policy", []),
    ],
)
def test_policy_chooses_the_headers(policy: SecurityHeadersPolicy, name: bytes, expected: list[bytes]) -> None:
    assert value(secure_headers(policy, [], carries_session=False), name) == expected
    assert value(policy.header_list(), name) == expected


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"hsts_max_age_s": -1}, "headers.hsts_max_age_s"),
        ({"hsts_max_age_s": True}, "headers.hsts_max_age_s"),
        ({"hsts_preload": True, "hsts_include_subdomains": False}, "headers.hsts_preload"),
        ({"hsts_preload": True, "hsts_max_age_s": 86_400}, "headers.hsts_preload"),
        ({"referrer_policy": "always"}, "headers.referrer_policy"),
        ({"frame_options": "ALLOW-FROM https://x.example"}, "headers.frame_options"),
        pytest.param(
            {"content_security_policy": "default-src 'self'\r\nSet-Cookie: sid=planted"},
            "headers.content_security_policy",
            id="header-injection-through-the-csp",
        ),
        ({"content_security_policy": "  "}, "headers.content_security_policy"),
        ({"cross_origin_opener_policy": "same-origin\n"}, "headers.cross_origin_opener_policy"),
    ],
)
def test_policy_refuses_malformed_settings_naming_them(settings: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        SecurityHeadersPolicy(**settings)  # type: ignore[arg-type]


# -- when a response carries a session -----------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "carries"),
    [
        pytest.param([SET_COOKIE], True, id="sets-the-cookie"),
        pytest.param([(b"Set-Cookie", b"sid=; Max-Age=0")], True, id="clears-the-cookie"),
        pytest.param([(b"vary", b"Accept-Encoding, Cookie")], True, id="varies-on-the-cookie"),
        pytest.param([(b"vary", b"Accept-Encoding")], False, id="varies-on-something-else"),
        pytest.param([(b"content-type", b"text/html")], False, id="plain-page"),
    ],
)
def test_a_response_says_it_carries_a_session_in_its_headers(response: HeaderPairs, carries: bool) -> None:
    assert carries_session(response, None) is carries


async def test_the_exchange_says_so_before_the_session_headers_are_added(clock: ManualClock) -> None:
    from sessionward import MemoryStore, SessionManager
    from sessionward.io.exchange import Exchange

    manager = SessionManager(MemoryStore(), SessionPolicy(), clock=clock)
    exchange = Exchange(manager, path="/", client=ClientInfo(ip="203.0.113.7", user_agent="ua"))
    await exchange.open([])
    assert not carries_session([], exchange)  # a visitor's page, nothing read

    exchange.session.get("theme")  # the page depends on the session

    assert carries_session([], exchange)
    other = Exchange(manager, path="/", client=ClientInfo(ip="203.0.113.7", user_agent="ua"))
    other.cookie_action = CookieAction.CLEAR
    assert carries_session([], other)


@pytest.mark.parametrize(
    ("response", "added", "sets_cookie", "cache_control"),
    [
        pytest.param([], [SET_COOKIE], True, [b"no-store"], id="new-session-id-never-cached"),
        pytest.param([(b"Cache-Control", b"private")], [SET_COOKIE], True, [b"private"], id="app-said-private"),
        pytest.param([], [(b"vary", b"Cookie")], False, [], id="read-only-session-page"),
    ],
)
def test_the_session_headers_join_the_response(
    response: HeaderPairs, added: HeaderPairs, sets_cookie: bool, cache_control: list[bytes]
) -> None:
    combined = with_session_headers(response, added, sets_cookie=sets_cookie)
    assert combined[: len(response)] == response
    assert all(header in combined for header in added)
    assert value(combined, b"cache-control") == cache_control
