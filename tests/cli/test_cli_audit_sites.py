"""``sessionward audit`` against live sites: sessionward's passes, a weak hand-rolled one fails."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from cli_sites import PASSWORD, USERNAME, free_port, hardened_site, serve, weak_site
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
        "ID length and entropy",  # sequential numbers
        "ID independence",
        "no session ID in redirects or links",
        "Content-Security-Policy",
        "X-Content-Type-Options",
        "frame protection",
    }


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


# -- the demo application, as a user would run it ------------------------------------------------


@pytest.fixture
def demo_url(tmp_path: Path) -> Iterator[str]:
    if importlib.util.find_spec("sessionward.demo") is None:
        pytest.skip("the demo application (sessionward.demo) is not in this tree yet")
    port = free_port()
    env = {**os.environ, "SESSIONWARD_STORE": f"sqlite:///{tmp_path / 'demo.db'}"}
    process = subprocess.Popen(
        [sys.executable, "-c", "from sessionward.cli import main; main()", "demo", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/api/session/status", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    stderr = process.stderr.read().decode() if process.stderr else ""
                    pytest.fail(f"the demo did not start: {stderr[-2000:]}")
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)
        if process.stderr:
            process.stderr.close()


def test_the_demo_passes_the_audit(demo_url: str) -> None:
    result = CliRunner().invoke(
        main, ["audit", demo_url, "--username", "alice", "--password", "alice-demo-pass", "--json"]
    )
    assert "Traceback" not in result.output
    report = orjson.loads(result.stdout)
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    assert failed == []
    assert result.exit_code == 0
