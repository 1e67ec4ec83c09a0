"""Throttling's events carry the request they came from, like every other audit event."""

from __future__ import annotations

from sessionward import ManualClock, SessionPolicy
from sessionward.core.engine import ClientInfo
from sessionward.core.errors import LoginThrottledError
from sessionward.core.events import EventBus, EventName, SessionEvent
from sessionward.io.manager import SessionManager
from sessionward.stores import MemoryStore


async def test_failed_and_throttled_sign_in_events_name_the_method_and_path() -> None:
    heard: list[SessionEvent] = []
    events = EventBus(log=False)
    events.subscribe(heard.append)
    manager = SessionManager(MemoryStore(), SessionPolicy(), clock=ManualClock(1_700_000_000.0), events=events)
    throttle = manager.login_throttle.for_client(ClientInfo(ip="203.0.113.9"), "/api/login", "POST")

    throttled = False
    for _ in range(10):
        try:
            await throttle.check("alice")
        except LoginThrottledError:
            throttled = True
            continue
        await throttle.failed("alice")

    assert throttled
    names = {event.name for event in heard}
    assert {EventName.LOGIN_FAILED, EventName.LOGIN_THROTTLED} <= names
    assert all((event.method, event.path) == ("POST", "/api/login") for event in heard)
