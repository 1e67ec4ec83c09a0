"""Cookie parsing is exact and bounded; Set-Cookie is built in one place and cannot be injected (F3, F4)."""

from __future__ import annotations

import pytest

from sessionward import CookiePolicy
from sessionward.core.cookies import MAX_COOKIE_HEADER_BYTES, build_set_cookie, session_cookie_values


def test_values_found_across_headers_with_exact_names() -> None:
    headers = [b"a=1; sid=one; Sid=two", b"sid=three;__Host-sid=x", b"sid2=no; sid"]
    assert session_cookie_values(headers, "sid") == [b"one", b"three"]
    assert session_cookie_values(headers, "__Host-sid") == [b"x"]
    assert session_cookie_values([b"__host-sid=x; __%48ost-sid=y"], "__Host-sid") == []


def test_oversized_headers_are_not_parsed() -> None:
    huge = b"sid=x; " + b"a" * MAX_COOKIE_HEADER_BYTES
    assert session_cookie_values([huge], "sid") == []


def test_parsing_is_linear() -> None:
    # A pathological header of many separators parses quickly (no backtracking).
    header = b";" * (MAX_COOKIE_HEADER_BYTES - 10) + b"sid=x"
    assert session_cookie_values([header], "sid") == [b"x"]


def test_default_set_cookie_is_hardened() -> None:
    header = build_set_cookie(CookiePolicy(), "abc")
    assert header == "__Host-sid=abc; Path=/; Secure; HttpOnly; SameSite=Lax"


def test_clearing_expires_the_cookie() -> None:
    header = build_set_cookie(CookiePolicy(secure=False, same_site="strict"), "ignored", expire=True)
    assert header.startswith("sid=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    assert header.endswith("HttpOnly; SameSite=Strict")


def test_configured_attributes_appear() -> None:
    policy = CookiePolicy(name="app_sid", domain="example.com", path="/app", max_age_s=600, same_site="none")
    header = build_set_cookie(policy, "v")
    assert header == "app_sid=v; Path=/app; Domain=example.com; Max-Age=600; Secure; HttpOnly; SameSite=None"


@pytest.mark.parametrize("value", ["a;b", "a\r\nSet-Cookie: x=y", 'a"b', "a b", "a,b", "a\\b", "ä"])
def test_header_injection_through_value_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="cookie-octets"):
        build_set_cookie(CookiePolicy(), value)


def test_oversized_set_cookie_is_refused() -> None:
    with pytest.raises(ValueError, match="4096"):
        build_set_cookie(CookiePolicy(), "a" * 5000)
