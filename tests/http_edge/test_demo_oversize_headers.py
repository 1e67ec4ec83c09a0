"""The demo server refuses oversize request heads (431 or 400) before the application sees them.

Against the real process (``python -m sessionward.demo``), through raw sockets, since an
HTTP client library would refuse to send such requests or fold their headers.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.browser_support import DemoServer, demo_server

REFUSED = (400, 431)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """The demo served by its own command, on a SQLite file of its own."""
    tmp: Path = tmp_path_factory.mktemp("demo-oversize")
    with demo_server(tmp, {}) as server:
        yield server


def _status(server: DemoServer, headers: bytes) -> int:
    """Send ``GET /api/session/status`` with ``headers`` (raw lines) and return the status code.

    The head is sent from a thread while this one reads: a server that refuses early
    answers and closes before the head is all sent, and the answer must still be read.
    """
    port = int(server.base_url.rsplit(":", 1)[1])
    head = b"GET /api/session/status HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"Connection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:

        def send() -> None:
            with contextlib.suppress(OSError):  # the server stopped reading: its answer says why
                connection.sendall(head)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        answer = b""
        while b"\r\n" not in answer:
            chunk = connection.recv(4096)
            if not chunk:
                break
            answer += chunk
        sender.join(timeout=10)
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 "), f"no HTTP answer: {answer[:80]!r}"
    return int(status_line.split()[1])


def test_a_1_mb_cookie_header_is_refused_by_the_demo_server(demo: DemoServer) -> None:
    assert _status(demo, b"Cookie: a=" + b"x" * 1_000_000 + b"\r\n") in REFUSED
    assert _status(demo, b"User-Agent: pytest\r\n") == 200


@pytest.mark.parametrize(
    "field",
    [
        pytest.param(b"X-Field-%d: v\r\n", id="20000-named-fields"),  # ~330 KB: arrives in several reads
        pytest.param(b"X-%d:\r\n", id="20000-empty-fields"),  # ~150 KB: can arrive in one read
    ],
)
def test_20000_header_fields_are_refused_by_the_demo_server(demo: DemoServer, field: bytes) -> None:
    assert _status(demo, b"".join(field % index for index in range(20_000))) in REFUSED
    assert _status(demo, b"User-Agent: pytest\r\n") == 200


def test_101_small_header_fields_are_refused_by_the_demo_server(demo: DemoServer) -> None:
    # Under every size limit; only a bound on the number of fields refuses it.
    assert _status(demo, b"".join(b"X-%d: v\r\n" % index for index in range(101))) == 431


def test_a_body_arriving_with_its_head_does_not_count_against_the_head_limit(demo: DemoServer) -> None:
    # 40 KB of JSON right behind the head, in one send: over the 32 KiB head limit together, not alone.
    port = int(demo.base_url.rsplit(":", 1)[1])
    body = b'{"username": "alice", "password": "' + b"x" * 40_000 + b'"}'
    head = (
        b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Origin: " + demo.base_url.encode() + b"\r\nSec-Fetch-Site: same-origin\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head + body)
        answer = b""
        while b"\r\n" not in answer:
            chunk = connection.recv(4096)
            if not chunk:
                break
            answer += chunk
    # The application answered (a 40 KB password is not one): not the server's refusal of the head.
    assert not answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b"Invalid HTTP request" not in answer
    assert b"content-type: application/json" in answer.lower()
