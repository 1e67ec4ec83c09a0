"""The WSGI side of the control-character rules: every non-printable character is refused (F5).

A WSGI server hands the path over in one of three ways, and each is checked: gunicorn's
``RAW_URI``, the ``REQUEST_URI`` of uWSGI and mod_wsgi (both still percent-encoded), or
only ``PATH_INFO`` (decoded, its bytes as latin-1), which the middleware re-encodes.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

import orjson
import pytest

from sessionward import ManualClock
from sessionward._sync.manager import SessionManager
from sessionward._sync.stores import MemoryStore
from sessionward.wsgi import SessionMiddleware
from support.control_characters import ENCODED_CONTROLS, HALF_ENCODED, ORDINARY, RAW_CONTROLS, REPORTED, hex_ids

from .support import client, make_app, plain_policy

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


class ExplodingStore(MemoryStore):
    def load(self, key: str, now: float) -> None:
        raise AssertionError("the firewall must refuse before the store is touched")


def reached(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"reached the app"]


def call(environ_changes: dict[str, Any], clock: ManualClock, store: MemoryStore | None = None) -> tuple[int, bytes]:
    """Call the plain WSGI middleware with a raw environ, as a server would build it."""
    middleware = SessionMiddleware(reached, SessionManager(store or ExplodingStore(), plain_policy(), clock=clock))
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_COOKIE": "sid=" + "a" * 43,
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        **environ_changes,
    }
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> object:
        statuses.append(status)
        return None

    body = b"".join(middleware(environ, start_response))  # type: ignore[arg-type]
    return int(statuses[0][:3]), body


def server_environ(raw_path: bytes, how: str) -> dict[str, Any]:
    """The environ keys a server of kind ``how`` sets for a request target of ``raw_path``."""
    path_info = unquote_to_bytes(raw_path).decode("latin-1")  # PEP 3333: bytes as latin-1
    raw = raw_path.decode("latin-1")
    if how == "gunicorn":
        return {"PATH_INFO": path_info, "RAW_URI": raw + "?q=1"}
    if how == "uwsgi":
        return {"PATH_INFO": path_info, "REQUEST_URI": raw}
    return {"PATH_INFO": path_info}  # a server that keeps no raw target


SERVERS = ["gunicorn", "uwsgi", "path-info-only"]
REFUSED = {"error": "request_rejected", "reason": "encoded_control"}


@pytest.mark.parametrize("how", SERVERS)
@pytest.mark.parametrize("encoded", ENCODED_CONTROLS)
def test_encoded_escape_character_in_path_is_refused_with_400(encoded: str, how: str, clock: ManualClock) -> None:
    status, body = call(server_environ(f"/dashboard{encoded}x".encode(), how), clock)
    assert status == 400
    assert orjson.loads(body) == REFUSED


@pytest.mark.parametrize("how", SERVERS)
@pytest.mark.parametrize("mixed", HALF_ENCODED, ids=hex_ids(HALF_ENCODED))
def test_half_encoded_control_character_in_path_is_refused_with_400(mixed: bytes, how: str, clock: ManualClock) -> None:
    status, body = call(server_environ(b"/dashboard" + mixed + b"x", how), clock)
    assert status == 400
    assert orjson.loads(body) == REFUSED


@pytest.mark.parametrize("how", SERVERS)
@pytest.mark.parametrize("raw", RAW_CONTROLS, ids=hex_ids(RAW_CONTROLS))
def test_raw_control_character_in_path_is_refused_with_400(raw: bytes, how: str, clock: ManualClock) -> None:
    status, body = call(server_environ(b"/dashboard" + raw + b"x", how), clock)
    assert status == 400
    # Sent raw, it is "non_printable"; a server that keeps only PATH_INFO loses the
    # difference, and the re-encoded path is refused as "encoded_control".
    reason = "encoded_control" if how == "path-info-only" else "non_printable"
    assert orjson.loads(body) == {"error": "request_rejected", "reason": reason}


@pytest.mark.parametrize("how", SERVERS)
@pytest.mark.parametrize("path", ORDINARY, ids=hex_ids(ORDINARY))
def test_ordinary_non_ascii_paths_reach_the_wsgi_app(path: bytes, how: str, clock: ManualClock) -> None:
    status, body = call(server_environ(path, how), clock, store=MemoryStore())
    assert (status, body) == (404, b"reached the app")


@pytest.mark.parametrize("encoded", [*REPORTED, "%1B", "%C2%9B", "%e2%80%a8", "%E2%80%A9"])
def test_encoded_escape_character_in_path_is_refused_with_400_by_flask(encoded: str, clock: ManualClock) -> None:
    app = make_app(MemoryStore(), clock)
    response = client(app).get(f"/dashboard{encoded}x")
    assert response.status_code == 400
    assert response.json == REFUSED
