"""A client cannot split or forge an audit line with a Unicode line break (F16).

The audit log is JSON lines, and its readers split it into events by lines, often with
``str.splitlines()``, which breaks on more than ``\\n``: also on VT, FF, the information
separators 0x1C-0x1E, NEL (0x85) and U+2028/U+2029. JSON escapes the C0 controls, but
NEL, U+2028 and U+2029 are legal raw in a JSON string and orjson writes them raw; a
User-Agent holding one would end the line early and let the rest pass for another event.
Every such character is written escaped, and the JSON still decodes to the exact text.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes

import httpx
import orjson
import pytest

from sessionward import EventBus, JsonAuditLogger, ManualClock
from sessionward._sync.manager import SessionManager as SyncSessionManager
from sessionward._sync.stores import MemoryStore as SyncMemoryStore
from sessionward.core.events import EventName, SessionEvent
from sessionward.stores.memory import MemoryStore
from sessionward.wsgi import SessionMiddleware as WsgiSessionMiddleware
from support.helpers import make_app, plain_http_policy

# Every code point str.splitlines() breaks on, computed rather than remembered.
LINE_BREAKS = "".join(chr(code) for code in range(sys.maxunicode + 1) if len(f"a{chr(code)}b".splitlines()) > 1)
FORGED = '", "event": "login", "user": "admin"}'


def test_the_line_breaks_are_the_ones_the_issue_names() -> None:
    assert LINE_BREAKS == "\n\x0b\x0c\r\x1c\x1d\x1e\x85\u2028\u2029"


@pytest.mark.parametrize("brk", list(LINE_BREAKS), ids=[f"U+{ord(c):04X}" for c in LINE_BREAKS])
def test_user_agent_with_unicode_line_breaks_stays_one_audit_line(brk: str) -> None:
    user_agent = f"Mozilla/5.0{brk}{FORGED}{brk}"
    event = SessionEvent(
        name=EventName.INVALID_SESSION,
        at=1.0,
        reason="unknown",
        user=f"al{brk}ice",
        ip="192.0.2.1",
        user_agent=user_agent,
        path=f"/a{brk}b",
    )
    stream = io.StringIO()
    logger = JsonAuditLogger(stream)
    logger(event)
    logger(event)

    lines = stream.getvalue().splitlines()

    assert len(lines) == 2
    for line in lines:
        for decode in (orjson.loads, json.loads):
            decoded = decode(line)
            assert decoded["user_agent"] == user_agent
            assert decoded["user"] == f"al{brk}ice"
            assert decoded["request_uri"] == f"/a{brk}b"
            assert decoded["event"] == "session_invalid:unknown"


def test_every_line_break_at_once_in_every_field_stays_one_line() -> None:
    text = "x".join(LINE_BREAKS)
    event = SessionEvent(
        name=EventName.LOGIN,
        at=2.0,
        reason=text,
        handle=text,
        user=text,
        ip=text,
        user_agent=text,
        path=text,
    )
    encoded = event.to_json()
    assert len(encoded.decode().splitlines()) == 1
    assert len(encoded.splitlines()) == 1  # bytes.splitlines: \n and \r only, for byte readers
    decoded = orjson.loads(encoded)
    assert decoded["event"] == "authn_login_success"
    assert {key: decoded[key] for key in ("reason", "user", "session", "source_ip", "user_agent", "request_uri")} == {
        "reason": text,
        "user": text,
        "session": text,
        "source_ip": text,
        "user_agent": text,
        "request_uri": text,
    }


def test_audit_file_with_line_breaks_reads_back_one_event_per_line(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    logger = JsonAuditLogger(str(log))
    agents = [f"UA{brk}{FORGED}" for brk in LINE_BREAKS]
    for agent in agents:
        logger(SessionEvent(name=EventName.CREATED, at=3.0, user_agent=agent))
    logger.close()

    lines = log.read_text(encoding="utf-8").splitlines()

    assert [orjson.loads(line)["user_agent"] for line in lines] == agents


async def test_user_agent_header_with_nel_stays_one_audit_line_through_the_middleware(clock: ManualClock) -> None:
    # A header's bytes are read as latin-1: a raw 0x85 in the User-Agent is NEL.
    stream = io.StringIO()
    bus = EventBus()
    bus.subscribe(JsonAuditLogger(stream))
    app, _ = make_app(MemoryStore(), clock=clock, events=bus)
    agent = b"Mozilla/5.0\x85" + FORGED.encode() + b"\x85"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        await client.post("/login", headers=[(b"user-agent", agent)])
        await client.get("/api/whoami", headers=[(b"user-agent", agent), (b"cookie", b"sid=" + b"a" * 43)])

    lines = stream.getvalue().splitlines()

    assert [orjson.loads(line)["event"] for line in lines] == [
        "session_created",
        "authn_login_success",
        "session_invalid:unknown",
    ]
    assert all(orjson.loads(line)["user_agent"] == agent.decode("latin-1") for line in lines)


@pytest.mark.parametrize("encoded", ["%c2%85", "%e2%80%a8", "%E2%80%A9"])
def test_refused_path_with_a_line_break_stays_one_audit_line(encoded: str, clock: ManualClock) -> None:
    # The firewall refuses the path, and its event logs the decoded path, NEL and all.
    stream = io.StringIO()
    bus = EventBus()
    bus.subscribe(JsonAuditLogger(stream))
    manager = SyncSessionManager(SyncMemoryStore(), plain_http_policy(), clock=clock, events=bus)
    raw = f"/a{encoded}{quote(FORGED)}"
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": unquote_to_bytes(raw).decode("latin-1"),
        "RAW_URI": raw,
        "REMOTE_ADDR": "192.0.2.1",
        "wsgi.input": io.BytesIO(),
    }
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> object:
        statuses.append(status)
        return None

    WsgiSessionMiddleware(lambda environ, start: [], manager)(environ, start_response)  # type: ignore[arg-type]

    lines = stream.getvalue().splitlines()
    assert statuses == ["400 Bad Request"]
    assert len(lines) == 1
    event = orjson.loads(lines[0])
    assert (event["event"], event["reason"]) == ("authz_fail", "encoded_control")
    assert event["request_uri"] == unquote_to_bytes(raw).decode()
