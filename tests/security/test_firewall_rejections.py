"""Path tricks and unsafe methods are refused before any store access (F5, StrictHttpFirewall)."""

from __future__ import annotations

import orjson
import pytest

from sessionward import FirewallPolicy, ManualClock
from sessionward.core.firewall import check_request
from sessionward.stores.memory import MemoryStore
from support.helpers import call_raw, make_app

REJECTED_PATHS = [
    (b"/a;b", "semicolon"),
    (b"/a%3bjsessionid=x", "semicolon"),
    (b"/a%3Bx", "semicolon"),
    (b"/a%2fb", "encoded_slash"),
    (b"/a%2Fb", "encoded_slash"),
    (b"/a\\b", "backslash"),
    (b"/a%5cb", "backslash"),
    (b"/a%25b", "encoded_percent"),
    (b"/a%2e%2e/b", "encoded_period"),
    (b"/a%2Eb", "encoded_period"),
    (b"//evil", "double_slash"),
    (b"/a//b", "double_slash"),
    (b"/a/./b", "dot_segment"),
    (b"/a/../b", "dot_segment"),
    (b"/..", "dot_segment"),
    (b"/a\x00b", "non_printable"),
    (b"/a\rb", "non_printable"),
    (b"/a\nb", "non_printable"),
    (b"/a\x7fb", "non_printable"),
    (b"/a b", "non_printable"),
    (b"/a%00b", "encoded_control"),
    (b"/a%0d%0aSet-Cookie:x", "encoded_control"),
]


@pytest.mark.parametrize(("path", "reason"), REJECTED_PATHS)
def test_path_smuggling_is_rejected(path: bytes, reason: str) -> None:
    rejection = check_request(FirewallPolicy(), "GET", path)
    assert rejection is not None
    assert (rejection.status, rejection.reason) == (400, reason)


@pytest.mark.parametrize("path", [b"/", b"/a/b.c", b"/api/sessions/0123abcd", b"/a%20b", b"/%E3%81%82", b"/a-b_c~d"])
def test_ordinary_paths_pass(path: bytes) -> None:
    assert check_request(FirewallPolicy(), "GET", path) is None


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "FOO"])
def test_unlisted_methods_get_405(method: str) -> None:
    rejection = check_request(FirewallPolicy(), method, b"/")
    assert rejection is not None
    assert rejection.status == 405


def test_rules_are_configurable() -> None:
    relaxed = FirewallPolicy(allow_semicolon=True, allow_double_slash=True)
    assert check_request(relaxed, "GET", b"/a;b") is None
    assert check_request(relaxed, "GET", b"/a//b") is None
    assert check_request(FirewallPolicy(enabled=False), "TRACE", b"/../x") is None


class ExplodingStore(MemoryStore):
    async def load(self, key: str, now: float) -> None:
        raise AssertionError("the firewall must refuse before the store is touched")


@pytest.mark.parametrize(
    ("method", "raw_path", "status"),
    [("GET", "/whoami;jsessionid=abc", 400), ("GET", "/a/../whoami", 400), ("TRACE", "/whoami", 405)],
)
async def test_firewall_answers_before_the_store(method: str, raw_path: str, status: int, clock: ManualClock) -> None:
    app, _ = make_app(ExplodingStore(), clock=clock)
    status_code, _, body = await call_raw(app, method, raw_path.encode(), [(b"cookie", b"sid=" + b"a" * 43)])
    assert status_code == status
    assert orjson.loads(body)["error"] == "request_rejected"
