"""Events reach sync and async subscribers; a failing one never breaks the caller; the audit log is JSON lines."""

from __future__ import annotations

import io
import logging
import socket
from collections.abc import Iterator

import orjson
import pytest

from sessionward.core.errors import ConfigError
from sessionward.core.events import (
    EventBus,
    EventName,
    JsonAuditLogger,
    SessionEvent,
    audit_level,
    iso_time,
    vocabulary_name,
)

EVENT = SessionEvent(
    name=EventName.LOGIN,
    at=1.5,
    reason="change_id",
    handle="0123456789abcdef",
    user="alice",
    ip="192.0.2.1",
    user_agent="UA",
    path="/login",
    method="POST",
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
        "datetime": "1970-01-01T00:00:01.500Z",
        "appid": "sessionward",
        "event": "authn_login_success",
        "level": "INFO",
        "description": "A user logged in",
        "reason": "change_id",
        "user": "alice",
        "session": "0123456789abcdef",
        "source_ip": "192.0.2.1",
        "user_agent": "UA",
        "request_method": "POST",
        "request_uri": "/login",
        "host": socket.gethostname(),
        "time": "1970-01-01T00:00:01.500Z",  # the first format's names, kept for its readers
        "ip": "192.0.2.1",
    }
    second = orjson.loads(lines[1])
    assert (second["event"], second["reason"]) == ("session_expired:idle_timeout", "idle_timeout")


def test_events_have_no_field_for_a_raw_id() -> None:
    fields = set(SessionEvent.__dataclass_fields__)
    assert not {"id", "session_id", "sid", "raw_id", "key"} & fields


@pytest.mark.parametrize(
    ("name", "reason", "vocabulary", "level"),
    [
        (EventName.CREATED, None, "session_created", "INFO"),
        (EventName.LOGIN, "change_id", "authn_login_success", "INFO"),
        (EventName.ROTATED, "renewal", "session_renewed", "INFO"),
        (EventName.EXPIRED, "idle_timeout", "session_expired:idle_timeout", "INFO"),
        (EventName.EXPIRED, "absolute_timeout", "session_expired:absolute_timeout", "INFO"),
        (EventName.LOGOUT, "logged_out", "session_expired:logout", "INFO"),
        (EventName.REVOKED, "password_changed", "session_expired:revoked", "INFO"),
        (EventName.DISPLACED, "displaced", "session_expired:displaced", "WARN"),
        (EventName.INVALID_SESSION, "logged_out", "session_use_after_expire", "WARN"),
        (EventName.INVALID_SESSION, "idle_timeout", "session_use_after_expire", "WARN"),
        (EventName.INVALID_SESSION, "unknown", "session_invalid:unknown", "WARN"),
        (EventName.LOGIN_REFUSED, "max_sessions", "authn_login_fail", "WARN"),
        (EventName.LOGIN_FAILED, "account", "authn_login_fail", "WARN"),
        (EventName.LOGIN_THROTTLED, "account", "authn_login_lock", "WARN"),
        (EventName.CSRF_REFUSED, "origin_mismatch", "authz_fail", "WARN"),
        (EventName.FIREWALL_REFUSED, "encoded_control", "authz_fail", "WARN"),
        (EventName.SESSION_BUDGET_EXCEEDED, "skip", "excess_rate_limit_exceeded", "WARN"),
        (EventName.STORE_UNAVAILABLE, "store_unavailable", "session_store_unavailable", "ERROR"),
    ],
)
def test_audit_line_names_the_event_in_the_owasp_logging_vocabulary(
    name: EventName, reason: str | None, vocabulary: str, level: str
) -> None:
    event = SessionEvent(name=name, at=0.0, reason=reason)
    assert (vocabulary_name(event), audit_level(event)) == (vocabulary, level)
    line = orjson.loads(event.to_json())
    assert (line["event"], line["level"], line["reason"]) == (vocabulary, level, reason)


def test_every_event_member_has_a_vocabulary_word_of_its_own_kind() -> None:
    for name in EventName:
        word = vocabulary_name(SessionEvent(name=name, at=0.0, reason="r"))
        assert word.split(":")[0].split("_")[0] in {"session", "authn", "authz", "excess"}, (name, word)


def test_a_hostile_reason_cannot_break_the_vocabulary_name() -> None:
    event = SessionEvent(name=EventName.EXPIRED, at=0.0, reason='Idle"\n{"event": "x"}' + "z" * 100)
    assert vocabulary_name(event) == "session_expired:idle____event____x__" + "z" * 44


def test_audit_time_is_iso_8601_utc_with_milliseconds() -> None:
    assert iso_time(1796392985.1234) == "2026-12-04T14:03:05.123Z"
    assert iso_time(1796392985.9999) == "2026-12-04T14:03:06.000Z"


def test_app_id_comes_from_its_setting_and_a_bad_one_stops_start_up() -> None:
    bus = EventBus(environ={"SESSIONWARD_APP_ID": "shop-eu"})
    stream = io.StringIO()
    bus.subscribe(JsonAuditLogger(stream, app_id=bus.app_id))
    bus.emit_sync(EVENT)
    assert orjson.loads(stream.getvalue())["appid"] == "shop-eu"
    with pytest.raises(ConfigError, match=r"SESSIONWARD_APP_ID.*printable ASCII"):
        EventBus(environ={"SESSIONWARD_APP_ID": "shop\nforged"})


@pytest.fixture
def audit_records() -> Iterator[list[logging.LogRecord]]:
    """Records of the ``sessionward.audit`` logger, at INFO, through a handler of the test's own."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    audit = logging.getLogger("sessionward.audit")
    level = audit.level
    audit.addHandler(handler)
    audit.setLevel(logging.INFO)
    try:
        yield records
    finally:
        audit.removeHandler(handler)
        audit.setLevel(level)


async def test_events_reach_the_logging_module_with_the_event_attached(audit_records: list[logging.LogRecord]) -> None:
    await EventBus().emit(EVENT)
    EventBus().emit_sync(SessionEvent(name=EventName.CSRF_REFUSED, at=2.0, reason="origin_mismatch"))
    assert [(r.levelname, r.audit_event) for r in audit_records] == [  # type: ignore[attr-defined]
        ("INFO", "authn_login_success"),
        ("WARNING", "authz_fail"),
    ]
    assert audit_records[0].session_event is EVENT  # type: ignore[attr-defined]
    # The message is the audit line itself, so a plain handler prints it safely.
    assert orjson.loads(audit_records[0].getMessage())["session"] == EVENT.handle


def test_json_audit_logger_is_a_logging_handler_writing_the_same_lines(
    audit_records: list[logging.LogRecord],
) -> None:
    as_subscriber, as_handler = io.StringIO(), io.StringIO()
    JsonAuditLogger(as_subscriber)(EVENT)
    handler = JsonAuditLogger(as_handler)
    logging.getLogger("sessionward.audit").addHandler(handler)
    try:
        EventBus().emit_sync(EVENT)
        logging.getLogger("sessionward.audit").info("a record without an event\nforged")
    finally:
        logging.getLogger("sessionward.audit").removeHandler(handler)
    first, other = as_handler.getvalue().splitlines()
    assert first == as_subscriber.getvalue().rstrip("\n")
    assert orjson.loads(other)["description"] == "a record without an event\nforged"


def test_a_forwarding_bus_does_not_log_the_event_twice(audit_records: list[logging.LogRecord]) -> None:
    shared = EventBus()
    own = EventBus(log=False)
    own.subscribe(shared.emit_sync)
    own.emit_sync(EVENT)
    assert len(audit_records) == 1


def test_a_bus_reports_no_listener_when_nobody_subscribed_and_the_audit_logger_is_off() -> None:
    audit = logging.getLogger("sessionward.audit")
    level = audit.level
    audit.setLevel(logging.CRITICAL)
    try:
        assert not EventBus().has_subscribers
    finally:
        audit.setLevel(level)
    assert not EventBus(log=False).has_subscribers


@pytest.mark.parametrize("bad", ["path", "app_id"])
def test_an_audit_logger_that_fails_to_start_leaves_no_half_built_handler_for_logging_shutdown(
    bad: str, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ``logging`` closes every handler it ever registered (at exit, and whenever
    # ``dictConfig`` runs, e.g. when uvicorn starts). A handler registered before its
    # constructor failed used to crash that close with AttributeError. The traceback is kept
    # (as pytest keeps a failed test's) so the half-built handler stays alive until then.
    failure: pytest.ExceptionInfo[Exception]
    if bad == "app_id":
        monkeypatch.setenv("SESSIONWARD_APP_ID", "shop\nforged")
        with pytest.raises(ConfigError) as failure:
            JsonAuditLogger(io.StringIO())
    else:
        with pytest.raises(FileNotFoundError) as failure:
            JsonAuditLogger(f"{tmp_path}/no/such/dir/audit.jsonl")
    logging.shutdown(logging._handlerList[:])  # type: ignore[attr-defined]  # what dictConfig does
    assert failure.traceback
