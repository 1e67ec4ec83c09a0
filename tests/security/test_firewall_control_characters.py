"""Every non-printable character in a path is refused with 400, raw or percent-encoded (F5).

A control character that reaches the application or its logs can split a log line (NEL,
U+2028), drive a terminal (ESC), or hide text (BS, DEL). The firewall refuses every C0
control (%00-%1f), DEL (%7f), every C1 control as UTF-8 (%c2%80-%c2%9f) and the Unicode
line and paragraph separators (%e2%80%a8, %e2%80%a9), whatever the case of the hex digits,
sent raw or encoded or half of each; ordinary non-ASCII text (``é``, ``ą``, ``…``) passes.
These are the ASGI side and the pure rules; the WSGI and Flask side is in
``tests/flask_wsgi/test_wsgi_firewall_control_characters.py``.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import orjson
import pytest

from sessionward import FirewallPolicy, ManualClock
from sessionward.core.firewall import check_request
from sessionward.stores.memory import MemoryStore
from support.control_characters import ENCODED_CONTROLS, HALF_ENCODED, ORDINARY, RAW_CONTROLS, hex_ids
from support.helpers import call_raw, make_app


@pytest.mark.parametrize("encoded", ENCODED_CONTROLS)
def test_encoded_control_character_is_refused_by_the_rules(encoded: str) -> None:
    rejection = check_request(FirewallPolicy(), "GET", f"/dashboard{encoded}x".encode())
    assert rejection is not None
    assert (rejection.status, rejection.reason) == (400, "encoded_control")


@pytest.mark.parametrize("mixed", HALF_ENCODED, ids=hex_ids(HALF_ENCODED))
def test_half_encoded_control_character_is_refused(mixed: bytes) -> None:
    rejection = check_request(FirewallPolicy(), "GET", b"/dashboard" + mixed + b"x")
    assert rejection is not None
    assert (rejection.status, rejection.reason) == (400, "encoded_control")


@pytest.mark.parametrize("raw", RAW_CONTROLS, ids=hex_ids(RAW_CONTROLS))
def test_raw_control_character_is_refused_by_the_rules(raw: bytes) -> None:
    rejection = check_request(FirewallPolicy(), "GET", b"/dashboard" + raw + b"x")
    assert rejection is not None
    assert (rejection.status, rejection.reason) == (400, "non_printable")


@pytest.mark.parametrize("path", ORDINARY, ids=hex_ids(ORDINARY))
def test_ordinary_non_ascii_paths_still_pass(path: bytes) -> None:
    assert check_request(FirewallPolicy(), "GET", path) is None


def test_relaxed_rules_never_let_a_control_through() -> None:
    relaxed = FirewallPolicy(
        allow_semicolon=True,
        allow_encoded_slash=True,
        allow_backslash=True,
        allow_encoded_percent=True,
        allow_encoded_period=True,
        allow_double_slash=True,
    )
    for encoded in ENCODED_CONTROLS:
        rejection = check_request(relaxed, "GET", f"/a{encoded}".encode())
        assert rejection is not None, encoded
        assert rejection.reason == "encoded_control"


class ExplodingStore(MemoryStore):
    async def load(self, key: str, now: float) -> None:
        raise AssertionError("the firewall must refuse before the store is touched")


@pytest.mark.parametrize("encoded", ENCODED_CONTROLS)
async def test_encoded_escape_character_in_path_is_refused_with_400(encoded: str, clock: ManualClock) -> None:
    app, _ = make_app(ExplodingStore(), clock=clock)
    cookie = [(b"cookie", b"sid=" + b"a" * 43)]
    status, _, body = await call_raw(app, "GET", f"/dashboard{encoded}x".encode(), cookie)
    assert status == 400
    assert orjson.loads(body) == {"error": "request_rejected", "reason": "encoded_control"}


@pytest.mark.parametrize("raw", RAW_CONTROLS, ids=hex_ids(RAW_CONTROLS))
async def test_raw_control_character_in_path_is_refused_with_400(raw: bytes, clock: ManualClock) -> None:
    app, _ = make_app(ExplodingStore(), clock=clock)
    status, _, body = await call_raw(app, "GET", b"/dashboard" + raw + b"x")
    assert status == 400
    assert orjson.loads(body) == {"error": "request_rejected", "reason": "non_printable"}


@pytest.mark.parametrize(
    "character", ["\x1b", "\x85", "\x9b", "\u2028", "\u2029"], ids=["esc", "nel", "csi", "ls", "ps"]
)
async def test_control_character_in_a_decoded_path_without_raw_path_is_refused(
    character: str, clock: ManualClock
) -> None:
    # A server that gives no raw_path: the middleware checks the decoded path, as UTF-8.
    app, _ = make_app(ExplodingStore(), clock=clock)
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"/dashboard{character}x",
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 400
    assert orjson.loads(sent[1]["body"]) == {"error": "request_rejected", "reason": "non_printable"}


@pytest.mark.parametrize("path", ORDINARY, ids=hex_ids(ORDINARY))
async def test_ordinary_non_ascii_paths_reach_the_app(path: bytes, clock: ManualClock) -> None:
    app, _ = make_app(MemoryStore(), clock=clock)
    status, _, _ = await call_raw(app, "GET", path)
    assert status == 404  # past the firewall: the test app has no such route
