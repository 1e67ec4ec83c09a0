"""``sessionward audit --browser``: signing in through the real page, in Debian's Chromium.

The target sites (``cli_sites.js_login_site`` and ``weak_js_login_site``) can only be
signed in to by their login page's script: the form has no action, and the script posts
JSON with a CSRF token from the page in a header. Without the browser the audit cannot
sign in; with it, every login check runs and is judged, and the report says what the
browser stored.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

import orjson
import pytest
from cli_sites import PASSWORD, USERNAME, js_login_site, serve, weak_js_login_site
from click.testing import CliRunner, Result

from demo.browser_support import CHROMIUM
from sessionward.cli import main
from setup_first_minutes.support import CLI, run_without
from support.helpers import service_missing

LOGIN = ["--username", USERNAME, "--password", PASSWORD]
LOGIN_ITEMS = (
    "session ID not accepted from the URL",
    "unknown session ID refused at login",
    "fixation on login",
    "logout invalidates the session",
    "logout clears the cookie",
)


def browser_module() -> ModuleType:
    """``sessionward.audit.browser``, or a skip (a failure under SESSIONWARD_REQUIRE_SERVICES) without Playwright."""
    if importlib.util.find_spec("playwright") is None:
        service_missing("playwright is not installed (pip install -e '.[browser]')")
    return importlib.import_module("sessionward.audit.browser")


@pytest.fixture
def chromium() -> str:
    """Debian's Chromium, with Playwright to drive it."""
    browser_module()
    if not CHROMIUM.exists():
        service_missing(f"{CHROMIUM} is missing (apt-get install chromium)")
    return str(CHROMIUM)


def audit(url: str, *extra: str) -> tuple[Result, dict[str, object], dict[str, tuple[str, str]]]:
    result = CliRunner().invoke(main, ["audit", url, *LOGIN, "--json", *extra])
    assert "Traceback" not in result.output, result.output
    report = orjson.loads(result.stdout)
    checks = {c["item"]: (c["status"], c["detail"]) for c in report["checks"]}
    return result, report, checks


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_without_the_browser_a_script_only_login_cannot_be_made() -> None:
    with serve(js_login_site()) as url:
        result = CliRunner().invoke(main, ["audit", url, *LOGIN, "--json"])
    assert result.exit_code == 1
    assert result.stdout == ""  # no report: nothing was judged
    line = one_line(result.stderr)
    assert "login at /api/login answered 404" in line
    assert "the login form on /login came back after signing in" in line


@pytest.mark.browser
@pytest.mark.slow
def test_the_browser_signs_in_through_the_script_and_the_sessionward_site_passes(chromium: str) -> None:
    with serve(js_login_site()) as url:
        result, report, checks = audit(url, "--browser-path", chromium)
    assert result.exit_code == 0, result.output
    assert report["login"] == "form#login on /login, in Chromium"
    for item in LOGIN_ITEMS:
        assert checks[item][0] == "pass", (item, checks[item])
    assert "server-issued" in checks["fixation on login"][1]  # GET /login's anonymous ID was carried in
    assert checks["logout clears the cookie"][1] == "POST /logout deletes it"  # the landing page's logout form
    assert {item for item, (status, _) in checks.items() if status in ("fail", "warn")} == set()
    assert checks["browser kept the session cookie"] == (
        "pass",
        "Secure, HttpOnly, SameSite=Lax, Path=/, host-only, until the browser closes",
    )
    assert checks["no session token in localStorage"] == ("pass", "it is empty")
    stored = report["browser"]
    assert isinstance(stored, dict)
    assert stored["cookies"] == [
        {
            "name": "__Host-sid",
            "domain": "127.0.0.1",
            "path": "/",
            "secure": True,
            "http_only": True,
            "same_site": "Lax",
            "lifetime_s": None,
        }
    ]
    assert stored["storage"] == [{"area": "sessionStorage", "key": "theme", "length": 4, "token": False}]
    assert stored["refused"] == []
    assert stored["after_logout"] == []  # the signed-in ID was deleted from the browser


@pytest.mark.browser
@pytest.mark.slow
def test_the_browser_login_on_a_weak_site_fails_item_by_item(chromium: str) -> None:
    with serve(weak_js_login_site()) as url:
        result, report, checks = audit(url, "--browser", "--logout-path", "/logout")
    assert result.exit_code == 1
    assert {item for item, (status, _) in checks.items() if status == "fail"} >= {
        "cookie HttpOnly",
        "unknown session ID refused at login",  # a made-up ID brought to the login page is signed in
        "fixation on login",
        "logout invalidates the session",  # the logout only deletes the cookie
    }
    # --logout-path: no form posts there, the script's POST gets 405, so the page visits it.
    assert checks["logout clears the cookie"] == ("pass", "GET /logout deletes it")
    assert checks["browser kept the session cookie"] == (
        "pass",
        "SameSite=Lax, Path=/, host-only, until the browser closes "
        "(SameSite=Lax is the browser's default: the site set none)",
    )
    status, detail = checks["no session token in localStorage"]
    assert status == "warn"
    assert "'access_token'" in detail
    stored = report["browser"]
    assert isinstance(stored, dict)
    assert [(c["name"], c["http_only"], c["secure"]) for c in stored["cookies"]] == [("sid", False, False)]
    assert stored["storage"] == [
        {"area": "localStorage", "key": "access_token", "length": 86, "token": True},
        {"area": "sessionStorage", "key": "theme", "length": 4, "token": False},
    ]


@pytest.mark.browser
@pytest.mark.slow
def test_a_session_cookie_the_browser_refuses_is_named(chromium: str) -> None:
    # A __Host- cookie without Secure: Chromium drops it, so the script's POST carries no session.
    with serve(weak_js_login_site(cookie="__Host-sid", attributes="Path=/; HttpOnly")) as url:
        result = CliRunner().invoke(main, ["audit", url, *LOGIN, "--browser"])
    assert result.exit_code == 1
    line = one_line(result.stderr)
    assert "(POST /session answered 403)" in line
    assert "Chromium refused the cookie __Host-sid that GET /login set (a __Host- cookie needs Secure" in line


def test_the_browser_without_playwright_names_the_extra() -> None:
    result = run_without(("playwright",), CLI, "audit", "http://127.0.0.1:9/", *LOGIN, "--browser")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    line = one_line(result.stderr)
    assert line.startswith("error: --browser: ")
    assert "playwright is not installed; pip install 'sessionward[browser]'" in line


def test_the_browser_without_chromium_names_the_option(tmp_path: Path) -> None:
    browser_module()
    missing = str(tmp_path / "chromium")
    result = CliRunner().invoke(main, ["audit", "http://127.0.0.1:9/", *LOGIN, "--browser-path", missing])
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert line.startswith(f"error: --browser-path: no Chromium at {missing}")
    assert "give the executable with --browser-path PATH" in line


def test_the_browser_needs_an_account_and_the_login_page() -> None:
    result = CliRunner().invoke(main, ["audit", "http://127.0.0.1:9/", "--browser"])
    assert result.exit_code == 2
    assert "--browser signs in through the login page: give --username and --password" in one_line(result.stderr)
    result = CliRunner().invoke(main, ["audit", "http://127.0.0.1:9/", *LOGIN, "--browser", "--login-via", "json"])
    assert result.exit_code == 2
    assert "not with --login-via json" in one_line(result.stderr)


# -- the verdicts on what the browser kept: pure functions ------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "token"),
    [
        ("access_token", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl", True),  # a JWT
        ("prefs", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl", True),  # a JWT, whatever its key
        ("authToken", "3f9a1c0e7b2d4a6f8e1c3b5d7f9a2c4e", True),
        ("oidc.user", '{"id_token": "x", "access_token": "Zm9vYmFyYmF6cXV4cXV1eGNvcmdl"}', True),
        ("copy", "the session ID: 0123456789abcdef0123", True),  # holds the session cookie's value
        ("authRedirect", "/home", False),  # a token-ish key, but no token in it
        ("author", "JohnSmithTheWriterOfManyBooks", False),  # a long word, no digit
        ("theme", "dark", False),
        ("draft", "a long note that someone was typing before signing in", False),
    ],
)
def test_web_storage_values_that_look_like_tokens(key: str, value: str, token: bool) -> None:
    browser = browser_module()
    assert browser.looks_like_token(key, value, ["0123456789abcdef0123"]) is token


def test_local_storage_warns_only_for_tokens_kept_there() -> None:
    browser = browser_module()
    key = browser.StoredKey
    session_only = [key(area="sessionStorage", key="access_token", length=40, token=True)]
    assert browser.check_local_storage(session_only).status.value == "pass"
    local = [*session_only, key(area="localStorage", key="jwt", length=120, token=True)]
    result = browser.check_local_storage(local)
    assert result.status.value == "warn"
    assert "'jwt'" in result.detail
    assert "access_token" not in result.detail


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("__Host-sid=v; Path=/", "a __Host- cookie needs Secure, Path=/ and no Domain"),
        ("__Host-sid=v; Path=/app; Secure", "a __Host- cookie needs Secure, Path=/ and no Domain"),
        ("__Secure-sid=v; Path=/", "a __Secure- cookie needs Secure"),
        ("sid=v; SameSite=None", "SameSite=None needs Secure"),
        ("sid=v; Domain=other.example", "its Domain=other.example does not cover app.example.com"),
        ("sid=v; Domain=.example.com; Secure", ""),
    ],
)
def test_why_a_browser_refuses_a_cookie(header: str, reason: str) -> None:
    browser = browser_module()
    from sessionward.audit.checks import SetCookie

    cookie = SetCookie.parse(header)
    assert cookie is not None
    assert browser.refusal_reason(cookie, "app.example.com") == reason
    if reason:
        kept = browser.check_browser_kept(cookie, [], None, "app.example.com")
        assert kept.status.value == "fail"
        assert reason in kept.detail


def test_the_table_report_shows_what_the_browser_stored() -> None:
    browser = browser_module()
    from rich.console import Console

    from sessionward.cli.audit import _print_browser

    stored = browser.BrowserStorage(
        cookies=[
            browser.StoredCookie(
                name="sid",
                domain=".example.com",
                path="/",
                secure=True,
                http_only=False,
                same_site="None",
                lifetime_s=3600,
            )
        ],
        keys=[browser.StoredKey(area="localStorage", key="jwt\x1b[2J", length=120, token=True)],
        refused=["__Host-x (set by GET /login)"],
        after_logout=["sid"],
    )
    console = Console(record=True, width=160, force_terminal=False)
    _print_browser(console, stored)
    shown = console.export_text()
    assert "what Chromium stored for the site after signing in" in shown
    assert "Secure, SameSite=None, Path=/, Domain=.example.com, expires in 3600 s" in shown
    assert "__Host-x (set by GET /login)" in shown
    assert "REFUSED" in shown
    assert "localStorage: jwt" in shown
    assert "\x1b" not in shown  # the site's key name is shown, not obeyed
    assert "looks like a token" in shown
    assert "sessionStorage: empty" in shown
    assert "still held with their signed-in values after logout: sid" in shown
