"""Events reach sync and async subscribers; a failing one never breaks the caller; the audit log is JSON lines."""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from sessionward.events import EventBus, EventName, JsonAuditLogger, SessionEvent

EVENT = SessionEvent(
    name=EventName.LOGIN,
    at=1.5,
    reason="change_id",
    handle="0123456789abcdef",
    user="alice",
    ip="192.0.2.1",
    user_agent="UA",
    path="/login",
)


async def test_sync_and_async_subscribers_both_receive() -> None:
    bus = EventBus()
    received: list[str] = []

    def sync_subscriber(event: SessionEvent) -> None:
        received.append("sync:" + event.name)

    async def async_subscriber(event: SessionEvent) -> None:
        received.append("async:" + event.name)

    bus.subscribe(sync_subscriber)
    bus.subscribe(async_subscriber)
    await bus.emit(EVENT)
    assert received == ["sync:login", "async:login"]


async def test_failing_subscriber_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    received: list[SessionEvent] = []

    def broken(event: SessionEvent) -> None:
        raise RuntimeError("subscriber bug")

    async def broken_async(event: SessionEvent) -> None:
        raise RuntimeError("async subscriber bug")

    bus.subscribe(broken)
    bus.subscribe(broken_async)
    bus.subscribe(received.append)
    with caplog.at_level(logging.ERROR, logger="sessionward"):
        await bus.emit(EVENT)
    assert received == [EVENT]
    assert "subscriber bug" in caplog.text


def test_audit_logger_writes_one_json_object_per_line() -> None:
    stream = io.StringIO()
    logger = JsonAuditLogger(stream)
    logger(EVENT)
    logger(SessionEvent(name=EventName.EXPIRED, at=2.0, reason="idle_timeout"))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first = orjson.loads(lines[0])
    assert first == {
        "time": 1.5,
        "event": "login",
        "reason": "change_id",
        "user": "alice",
        "session": "0123456789abcdef",
        "ip": "192.0.2.1",
        "user_agent": "UA",
        "path": "/login",
    }
    assert orjson.loads(lines[1])["reason"] == "idle_timeout"


def test_events_have_no_field_for_a_raw_id() -> None:
    fields = set(SessionEvent.__dataclass_fields__)
    assert not {"id", "session_id", "sid", "raw_id", "key"} & fields
