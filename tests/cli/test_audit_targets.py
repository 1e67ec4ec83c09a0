"""``sessionward audit`` against sites written the way other frameworks write them.

Each target has known weaknesses (its framework's defaults) and things it does right; the
audit must report every item as expected: each planted weakness found, no false alarm
on what is right. The expected reports are written out in full, item by item.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import orjson
import pytest
from cli_demo import DEMO_USERS, demo_available, demo_server
from cli_framework_sites import express_site, php_like_site
from cli_sites import PASSWORD, USERNAME, serve
from click.testing import CliRunner

from sessionward.cli import main

# What every site here gets alike: audited over http on the loopback.
LOCAL = {"HTTPS": "skip", "HSTS": "skip"}
NO_SECURITY_HEADERS = {"Content-Security-Policy": "fail", "X-Content-Type-Options": "fail", "frame protection": "fail"}
RANDOM_IDS = {
    "session data stays on the server": "pass",
    "ID length and entropy": "pass",
    "ID uniqueness": "pass",
    "ID carries no user data": "pass",
    "ID randomness (FIPS 140-2)": "pass",
    "ID independence": "pass",
}
GOOD_LOGIN = {
    "session ID not accepted from the URL": "pass",
    "unknown session ID refused at login": "pass",
    "fixation on login": "pass",
    "logout invalidates the session": "pass",
}


def audit(url: str, *extra: str) -> tuple[int, dict[str, object], dict[str, str]]:
    result = CliRunner().invoke(main, ["audit", url, "--json", *extra])
    assert "Traceback" not in result.output
    assert result.stderr == "", result.stderr
    report = orjson.loads(result.stdout)
    return result.exit_code, report, {c["item"]: c["status"] for c in report["checks"]}


def signed_in(url: str, *extra: str) -> tuple[int, dict[str, object], dict[str, str]]:
    return audit(url, "--username", USERNAME, "--password", PASSWORD, *extra)


def test_express_session_with_passport_login_is_reported_item_by_item() -> None:
    with serve(express_site()) as url:
        status, report, checks = signed_in(url)

    assert checks == {
        **LOCAL,
        **NO_SECURITY_HEADERS,
        **RANDOM_IDS,
        **GOOD_LOGIN,
        "cookie name is generic": "fail",  # connect.sid
        "cookie HttpOnly": "pass",
        "cookie Secure": "fail",
        "cookie SameSite": "fail",
        "cookie Path": "pass",
        "cookie Domain": "pass",
        "cookie lifetime": "pass",
        "cookie name prefix": "warn",
        "Cache-Control on the cookie-setting response": "warn",
        "logout clears the cookie": "pass",
        "unknown session ID refused (strict mode)": "pass",
        "no session ID in redirects or links": "pass",
        "session responses kept out of shared caches": "warn",
    }
    assert status == 1
    # The signed, percent-encoded value is read: the 192-bit ID inside is what was measured.
    assert report["cookie_format"] == "express-session signed ID (s:<id>.<signature>), percent-encoded"
    assert report["encoding"] == "base64url"
    assert report["login"] == "form (POST /login) on /login"
    assert report["sample_source"] == "GET /"


def test_a_php_like_site_that_adopts_unknown_ids_fails_strict_mode_and_nothing_it_does_right() -> None:
    with serve(php_like_site()) as url:
        status, report, checks = signed_in(url)
        _, anonymous_report, anonymous = audit(url)

    assert checks == {
        **LOCAL,
        **NO_SECURITY_HEADERS,
        **RANDOM_IDS,
        **GOOD_LOGIN,
        "cookie name is generic": "fail",  # PHPSESSID
        "cookie HttpOnly": "fail",
        "cookie Secure": "fail",
        "cookie SameSite": "fail",
        "cookie Path": "pass",
        "cookie Domain": "pass",
        "cookie lifetime": "pass",
        "cookie name prefix": "warn",
        "Cache-Control on the cookie-setting response": "pass",  # session.cache_limiter=nocache
        "logout clears the cookie": "warn",  # session_destroy() leaves the cookie
        "unknown session ID refused (strict mode)": "fail",  # use_strict_mode=0
        "no session ID in redirects or links": "pass",
        "session responses kept out of shared caches": "pass",
    }
    assert status == 1
    assert report["encoding"] == "hex"
    assert report["login"] == "form (POST /login) on /login"  # action="" posts back to the page
    # Strict mode needs no account.
    assert anonymous["unknown session ID refused (strict mode)"] == "fail"
    assert anonymous_report["login"] is None


# -- the demo ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not demo_available():
        pytest.skip("the demo application (sessionward.demo) is not in this tree yet")
    server: AbstractContextManager[str] = demo_server(Path(tmp_path_factory.mktemp("demo")))
    with server as url:
        yield url


DEMO_RUNS = 6
"""Audits of the demo in a row (~3 s each: 80 sign-ins with Argon2); benchmarks/bench_audit_demo.py runs 50."""


def test_the_demo_passes_audits_in_a_row_for_every_user(demo_url: str) -> None:
    # Before: 'bob' failed "ID carries no user data" in about 8 % of runs, and the FIPS
    # 140-2 bounds failed about one correct run in a thousand.
    failures = []
    for run in range(DEMO_RUNS):
        user = list(DEMO_USERS)[run % len(DEMO_USERS)]
        status, _, checks = audit(demo_url, "--username", user, "--password", DEMO_USERS[user])
        failures += [(run, user, item) for item, result in checks.items() if result in ("fail", "warn")]
        assert status == 0 or failures
    assert failures == []


def test_the_demo_audited_without_an_account_has_no_failure(demo_url: str) -> None:
    # The only cookie an anonymous visitor gets is the login form's CSRF token
    # (__Host-sid-csrf): before, it was judged as a session ID and "adopted" a made-up value.
    status, report, checks = audit(demo_url)
    assert [item for item, result in checks.items() if result == "fail"] == []
    assert status == 0
    assert report["cookie_name"] is None
    assert checks["session cookie"] == "skip"


def test_the_demo_passes_when_signed_in_through_its_login_form(demo_url: str) -> None:
    # 20 samples: this is about signing in and out through forms, not about the statistics.
    status, report, checks = audit(
        demo_url, "--username", "alice", "--password", DEMO_USERS["alice"], "--login-via", "form", "--samples", "20"
    )
    assert [item for item, result in checks.items() if result not in ("pass", "skip")] == []
    assert checks["ID randomness (FIPS 140-2)"] == "skip"  # 20 IDs are 5,120 bits
    assert status == 0
    assert report["login"] == "form#login-form (POST /login) on /login"  # its hidden csrf_token went along
    assert checks["logout invalidates the session"] == "pass"  # through the dashboard's logout form
