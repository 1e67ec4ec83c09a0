"""The plain WSGI middleware, with no Flask: environ keys, lazy apps, commit failures."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from werkzeug.test import Client

from sessionward import ManualClock
from sessionward._sync.exchange import RequestSession
from sessionward._sync.manager import SessionManager
from sessionward._sync.stores import MemoryStore
from sessionward.core.config import CsrfPolicy
from sessionward.core.errors import StoreUnavailableError
from sessionward.core.records import Update
from sessionward.wsgi import SessionMiddleware, request_scope

from .support import cookie_header, plain_policy, set_cookie

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def counter(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
    """Count visits in the session; starts the response lazily, as a generator app may."""
    session = environ["sessionward.session"]
    assert isinstance(session, RequestSession)
    visits = session.get("visits", 0)
    assert isinstance(visits, int)
    session["visits"] = visits + 1
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield str(visits + 1).encode()


def wrapped(store: MemoryStore, clock: ManualClock, app: Any = counter, **options: Any) -> Client:
    manager = SessionManager(store, plain_policy(), clock=clock)
    return Client(SessionMiddleware(app, manager, **options))


def test_session_survives_across_requests_of_a_plain_wsgi_app(clock: ManualClock) -> None:
    web = wrapped(MemoryStore(), clock, csrf=CsrfPolicy())
    first = web.get("/")
    sid = set_cookie(first)
    assert sid
    assert first.text == "1"

    second = web.get("/", headers=cookie_header(sid))

    assert second.text == "2"
    assert set_cookie(second) is None  # same ID, nothing to set


class _FailingSaves(MemoryStore):
    def save(self, key: str, update: Update) -> bool:
        raise StoreUnavailableError("down for the test")


def test_a_commit_that_fails_replaces_the_response_with_503(clock: ManualClock) -> None:
    store = _FailingSaves()
    web = wrapped(store, clock)
    sid = set_cookie(web.get("/"))  # establish works; later saves fail
    assert sid

    response = web.get("/", headers=cookie_header(sid))

    assert response.status_code == 503
    assert response.json is not None
    assert response.json["error"] == "session_store_unavailable"
    assert response.headers["Retry-After"] == "1"


def test_security_headers_cover_the_middlewares_own_answers(clock: ManualClock) -> None:
    from sessionward.core.headers import SecurityHeadersPolicy

    web = wrapped(MemoryStore(), clock, security_headers=SecurityHeadersPolicy())

    refused = web.open("/", method="TRACE")

    assert refused.status_code == 405
    assert refused.headers["X-Frame-Options"] == "DENY"
    assert refused.headers["X-Content-Type-Options"] == "nosniff"


def test_request_scope_keeps_the_path_as_sent_and_the_client() -> None:
    environ = {
        "REQUEST_METHOD": "post",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/a/b",
        "RAW_URI": "/a%2fb?x=1",
        "REMOTE_ADDR": "203.0.113.9",
        "REMOTE_PORT": "5000",
        "HTTP_USER_AGENT": "ua",
        "CONTENT_TYPE": "text/plain",
        "wsgi.url_scheme": "https",
    }

    scope = request_scope(environ)

    assert (scope["method"], scope["path"], scope["raw_path"]) == ("POST", "/a/b", b"/a%2fb")
    assert scope["client"] == ("203.0.113.9", 5000)
    assert (b"user-agent", b"ua") in scope["headers"]
    assert (b"content-type", b"text/plain") in scope["headers"]


def test_body_iterable_is_closed(clock: ManualClock) -> None:
    closed: list[bool] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"ok"

        def close(self) -> None:
            closed.append(True)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        return Body()

    assert wrapped(MemoryStore(), clock, app=app).get("/", buffered=True).text == "ok"
    assert closed == [True]


class _DownAtLogin(MemoryStore):
    def establish(self, *args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailableError("down for the test")


def login_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Logs in without catching anything, as most apps do."""
    session = environ["sessionward.session"]
    assert isinstance(session, RequestSession)
    session.login("alice")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"signed in"]


def test_store_outage_during_a_verb_the_app_does_not_catch_gives_503_not_500(clock: ManualClock) -> None:
    response = wrapped(_DownAtLogin(), clock, app=login_app).post("/")

    assert response.status_code == 503
    assert response.json is not None
    assert response.json["error"] == "session_store_unavailable"
    assert "Set-Cookie" not in response.headers
