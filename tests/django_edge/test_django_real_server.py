"""The Django app under a real WSGI server (wsgiref in a thread), over real HTTP, on a SQLite store."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from django.core.wsgi import get_wsgi_application  # type: ignore[import-untyped]
from django.test import override_settings  # type: ignore[import-untyped]
from django_support import make_user

from sessionward._sync.stores import open_store
from sessionward.core import ids
from sessionward.core.records import Tombstone
from sessionward.testing import plain_http_policy


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        del format, args


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """The test project served by wsgiref on a free port, its sessions in a SQLite file."""
    store = open_store(f"sqlite:///{tmp_path}/sessions.db")
    store.setup()
    with override_settings(SESSIONWARD_STORE=store, SESSIONWARD_POLICY=plain_http_policy()):
        httpd: WSGIServer = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=_QuietHandler)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield "127.0.0.1", httpd.server_port
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join(5)
            store.close()


def request(
    address: tuple[str, int], method: str, target: str, cookies: dict[str, str] | None = None, body: str | None = None
) -> tuple[int, dict[str, list[str]], bytes]:
    """One request on a fresh connection: the target is sent exactly as written.

    The cookies it is given are sent, and those the response sets are put in them (a
    browser, roughly); a form body is sent with ``cookies``' CSRF token, as Django wants.
    """
    cookies = {} if cookies is None else cookies
    connection = http.client.HTTPConnection(*address, timeout=10)
    headers = {}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        headers["X-CSRFToken"] = cookies.get("csrftoken", "")
    if cookies:
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        found: dict[str, list[str]] = {}
        for name, value in response.getheaders():
            found.setdefault(name.lower(), []).append(value)
        data = response.read()
    finally:
        connection.close()
    for line in found.get("set-cookie", []):
        name, _, value = line.split(";", 1)[0].partition("=")
        if value:
            cookies[name] = value
        else:
            cookies.pop(name, None)
    return response.status, found, data


def test_sign_in_session_and_sign_out_over_real_http(server: tuple[str, int]) -> None:
    make_user()
    browser: dict[str, str] = {}
    request(server, "GET", "/csrf", browser)  # Django's CSRF cookie, before the form is posted

    status, _, _ = request(server, "POST", "/login", browser, body="username=alice&password=correct+horse")
    sid = browser.get("sid")
    assert status == 200
    assert sid is not None
    _, headers, body = request(server, "GET", "/whoami", browser)
    assert b'"user": "alice"' in body
    assert "Cookie" in headers["vary"][0]

    status, _, _ = request(server, "POST", "/logout", browser, body="")
    assert status == 200
    assert "sid" not in browser
    status, _, body = request(server, "GET", "/api/me", {"sid": sid})
    assert status == 401
    assert b"logged_out" in body
    assert isinstance(open_store_entry(sid), Tombstone)


def open_store_entry(sid: str) -> object:
    from sessionward.django.apps import get_manager

    manager = get_manager()
    return manager.store.load(ids.storage_key(sid), manager.clock())


def test_the_firewall_refuses_a_raw_traversal_before_django_routes_it(server: tuple[str, int]) -> None:
    status, headers, body = request(server, "GET", "/x/%2e%2e/admin")

    assert status == 400
    assert b'"request_rejected"' in body
    assert headers["cache-control"] == ["no-store"]
