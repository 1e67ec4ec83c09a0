"""Two ``Cookie`` headers that a WSGI server joined with a comma are still read as two (F4).

gunicorn and Werkzeug's server join a repeated header with ``,`` (Werkzeug's test client
with ``", "``), so a request with two ``Cookie`` headers reaches the middleware as one
``HTTP_COOKIE`` of ``"a=1,sid=XYZ"``. Read as one header, the session cookie hides in the
value of ``a``: the session was lost and its cookie cleared. The comma now ends a header,
as the spec's "several Cookie headers are read as one" asks; two different values of the
session cookie still fail closed, however they are joined, and names stay exact.
"""

from __future__ import annotations

import http.client
import io
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from flask import Flask
from werkzeug.test import Client

from sessionward import ManualClock
from sessionward._sync.exchange import RequestSession
from sessionward._sync.manager import SessionManager
from sessionward._sync.stores import MemoryStore
from sessionward.core.events import EventBus, EventName, SessionEvent
from sessionward.core.ids import generate_id
from sessionward.wsgi import SessionMiddleware

from .support import client, example_under_gunicorn, plain_policy, set_cookie

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def counter(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    session = environ["sessionward.session"]
    assert isinstance(session, RequestSession)
    visits = session.get("visits", 0)
    assert isinstance(visits, int)
    session["visits"] = visits + 1
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(visits + 1).encode()]


class Site:
    """The plain WSGI middleware around a visit counter, called with raw environs."""

    def __init__(self, clock: ManualClock) -> None:
        self.store = MemoryStore()
        self.events: list[SessionEvent] = []
        bus = EventBus()
        bus.subscribe(self.events.append)
        manager = SessionManager(self.store, plain_policy(), clock=clock, events=bus)
        self.app = SessionMiddleware(counter, manager)

    def invalid_reasons(self) -> list[str | None]:
        """The reasons of the ``invalid_session`` events so far."""
        return [event.reason for event in self.events if event.name is EventName.INVALID_SESSION]

    def new_session(self) -> str:
        """A live session ID, its counter at 1."""
        sid = set_cookie(Client(self.app).get("/"))
        assert sid
        return sid

    def get(self, http_cookie: str) -> tuple[int, list[tuple[str, str]], bytes]:
        """``GET /`` with ``HTTP_COOKIE`` exactly as a WSGI server would set it."""
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "PATH_INFO": "/",
            "RAW_URI": "/",
            "QUERY_STRING": "",
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_COOKIE": http_cookie,
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(),
        }
        started: list[tuple[str, list[tuple[str, str]]]] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> object:
            started.append((status, headers))
            return None

        body = b"".join(self.app(environ, start_response))  # type: ignore[arg-type]
        status, headers = started[0]
        return int(status[:3]), headers, body


def _set_cookies(headers: list[tuple[str, str]]) -> list[str]:
    return [value for name, value in headers if name.lower() == "set-cookie"]


KEPT = [
    "other=1, sid={sid}",  # the form (", " as Werkzeug's test client joins)
    "other=1,sid={sid}",  # gunicorn and Werkzeug's server join with a bare ","
    "a=1; b=2,sid={sid}; c=3",  # a browser header, then one more
    "sid={sid}, other=1",
    "sid={sid},sid={sid}",  # the same value twice is one session
    "sid={sid}, sid={sid}",
    "prefs=dark,compact; sid={sid}",  # a comma in another cookie's value changes nothing
    "other=1,\tsid={sid}",
]


@pytest.mark.parametrize("joined", KEPT)
def test_two_cookie_headers_joined_by_gunicorn_keep_the_session(joined: str, clock: ManualClock) -> None:
    site = Site(clock)
    sid = site.new_session()

    status, headers, body = site.get(joined.format(sid=sid))

    assert (status, body) == (200, b"2")
    assert _set_cookies(headers) == []  # same ID, nothing set, nothing cleared
    assert site.invalid_reasons() == []


def test_two_cookie_headers_through_werkzeugs_client_keep_the_session(clock: ManualClock) -> None:
    site = Site(clock)
    sid = site.new_session()
    response = Client(site.app, use_cookies=False).get("/", headers=[("Cookie", "other=1"), ("Cookie", f"sid={sid}")])
    assert response.text == "2"
    assert set_cookie(response) is None


CONFLICTS = [
    "sid={a}, sid={b}",
    "sid={a},sid={b}",
    "sid={b}, sid={a}",
    "other=1, sid={a}; x=2,sid={b}",
    # The planted value hides in another cookie's value: read as its own, it conflicts.
    "sid={a}; lang=en, sid={b}",
    "lang=en,sid={b}; sid={a}",
]


@pytest.mark.parametrize("planted", ["another-live-session", "unknown-id"])
@pytest.mark.parametrize("joined", CONFLICTS)
def test_two_different_session_cookies_joined_by_gunicorn_fail_closed(
    joined: str, planted: str, clock: ManualClock
) -> None:
    site = Site(clock)
    real = site.new_session()
    other = site.new_session() if planted == "another-live-session" else generate_id()

    status, headers, body = site.get(joined.format(a=real, b=other))

    assert site.invalid_reasons() == ["conflicting_cookies"]
    # Neither session was used: the request got a fresh one, and the real one's next
    # visit is its second.
    assert (status, body) == (200, b"1")
    fresh = [value.split(";", 1)[0] for value in _set_cookies(headers)]
    assert len(fresh) == 1
    assert fresh[0] not in (f"sid={real}", f"sid={other}")
    assert site.get(f"sid={real}")[2] == b"2"


@pytest.mark.parametrize("name", ["SID", "Sid", " sid2", "%73id", "xsid"])
def test_lookalike_names_after_a_comma_are_not_the_session_cookie(name: str, clock: ManualClock) -> None:
    site = Site(clock)
    sid = site.new_session()

    status, headers, body = site.get(f"other=1,{name}={sid}")

    assert (status, body) == (200, b"1")  # a new session: the lookalike was not read
    assert _set_cookies(headers)
    assert site.invalid_reasons() == []


def test_a_session_planted_in_another_cookies_value_is_never_signed_in_by_the_victim(app: Flask) -> None:
    """Fixation through a comma: the planted anonymous session never becomes the victim's login."""
    planted = set_cookie(client(app).post("/set", query_string={"cart": "1"}))  # the attacker's anonymous session
    assert planted
    tossed = f"lang=en,sid={planted}"  # e.g. from a sibling domain, as another cookie's value
    browser = client(app)

    login = browser.post("/login", headers={"Cookie": tossed})  # the victim signs in

    assert login.status_code == 200
    signed_in = set_cookie(login)
    assert signed_in
    assert signed_in != planted  # login changed the ID (F6)
    attacker = client(app).get("/whoami", headers={"Cookie": f"sid={planted}"})
    assert attacker.status_code == 200
    assert attacker.json is not None
    assert attacker.json["user"] is None  # the planted ID died at login, nobody signed in
    # The victim's browser now sends both; the planted one conflicts and fails closed.
    both = browser.get("/whoami", headers={"Cookie": f"sid={signed_in}; {tossed}"})
    assert both.json is not None
    assert both.json["user"] is None
    alone = browser.get("/whoami", headers={"Cookie": f"sid={signed_in}"})
    assert alone.json is not None
    assert alone.json["user"] == "alice"


# -- under a real gunicorn ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def gunicorn_url() -> Iterator[str]:
    """examples/flask_app.py under gunicorn (one worker, memory store); yields its URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}
    env["SESSIONWARD_COOKIE_SECURE"] = "false"
    with example_under_gunicorn(1, env) as url:
        yield url


def _signed_in(url: str) -> str:
    with httpx.Client(base_url=url, timeout=10) as browser:
        page = browser.get("/").text
        token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        form = {"username": "alice", "password": "alice-demo-pass", "csrf_token": token}
        assert browser.post("/login", data=form).status_code == 303
        sid = browser.cookies["sid"]
        assert "Signed in as alice." in browser.get("/").text
        return sid


def _raw_get(url: str, path: str, cookies: list[str]) -> tuple[int, list[str], str]:
    """``GET path`` with one ``Cookie`` header per entry of ``cookies``, sent as they are."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.putrequest("GET", path)
        for cookie in cookies:
            connection.putheader("Cookie", cookie)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.headers.get_all("Set-Cookie") or [], response.read().decode()
    finally:
        connection.close()


def test_two_cookie_headers_joined_by_gunicorn_keep_the_session_under_gunicorn(gunicorn_url: str) -> None:
    sid = _signed_in(gunicorn_url)

    status, set_cookies, page = _raw_get(gunicorn_url, "/", ["theme=dark", f"sid={sid}"])

    assert status == 200
    assert "Signed in as alice." in page
    assert not any(value.startswith("sid=") for value in set_cookies)


def test_two_different_session_cookies_fail_closed_under_gunicorn(gunicorn_url: str) -> None:
    sid = _signed_in(gunicorn_url)
    planted = _signed_in(gunicorn_url)

    status, _, page = _raw_get(gunicorn_url, "/", [f"sid={sid}", f"sid={planted}"])

    assert status == 200
    assert "Signed in as alice." not in page
    assert "Signed in as alice." in _raw_get(gunicorn_url, "/", [f"sid={sid}"])[2]


@pytest.mark.parametrize("encoded", ["%1b", "%07", "%7f", "%c2%9b", "%C2%85", "%e2%80%a8"])
def test_encoded_escape_character_in_path_is_refused_with_400_under_gunicorn(gunicorn_url: str, encoded: str) -> None:
    status, _, body = _raw_get(gunicorn_url, f"/dashboard{encoded}x", [])
    assert status == 400
    assert orjson.loads(body) == {"error": "request_rejected", "reason": "encoded_control"}
