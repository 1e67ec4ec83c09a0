"""The audit's pure checks: cookie parsing and attributes, names, headers, URLs, ID statistics."""

from __future__ import annotations

import random
import secrets
import string
from collections.abc import Sequence

import httpx
import pytest

from sessionward.audit.checks import (
    CheckResult,
    Observed,
    SetCookie,
    Status,
    check_cookie_attributes,
    check_cookie_name,
    check_ids_in_urls,
    check_logout_clearing,
    check_security_headers,
    check_transport,
    pick_session_cookie,
)
from sessionward.audit.ids import check_ids
from sessionward.audit.randomness import FIPS_BITS, IdBits, fips_140_2, id_bits, independence
from sessionward.audit.values import forge_like

HARDENED = "__Host-sid=abc; Path=/; Secure; HttpOnly; SameSite=Lax"


def statuses(results: Sequence[CheckResult]) -> dict[str, Status]:
    return {r.item: r.status for r in results}


def bit_string(bits: IdBits) -> str:
    value, width = bits.joined()
    return format(value, f"0{width}b")


def observed(headers: dict[str, str] | None = None, body: str = "", path: str = "/") -> Observed:
    return Observed("GET", path, path, 200, httpx.Headers(headers or {}), [], body)


# -- cookies ----------------------------------------------------------------------------------


def test_set_cookie_parsing_keeps_name_value_and_lowercased_attributes() -> None:
    cookie = SetCookie.parse('sid="q1w2"; Path=/app; Max-Age=60; SECURE; httponly; SameSite=Strict')
    assert cookie is not None
    assert (cookie.name, cookie.value, cookie.max_age) == ("sid", "q1w2", 60)
    assert cookie.attributes == {"path": "/app", "max-age": "60", "secure": "", "httponly": "", "samesite": "Strict"}
    assert SetCookie.parse("no-equals-sign; Path=/") is None
    assert SetCookie.parse("sid=; Max-Age=0").clears  # type: ignore[union-attr]


def test_a_hardened_cookie_passes_every_attribute_check() -> None:
    cookie = SetCookie.parse(HARDENED)
    assert cookie is not None
    assert set(statuses(check_cookie_attributes(cookie, "example.test")).values()) == {Status.PASS}


@pytest.mark.parametrize(
    ("header", "item", "status"),
    [
        ("sid=a; Path=/; Secure; SameSite=Lax", "cookie HttpOnly", Status.FAIL),  # XSS theft
        ("sid=a; Path=/; HttpOnly; SameSite=Lax", "cookie Secure", Status.FAIL),  # sniffing
        ("sid=a; Path=/; Secure; HttpOnly", "cookie SameSite", Status.FAIL),  # CSRF
        ("sid=a; Path=/; Secure; HttpOnly; SameSite=None", "cookie SameSite", Status.FAIL),
        ("sid=a; Secure; HttpOnly; SameSite=Lax", "cookie Path", Status.FAIL),
        ("sid=a; Path=/; Secure; HttpOnly; SameSite=Lax; Domain=.test", "cookie Domain", Status.FAIL),
        ("sid=a; Path=/; Secure; HttpOnly; SameSite=Lax; Domain=example.test", "cookie Domain", Status.WARN),
        ("sid=a; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=31536000", "cookie lifetime", Status.WARN),
    ],
)
def test_each_weak_cookie_attribute_is_reported(header: str, item: str, status: Status) -> None:
    cookie = SetCookie.parse(header)
    assert cookie is not None
    assert statuses(check_cookie_attributes(cookie, "example.test"))[item] is status


@pytest.mark.parametrize(
    "name", ["PHPSESSID", "JSESSIONID", "connect.sid", "session", "ASPSESSIONIDQQ", "laravel_session"]
)
def test_framework_default_cookie_names_fail_fingerprinting(name: str) -> None:
    assert check_cookie_name(name).status is Status.FAIL


@pytest.mark.parametrize("name", ["sid", "__Host-sid", "id"])
def test_generic_cookie_names_pass(name: str) -> None:
    assert check_cookie_name(name).status is Status.PASS


def test_the_session_cookie_is_picked_over_a_csrf_cookie() -> None:
    cookies = [SetCookie.parse(h) for h in ("csrftoken=" + "x" * 64, "sid=abcdef", "theme=dark", "old=; Max-Age=0")]
    picked = pick_session_cookie([c for c in cookies if c is not None])
    assert picked is not None
    assert picked.name == "sid"


def test_a_csrf_cookie_is_never_taken_for_the_session_cookie() -> None:
    cookies = [SetCookie.parse(h) for h in ("__Host-sid-csrf=" + "x" * 43 + "; Path=/", "XSRF-TOKEN=abc")]
    assert pick_session_cookie([c for c in cookies if c is not None]) is None


def test_a_forged_id_has_the_shape_of_a_real_one_but_is_new() -> None:
    real = secrets.token_urlsafe(32)
    forged = forge_like(real)
    assert len(forged) == len(real)
    assert forged != real
    assert all(c in string.ascii_letters + string.digits + "-_" for c in forged)
    assert set(forge_like("0123abcd")) <= set("0123456789abcdef")


# -- transport, headers, URLs -------------------------------------------------------------------


def test_plain_http_fails_except_on_loopback() -> None:
    assert check_transport("http://shop.example.test/").status is Status.FAIL
    assert check_transport("http://127.0.0.1:8000/").status is Status.SKIP
    assert check_transport("https://shop.example.test/").status is Status.PASS


def test_security_headers_pass_when_all_present() -> None:
    home = observed(
        {
            "strict-transport-security": "max-age=31536000; includeSubDomains",
            "content-security-policy": "default-src 'self'",
            "x-content-type-options": "nosniff",
            "x-frame-options": "SAMEORIGIN",
        }
    )
    assert set(statuses(check_security_headers(home, https=True)).values()) == {Status.PASS}


def test_missing_security_headers_fail_and_hsts_is_only_judged_on_https() -> None:
    found = statuses(check_security_headers(observed(), https=True))
    assert found == {
        "HSTS": Status.FAIL,
        "Content-Security-Policy": Status.FAIL,
        "X-Content-Type-Options": Status.FAIL,
        "frame protection": Status.FAIL,
    }
    assert statuses(check_security_headers(observed(), https=False))["HSTS"] is Status.SKIP


def test_csp_frame_ancestors_counts_as_clickjacking_protection() -> None:
    home = observed({"content-security-policy": "frame-ancestors 'none'"})
    assert statuses(check_security_headers(home, https=False))["frame protection"] is Status.PASS


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"location": "/next;jsessionid=ABCDEF123456"}, ""),
        ({}, '<a href="/cart?PHPSESSID=whatever">cart</a>'),
        ({}, '<form action="/pay?sid=zzz">'),
        ({"location": "https://x.test/?token=KNOWN-ID-0001"}, ""),
    ],
)
def test_session_ids_in_redirects_or_links_fail_url_leakage(headers: dict[str, str], body: str) -> None:
    response = observed(headers, body)
    assert check_ids_in_urls([response], ["KNOWN-ID-0001"], "sid").status is Status.FAIL


def test_clean_links_pass_the_url_check() -> None:
    response = observed({"location": "/dashboard"}, '<a href="/sessions?page=2">next</a>')
    assert check_ids_in_urls([response], ["KNOWN-ID-0001"], "sid").status is Status.PASS


# -- ID statistics -------------------------------------------------------------------------------


def test_fips_tests_pass_os_randomness() -> None:
    bits = id_bits([secrets.token_urlsafe(32) for _ in range(80)])
    assert bits.encoding == "base64url"
    assert bits.total >= FIPS_BITS
    assert fips_140_2(bit_string(bits)).passed


@pytest.mark.parametrize(
    ("bits", "failing_test"),
    [
        ("0" * FIPS_BITS, "monobit"),
        ("01" * (FIPS_BITS // 2), "poker"),
        ("0011" * (FIPS_BITS // 4), "poker"),
        (format(random.Random(7).getrandbits(FIPS_BITS - 40), f"0{FIPS_BITS - 40}b") + "1" * 40, "long run"),
    ],
    ids=["all zeros", "alternating", "pairs", "long run"],
)
def test_fips_tests_catch_biased_bits(bits: str, failing_test: str) -> None:
    finding = fips_140_2(bits)
    assert not finding.passed
    assert failing_test in finding.detail


def test_fips_needs_twenty_thousand_bits() -> None:
    with pytest.raises(ValueError, match="20000"):
        fips_140_2("01" * 100)


def test_an_arbitrary_alphabet_is_decoded_without_bias() -> None:
    alphabet = string.ascii_lowercase + string.digits  # Django's session-key alphabet
    ids = ["".join(secrets.choice(alphabet) for _ in range(32)) for _ in range(150)]
    bits = id_bits(ids)
    assert bits.encoding == "alphabet-36"
    assert fips_140_2(bit_string(bits)).passed
    assert independence(bits).passed


@pytest.mark.parametrize(
    "ids",
    [
        [f"sess_{n:012d}" for n in range(1000, 1100)],  # a counter
        [format(1_700_000_000_000 + 37 * n, "x") + secrets.token_hex(2) for n in range(100)],  # timestamp + noise
        ["a5" * 8 + secrets.token_hex(8) for _ in range(100)],  # a fixed prefix
    ],
    ids=["counter", "timestamp", "fixed prefix"],
)
def test_predictable_ids_fail_independence(ids: list[str]) -> None:
    assert not independence(id_bits(ids)).passed


def test_short_ids_fail_the_entropy_check() -> None:
    results = check_ids([secrets.token_hex(4) for _ in range(50)], None).results
    assert statuses(results)["ID length and entropy"] is Status.FAIL


def test_repeated_ids_fail_uniqueness() -> None:
    ids = [secrets.token_urlsafe(32) for _ in range(30)]
    results = check_ids([*ids, ids[3]], None).results
    assert statuses(results)["ID uniqueness"] is Status.FAIL


def test_an_id_carrying_the_user_name_fails() -> None:
    ids = [f"alice_{secrets.token_hex(20)}" for _ in range(30)]
    results = check_ids(ids, "alice").results
    assert statuses(results)["ID carries no user data"] is Status.FAIL


# -- logout ------------------------------------------------------------------------------------


def logout_answer(set_cookie: str | None) -> Observed:
    cookies = [c for c in [SetCookie.parse(set_cookie)] if c is not None] if set_cookie else []
    return Observed("POST", "/logout", "/logout", 302, httpx.Headers(), cookies, "")


def test_a_logout_that_sets_a_new_anonymous_id_in_place_of_the_signed_in_one_clears_it() -> None:
    # express-session's documented logout: regenerate() sends a new connect.sid.
    result = check_logout_clearing([logout_answer("sid=fresh-anonymous-id; Path=/; HttpOnly")], "sid", "signed-in-id")
    assert result.status is Status.PASS
    assert "replaces the signed-in value" in result.detail


def test_a_logout_that_sets_the_signed_in_id_again_or_nothing_leaves_it_in_the_browser() -> None:
    again = check_logout_clearing([logout_answer("sid=signed-in-id; Path=/")], "sid", "signed-in-id")
    nothing = check_logout_clearing([logout_answer(None)], "sid", "signed-in-id")
    assert again.status is Status.WARN
    assert nothing.status is Status.WARN
    deleted = check_logout_clearing([logout_answer("sid=; Max-Age=0; Path=/")], "sid", "signed-in-id")
    assert deleted.status is Status.PASS
