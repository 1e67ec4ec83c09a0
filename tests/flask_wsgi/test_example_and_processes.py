"""examples/flask_app.py driven in-process, and under gunicorn with several worker processes.

Multiple-login control (F11) must hold when the logins of one user land on different OS
processes at once: the workers share only the store (SQLite here), nothing in memory.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sessionward import ManualClock
from sessionward._sync.stores.sql import SqlStore
from sessionward.core.ids import storage_key

from .support import client, cookie_header, example_under_gunicorn, load_example, set_cookie

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
FORM = "application/x-www-form-urlencoded"


def test_example_login_flow_changes_the_id_and_logout_kills_it(clock: ManualClock) -> None:
    app = load_example().create_app({"SESSIONWARD_COOKIE_SECURE": False, "SESSIONWARD_TEST_CLOCK": clock})
    browser = client(app)
    first = browser.get("/")
    assert set_cookie(first) is None  # the login form makes no session…
    visitor = set_cookie(first, "sid-csrf")  # …its token rides in the pre-session cookie
    match = TOKEN.search(first.text)
    assert visitor
    assert match
    token = match.group(1)
    assert token == visitor

    wrong = browser.post(
        "/login",
        data=f"username=alice&password=nope&csrf_token={token}",
        headers=cookie_header(visitor, "sid-csrf"),
        content_type=FORM,
    )
    assert wrong.status_code == 401
    assert set_cookie(wrong) is None  # a failed login makes no session either
    right = browser.post(
        "/login",
        data=f"username=alice&password=alice-demo-pass&csrf_token={token}",
        headers=cookie_header(visitor, "sid-csrf"),
        content_type=FORM,
    )
    assert right.status_code == 303
    signed_in = set_cookie(right)
    assert signed_in

    page = browser.get("/", headers=cookie_header(signed_in))
    assert "Signed in as alice." in page.text
    relogin = browser.post(
        "/login",
        data=f"username=alice&password=alice-demo-pass&csrf_token={TOKEN.search(page.text).group(1)}",  # type: ignore[union-attr]
        headers=cookie_header(signed_in),
        content_type=FORM,
    )
    renewed = set_cookie(relogin)
    assert renewed
    assert renewed != signed_in
    assert "Signed in" not in browser.get("/", headers=cookie_header(signed_in)).text  # pre-login ID is dead
    signed_in = renewed
    page = browser.get("/", headers=cookie_header(signed_in))
    logout_token = TOKEN.search(page.text)
    assert logout_token
    out = browser.post(
        "/logout", data=f"csrf_token={logout_token.group(1)}", headers=cookie_header(signed_in), content_type=FORM
    )
    assert out.status_code == 303
    assert set_cookie(out) == ""
    assert "Signed in" not in browser.get("/", headers=cookie_header(signed_in)).text


@pytest.fixture
def gunicorn(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """The example under gunicorn, three workers, on a shared SQLite store; yields (URL, store URL)."""
    store_url = f"sqlite:///{tmp_path / 'sessions.db'}"
    SqlStore.from_url(store_url).setup()
    env = os.environ | {
        "SESSIONWARD_STORE": store_url,
        "SESSIONWARD_MAX_SESSIONS": "1",
        "SESSIONWARD_PREVENT_LOGIN": request.param,
        "SESSIONWARD_COOKIE_SECURE": "false",
    }
    with example_under_gunicorn(3, env) as url:
        yield url, store_url


def _prepare(url: str) -> tuple[httpx.Client, str]:
    browser = httpx.Client(base_url=url, timeout=10)
    match = TOKEN.search(browser.get("/").text)
    assert match
    return browser, match.group(1)


def _login(browser: httpx.Client, token: str) -> int:
    form = {"username": "alice", "password": "alice-demo-pass", "csrf_token": token}
    return browser.post("/login", data=form).status_code


@pytest.mark.parametrize("gunicorn", ["true"], indirect=True, ids=["first-wins"])
def test_first_wins_across_worker_processes_lets_exactly_one_login_in(gunicorn: tuple[str, str]) -> None:
    url, _ = gunicorn
    browsers = [_prepare(url) for _ in range(6)]
    start = threading.Barrier(len(browsers))
    outcomes: list[int] = []

    def race(browser: httpx.Client, token: str) -> None:
        start.wait()
        outcomes.append(_login(browser, token))

    threads = [threading.Thread(target=race, args=pair) for pair in browsers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for browser, _ in browsers:
        browser.close()

    assert sorted(outcomes) == [303] + [409] * 5


@pytest.mark.parametrize("gunicorn", ["false"], indirect=True, ids=["last-wins"])
def test_last_wins_across_worker_processes_displaces_the_older_logins(gunicorn: tuple[str, str]) -> None:
    url, store_url = gunicorn
    browsers = [_prepare(url) for _ in range(3)]
    for browser, token in browsers:
        assert _login(browser, token) == 303  # several requests: several workers serve them

    signed_in = ["Signed in as alice." in browser.get("/").text for browser, _ in browsers]
    cookies = [browser.cookies.get("sid") for browser, _ in browsers]
    for browser, _ in browsers:
        browser.close()

    assert signed_in == [False, False, True]
    store = SqlStore.from_url(store_url)
    try:
        assert [s.key for s in store.list_user("alice", time.time())] == [storage_key(cookies[2] or "")]
    finally:
        store.close()
