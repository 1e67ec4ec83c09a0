"""``sessionward audit`` against live sites: sessionward's passes, a weak hand-rolled one fails.

The demo application's audits are in ``test_audit_targets``.
"""

from __future__ import annotations

import re

import orjson
from cli_sites import PASSWORD, USERNAME, hardened_site, serve, weak_site
from click.testing import CliRunner, Result

from sessionward import LoginPolicy, SessionPolicy
from sessionward.cli import main


def audit(url: str, *extra: str, credentials: bool = True) -> tuple[Result, dict[str, str]]:
    login = ["--username", USERNAME, "--password", PASSWORD] if credentials else []
    result = CliRunner().invoke(main, ["audit", url, *login, "--json", *extra])
    assert "Traceback" not in result.output
    report = orjson.loads(result.stdout)
    return result, {check["item"]: check["status"] for check in report["checks"]}


def test_a_sessionward_site_passes_every_check() -> None:
    with serve(hardened_site()) as url:
        result, checks = audit(url)
    assert result.exit_code == 0, result.output
    assert {item for item, status in checks.items() if status not in ("pass", "skip")} == set()
    for item in (
        "cookie HttpOnly",
        "cookie Secure",
        "cookie SameSite",
        "fixation on login",
        "logout invalidates the session",
        "session ID not accepted from the URL",
        "ID randomness (FIPS 140-2)",
        "ID independence",
        "no session ID in redirects or links",
    ):
        assert checks[item] == "pass", item
    report = orjson.loads(result.stdout)
    assert report["cookie_name"] == "__Host-sid"
    # The hardened site starts anonymous sessions on GET /login: the fixation check
    # carries such a server-issued ID into the login, the strongest form of the attack.
    fixation = next(c for c in report["checks"] if c["item"] == "fixation on login")
    assert "server-issued" in fixation["detail"]
    assert report["sample_source"] == "GET /login"


def test_a_site_without_anonymous_sessions_is_sampled_by_logging_in_and_out() -> None:
    # "first wins" with one session allowed: the audit must log out after each sample.
    policy = SessionPolicy(login=LoginPolicy(max_sessions=1, prevent_login=True))
    with serve(hardened_site(login_page=False, policy=policy)) as url:
        result, checks = audit(url)
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["sample_source"] == "login and logout at /api/login"
    assert report["sample_size"] >= 79  # 20,000 bits of 256-bit IDs
    assert checks["ID randomness (FIPS 140-2)"] == "pass"
    assert checks["fixation on login"] == "pass"


def test_a_weak_site_fails_the_audit_item_by_item() -> None:
    with serve(weak_site()) as url:
        result, checks = audit(url)
    assert result.exit_code == 1
    failed = {item for item, status in checks.items() if status == "fail"}
    assert failed >= {
        "cookie name is generic",  # 'session'
        "cookie HttpOnly",
        "cookie Secure",
        "cookie SameSite",
        "fixation on login",  # the ID survives login
        "logout invalidates the session",  # only the cookie is cleared
        "session ID not accepted from the URL",  # ?session= signs in
        "unknown session ID refused (strict mode)",  # a made-up cookie is taken as it is
        "unknown session ID refused at login",
        "ID length and entropy",  # sequential numbers
        "no session ID in redirects or links",
        "Content-Security-Policy",
        "X-Content-Type-Options",
        "frame protection",
    }
    # IDs of one to three digits have no bits to compare: their length fails, independence is not judged.
    assert checks["ID independence"] == "skip"


def test_the_table_report_ends_with_counts_and_exit_1_on_failure() -> None:
    with serve(weak_site()) as url:
        result = CliRunner().invoke(main, ["audit", url, "-u", USERNAME, "-p", PASSWORD, "--samples", "20"])
    assert result.exit_code == 1
    assert "FAIL" in result.output
    assert "fixation on login" in result.output
    summary = " ".join(result.output.split())  # the table wraps at 80 columns in a pipe
    assert re.search(r"Checks: \d+ pass, [1-9]\d* fail, \d+ warn, \d+ skip\.", summary)


def test_without_credentials_the_login_checks_are_skipped_not_failed() -> None:
    with serve(hardened_site()) as url:
        result, checks = audit(url, credentials=False)
    assert result.exit_code == 0, result.output
    assert checks["fixation on login"] == "skip"
    assert checks["logout invalidates the session"] == "skip"
    assert checks["cookie HttpOnly"] == "pass"  # the anonymous session cookie of GET /login


def test_wrong_credentials_stop_the_audit_with_one_error_line() -> None:
    with serve(hardened_site()) as url:
        result = CliRunner().invoke(main, ["audit", url, "-u", USERNAME, "-p", "wrong"])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: login at /api/login answered 401")


def test_a_bad_login_form_selector_is_one_usage_error_line() -> None:
    result = CliRunner().invoke(main, ["audit", "http://127.0.0.1:9/", "--login-form", "div > form"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: Invalid value for --login-form: 'div > form' is not a form selector")
    assert "Traceback" not in result.output


def test_the_new_options_are_in_the_help() -> None:
    result = CliRunner().invoke(main, ["audit", "--help"])
    assert result.exit_code == 0
    for option in ("--login-via", "--login-form", "--user-field", "--password-field", "--check-url", "--deadline"):
        assert option in result.output
