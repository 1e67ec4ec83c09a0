"""A sign-in after failures is reported: ``authn_login_successafterfail`` with its ``retries``.

The count comes from the account's counter as ``check`` read it when it counted the
attempt, before ``succeeded`` resets it: no store call is added. The event accompanies
``authn_login_success`` (the session's login), so whatever counts successes keeps
counting every one. Each test runs on each store kind of ``conftest.THROTTLE_BACKENDS``
(ASGI) or on the generated sync stores (Flask), with a ManualClock.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask import Flask, jsonify, request

from sessionward import ManualClock, SessionPolicy
from sessionward._sync.stores import MemoryStore as SyncMemoryStore
from sessionward._sync.stores.base import SessionStore as SyncSessionStore
from sessionward._sync.stores.sql import SqlStore as SyncSqlStore
from sessionward.core.config import CookiePolicy, LoginThrottlePolicy
from sessionward.core.engine import ClientInfo
from sessionward.core.events import EventBus, EventName, SessionEvent
from sessionward.flask import SessionWard, current_session
from sessionward.io.manager import SessionManager
from sessionward.stores import MemoryStore
from sessionward.stores.base import SessionStore
from support.helpers import Recorder
from throttle.support import PASSWORDS, PasswordBook, attempt, browser, throttled_app

RIGHT = PASSWORDS["alice"]


def after_failures(recorder: Recorder) -> list[SessionEvent]:
    return [event for event in recorder.events if event.name is EventName.LOGIN_AFTER_FAILURES]


async def test_authn_login_successafterfail_reports_the_failures_before_a_success(
    throttle_store: SessionStore, clock: ManualClock
) -> None:
    app, _, recorder = throttled_app(throttle_store, clock)
    async with browser(app, "198.51.100.7", {"user-agent": "typo-prone/1.0"}) as user:
        for i in range(3):
            assert (await attempt(user, "alice", f"typo-{i}")).status_code == 401
        before = len(recorder.events)
        assert (await attempt(user, "alice", RIGHT)).status_code == 200
    # Beside the session's own events, not instead of them: every success is still one.
    assert recorder.names()[before:] == ["login_after_failures", "created", "login"]
    (event,) = after_failures(recorder)
    assert (event.user, event.retries, event.ip, event.user_agent) == ("alice", 3, "198.51.100.7", "typo-prone/1.0")
    assert (event.method, event.path, event.handle) == ("POST", "/login", None)
    line = orjson.loads(event.to_json())
    assert (line["event"], line["level"], line["user"], line["retries"]) == (
        "authn_login_successafterfail",
        "INFO",
        "alice",
        3,
    )

    # The success reset the count: the next success, from anywhere, is a plain one.
    async with browser(app, "192.0.2.44") as elsewhere:
        assert (await attempt(elsewhere, "alice", RIGHT)).status_code == 200
    assert len(after_failures(recorder)) == 1
    assert Counter(recorder.names())["login"] == 2


async def test_authn_login_successafterfail_counts_held_back_attempts_too(
    throttle_store: SessionStore, clock: ManualClock
) -> None:
    app, book, recorder = throttled_app(throttle_store, clock)
    async with browser(app) as attacker:
        statuses = [(await attempt(attacker, "alice", f"guess-{i}")).status_code for i in range(8)]
        assert statuses == [401] * 5 + [429] * 3
        refused = await attempt(attacker, "alice", RIGHT)  # inside the delay: held back too
        assert refused.status_code == 429
        clock.advance(int(refused.headers["retry-after"]))
        assert (await attempt(attacker, "alice", RIGHT)).status_code == 200
    assert book.checked == 6
    (event,) = after_failures(recorder)
    # 5 wrong passwords checked, 3 wrong ones and the right one held back.
    assert event.retries == 9
    assert recorder.names()[-3:] == ["login_after_failures", "created", "login"]


async def test_authn_login_successafterfail_is_not_emitted_without_earlier_attempts_or_account_counts(
    clock: ManualClock,
) -> None:
    app, _, recorder = throttled_app(MemoryStore(), clock)
    async with browser(app) as user:
        assert (await attempt(user, "alice", RIGHT)).status_code == 200
    # Another account's failures are not alice's.
    async with browser(app, "192.0.2.8") as other:
        assert (await attempt(other, "bob", "wrong")).status_code == 401
        assert (await attempt(other, "alice", RIGHT)).status_code == 200
    assert after_failures(recorder) == []
    assert Counter(recorder.names())["login"] == 2

    # Accounts not counted (max_failures 0): the number of failures is not known.
    uncounted, _, heard = throttled_app(MemoryStore(), clock, LoginThrottlePolicy(max_failures=0))
    async with browser(uncounted) as user:
        for i in range(3):
            assert (await attempt(user, "alice", f"typo-{i}")).status_code == 401
        assert (await attempt(user, "alice", RIGHT)).status_code == 200
    assert after_failures(heard) == []
    assert Counter(heard.names())["login"] == 1


async def test_authn_login_successafterfail_costs_no_store_call(
    throttle_store: SessionStore, clock: ManualClock
) -> None:
    app, _, recorder = throttled_app(throttle_store, clock)
    calls: list[str] = []
    app.manager.store_observers.append(lambda seconds, outcome: calls.append(outcome))

    async def store_calls_of_a_success(username: str) -> int:
        async with browser(app, "198.51.100.9") as user:
            calls.clear()
            assert (await attempt(user, username, PASSWORDS[username])).status_code == 200
            return len(calls)

    plain = await store_calls_of_a_success("bob")
    async with browser(app, "198.51.100.9") as user:
        for i in range(3):
            assert (await attempt(user, "alice", f"typo-{i}")).status_code == 401
    after_fail = await store_calls_of_a_success("alice")
    assert [event.retries for event in after_failures(recorder)] == [3]
    assert after_fail == plain


async def test_authn_login_successafterfail_through_the_throttle_itself() -> None:
    heard: list[SessionEvent] = []
    events = EventBus(log=False)
    events.subscribe(heard.append)
    manager = SessionManager(MemoryStore(), SessionPolicy(), clock=ManualClock(1_700_000_000.0), events=events)
    throttle = manager.login_throttle
    client = ClientInfo(ip="203.0.113.9", user_agent="ua")

    # check() says what it counted before this attempt; succeeded() reports it.
    assert await throttle.check("alice", client) == 0
    await throttle.failed("alice", client)
    assert await throttle.check("Alice", client) == 1  # names differing in case share a count
    earlier = await throttle.check("alice", client, path="/api/login", method="POST")
    assert earlier == 2
    await throttle.succeeded("alice", client, failures=earlier, path="/api/login", method="POST")
    (event,) = heard[-1:]
    assert (event.name, event.user, event.retries, event.ip, event.path) == (
        EventName.LOGIN_AFTER_FAILURES,
        "alice",
        2,
        "203.0.113.9",
        "/api/login",
    )
    assert await throttle.check("alice", client) == 0  # reset

    # A request's throttle remembers its own check, for the same account only.
    bound = manager.login_throttle.for_client(client)
    heard.clear()
    await bound.check("bob")
    await bound.failed("bob")
    await bound.check("bob")
    await bound.succeeded("carol")  # not the account it checked: nothing known of carol
    assert [event.name for event in heard] == [EventName.LOGIN_FAILED]

    # With accounts not counted, check() cannot tell.
    off = SessionManager(
        MemoryStore(), SessionPolicy(login_throttle=LoginThrottlePolicy(max_failures=0)), events=events
    )
    assert await off.login_throttle.check("alice", client) is None


def flask_app(store: SyncSessionStore, clock: ManualClock, events: EventBus) -> Flask:
    """A Flask login view written as the extension's documentation shows it."""
    book = PasswordBook()
    app = Flask(__name__)
    app.config["SESSIONWARD_CSRF"] = False  # a JSON API called by scripts in this test
    SessionWard(app, store=store, policy=SessionPolicy(cookie=CookiePolicy(secure=False)), clock=clock, events=events)

    @app.post("/login")
    def login() -> Any:
        body = request.get_json()
        username, password = str(body["username"]), str(body["password"])
        current_session().throttle.check(username)  # uncaught LoginThrottledError: the extension answers 429
        if not book.verify(username, password):
            current_session().throttle.failed(username)
            return jsonify(error="invalid_credentials"), 401
        current_session().throttle.succeeded(username)
        current_session().login(username)
        return jsonify(ok=True, user=username)

    return app


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_flask_authn_login_successafterfail_reports_the_failures_before_a_success(
    kind: str, clock: ManualClock, tmp_path: Path
) -> None:
    store: SyncSessionStore = (
        SyncMemoryStore() if kind == "memory" else SyncSqlStore.from_url(f"sqlite:///{tmp_path / 's.db'}")
    )
    store.setup()
    recorder = Recorder()
    events = EventBus()
    events.subscribe(recorder)
    app = flask_app(store, clock, events)
    client = app.test_client()
    wrong = [client.post("/login", json={"username": "alice", "password": f"typo-{i}"}) for i in range(7)]
    assert [answer.status_code for answer in wrong] == [401] * 5 + [429] * 2
    clock.advance(1)
    assert client.post("/login", json={"username": "alice", "password": RIGHT}).status_code == 200
    (event,) = after_failures(recorder)
    assert (event.user, event.retries, event.method, event.path) == ("alice", 7, "POST", "/login")
    assert recorder.names()[-3:] == ["login_after_failures", "created", "login"]
    assert orjson.loads(event.to_json())["event"] == "authn_login_successafterfail"
    store.close()
