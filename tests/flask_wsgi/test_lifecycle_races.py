"""Racing Flask requests on one session, in a forced order: each test names the race it stops.

Every test runs real threads against a real WSGI stack (the Flask test client through
sessionward's middleware) on every sync store. One request runs in a worker thread and is
held by :class:`~gated_sync_store.GatedSyncStore` at the store call where it has loaded
the session and decided but not yet written (usually ``establish``: the renewal, rotation
or login); another request then runs to completion; then the first is let go. The store is
inspected afterwards (``list_user``, ``load``) and the cookies each response set are
replayed, as a browser or a thief would.

What the exchange must guarantee, whatever the order: a move (renewal, rotation) applies
only to the session state it was decided on, so a logout or revocation that got in first
stays in force and a burst of renewals makes one successor, not many; and a logout that
ends a session a racing renewal just moved also ends the successor.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
from flask import Flask, jsonify
from werkzeug.test import TestResponse

from sessionward import ManualClock, TimeoutPolicy
from sessionward._sync.stores import MemoryStore
from sessionward._sync.stores.base import SessionStore
from sessionward._sync.stores.redis import RedisStore
from sessionward._sync.stores.sql import SqlStore
from sessionward.core.ids import storage_key
from sessionward.core.records import EndReason, SessionRecord, Tombstone

from .gated_sync_store import GatedSyncStore
from .support import client, cookie_header, make_app, plain_policy, set_cookie, ward_session

T = TypeVar("T")

USER = "alice"
RENEWAL_INTERVAL_S = 60
JOIN_TIMEOUT_S = 20.0
BURST = 8

STORES = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
    pytest.param("redis_cluster", id="redis_cluster", marks=pytest.mark.redis),
]


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(params=STORES)
def inner(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    """A fresh, set-up sync store of each kind; emptied or dropped after the test."""
    kind: str = request.param
    opened: SessionStore
    if kind == "memory":
        opened = MemoryStore()
    elif kind == "sqlite":
        opened = SqlStore.from_url(f"sqlite:///{tmp_path / 'races.db'}")
    elif kind == "postgres":
        url = str(request.getfixturevalue("postgres_url"))
        opened = SqlStore.from_url(url, table_prefix=f"sw_fr_{secrets.token_hex(4)}_")
    elif kind == "redis":
        opened = RedisStore.from_url(str(request.getfixturevalue("redis_url")))  # flushed before each test
    else:
        opened = RedisStore.from_url(str(request.getfixturevalue("redis_cluster_url")))
    opened.setup()
    try:
        yield opened
    finally:
        if kind == "postgres":
            assert isinstance(opened, SqlStore)
            opened.drop()
        opened.close()


@pytest.fixture
def gated(inner: SessionStore) -> GatedSyncStore:
    """The store under test behind a gate."""
    return GatedSyncStore(inner)


@pytest.fixture
def workers(gated: GatedSyncStore) -> Iterator[ThreadPoolExecutor]:
    """Threads for the requests a test holds; at teardown every hold is released, then they are joined."""
    pool = ThreadPoolExecutor(max_workers=BURST, thread_name_prefix="held-request")
    try:
        yield pool
    finally:
        gated.release_all()  # a failed test must not leave a request stuck at its hold
        pool.shutdown(wait=True)


@pytest.fixture
def app(gated: GatedSyncStore, clock: ManualClock) -> Flask:
    """The Flask test app on the gated store, renewing IDs every minute, plus two verbs' routes."""
    policy = plain_policy(timeouts=TimeoutPolicy(renewal_interval_s=RENEWAL_INTERVAL_S, rotation_grace_s=5))
    made = make_app(gated, clock, policy)

    @made.post("/rotate")
    def rotate() -> Any:
        ward_session().rotate_id()
        return jsonify(ok=True)

    @made.post("/revoke-others")
    def revoke_others() -> Any:
        # A password change on this device signs every other device out.
        return jsonify(revoked=ward_session().revoke_others(EndReason.REVOKED))

    return made


# -- helpers -----------------------------------------------------------------------------------


def logged_in(app: Flask, user_agent: str = "pytest") -> str:
    """Log the user in from a fresh client; return the session cookie."""
    response = client(app, user_agent=user_agent).post("/login", query_string={"user": USER})
    assert response.status_code == 200, response.json
    sid = set_cookie(response)
    assert sid
    return sid


def live(store: SessionStore, clock: ManualClock) -> list[SessionRecord]:
    """The user's live sessions, as the store lists them."""
    return store.list_user(USER, clock())


def status_of(app: Flask, sid: str) -> TestResponse:
    """Replay ``sid`` on an API path (an invalid session answers 401 there)."""
    return client(app).get("/api/status", headers=cookie_header(sid))


def assert_dead(app: Flask, sid: str) -> None:
    """Replaying ``sid`` is refused: no ID the race left behind leads to a session."""
    replay = status_of(app, sid)
    assert replay.status_code == 401, (replay.status_code, replay.json)
    assert replay.json is not None
    assert replay.json["error"] == "session_invalid"


def assert_alive(app: Flask, sid: str) -> None:
    """Replaying ``sid`` reaches the user's session."""
    replay = status_of(app, sid)
    assert replay.status_code == 200, (replay.status_code, replay.json)
    assert replay.json is not None
    assert replay.json["authenticated"] is True


def finish(future: Future[T]) -> T:
    """Join a held request's thread and return its result (re-raising what it raised)."""
    return future.result(timeout=JOIN_TIMEOUT_S)


def in_thread(workers: ThreadPoolExecutor, call: Callable[[], T]) -> Future[T]:
    """Run one request in a worker thread."""
    return workers.submit(call)


# -- 1. renewal vs logout ----------------------------------------------------------------------


def test_renewal_held_past_a_logout_does_not_resurrect_the_session(
    app: Flask, gated: GatedSyncStore, inner: SessionStore, clock: ManualClock, workers: ThreadPoolExecutor
) -> None:
    """A decided to renew, B logged out before A wrote: A's renewal must not bring the session back."""
    sid = logged_in(app)
    clock.advance(RENEWAL_INTERVAL_S + 1)  # the next request renews the ID
    renewal = gated.hold("establish")

    request_a = in_thread(workers, lambda: client(app).get("/whoami", headers=cookie_header(sid)))
    renewal.arrived()
    logout = client(app).post("/logout", headers=cookie_header(sid))
    assert logout.status_code == 200
    assert set_cookie(logout) == ""
    renewal.release()
    response_a = finish(request_a)

    assert response_a.status_code == 200
    handed_out = set_cookie(response_a)
    assert handed_out == "", f"the renewal lost to a logout must clear the cookie, not set {handed_out!r}"
    assert live(inner, clock) == []
    old = inner.load(storage_key(sid), clock())
    assert isinstance(old, Tombstone)
    assert old.reason is EndReason.LOGGED_OUT
    assert_dead(app, sid)


# -- 2. logout decided before a renewal --------------------------------------------------------


def test_logout_decided_before_a_renewal_ends_the_successor_too(
    app: Flask, gated: GatedSyncStore, inner: SessionStore, clock: ManualClock, workers: ThreadPoolExecutor
) -> None:
    """B decided to log out, A renewed the ID before B's end reached the store: the new ID dies too."""
    sid = logged_in(app)
    clock.advance(RENEWAL_INTERVAL_S + 1)
    ending = gated.hold("end")

    request_b = in_thread(workers, lambda: client(app).post("/logout", headers=cookie_header(sid)))
    ending.arrived()
    renewed = client(app).get("/whoami", headers=cookie_header(sid))
    successor = set_cookie(renewed)
    assert successor
    assert successor != sid
    assert_alive(app, successor)  # the renewal applied: the logout had not reached the store
    ending.release()
    response_b = finish(request_b)

    assert response_b.status_code == 200
    assert set_cookie(response_b) == ""
    assert live(inner, clock) == []
    moved = inner.load(storage_key(successor), clock())
    assert isinstance(moved, Tombstone)
    assert moved.reason is EndReason.LOGGED_OUT
    assert_dead(app, successor)
    assert_dead(app, sid)  # within the renewal's grace, the old ID leads only to the ended successor


# -- 3. renewal vs renewal ---------------------------------------------------------------------


def test_burst_of_renewals_makes_one_successor_and_keeps_every_write(
    app: Flask, gated: GatedSyncStore, inner: SessionStore, clock: ManualClock, workers: ThreadPoolExecutor
) -> None:
    """Eight tabs send the same cookie when the renewal is due: one new ID, not eight sessions."""
    sid = logged_in(app)
    clock.advance(RENEWAL_INTERVAL_S + 1)
    renewals = gated.hold("establish", count=BURST)

    def tab(n: int) -> TestResponse:
        return client(app).post("/set", query_string={f"tab{n}": str(n)}, headers=cookie_header(sid))

    requests = [in_thread(workers, partial(tab, n)) for n in range(BURST)]
    renewals.arrived()  # all eight decided to renew, none has written
    renewals.release()
    responses = [finish(request) for request in requests]

    assert [r.status_code for r in responses] == [200] * BURST
    cookies = {set_cookie(r) for r in responses}
    assert len(cookies) == 1, f"the burst handed out {len(cookies)} different cookies: {cookies}"
    (successor,) = cookies
    assert successor
    assert successor != sid
    sessions = live(inner, clock)
    assert [s.key for s in sessions] == [storage_key(successor)]
    whoami = client(app).get("/whoami", headers=cookie_header(successor))
    assert whoami.json is not None
    assert whoami.json["user"] == USER
    assert whoami.json["data"] == {f"tab{n}": str(n) for n in range(BURST)}  # no tab's write was lost
    late = client(app).get("/whoami", headers=cookie_header(sid))  # a request in flight, within the grace
    assert set_cookie(late) == successor


# -- 4. renewal vs revoke-others ---------------------------------------------------------------


def test_renewal_held_past_revoke_others_stays_signed_out(
    app: Flask, gated: GatedSyncStore, inner: SessionStore, clock: ManualClock, workers: ThreadPoolExecutor
) -> None:
    """A password change on device 1 revokes device 2 while device 2's renewal is in flight."""
    device_1 = logged_in(app, user_agent="device-1")
    device_2 = logged_in(app, user_agent="device-2")
    assert len(live(inner, clock)) == 2
    clock.advance(RENEWAL_INTERVAL_S + 1)
    renewal = gated.hold("establish")

    request_2 = in_thread(
        workers, lambda: client(app, user_agent="device-2").get("/whoami", headers=cookie_header(device_2))
    )
    renewal.arrived()
    password_change = client(app, user_agent="device-1").post("/revoke-others", headers=cookie_header(device_1))
    assert password_change.status_code == 200
    assert password_change.json == {"revoked": 1}
    device_1_now = set_cookie(password_change)  # device 1's own renewal was due too: it went through
    assert device_1_now
    assert device_1_now != device_1
    renewal.release()
    response_2 = finish(request_2)

    assert response_2.status_code == 200
    assert set_cookie(response_2) == "", "device 2's renewal lost to the revocation: its cookie goes"
    sessions = live(inner, clock)
    assert [s.key for s in sessions] == [storage_key(device_1_now)]
    revoked = inner.load(storage_key(device_2), clock())
    assert isinstance(revoked, Tombstone)
    assert revoked.reason is EndReason.REVOKED
    assert_dead(app, device_2)
    assert_alive(app, device_1_now)


# -- 5. rotate_id vs logout --------------------------------------------------------------------


def test_rotation_held_past_a_logout_answers_session_ended(
    app: Flask, gated: GatedSyncStore, inner: SessionStore, clock: ManualClock, workers: ThreadPoolExecutor
) -> None:
    """A privilege change (``rotate_id``) decided before a logout that got in first: 401, no new ID."""
    sid = logged_in(app)
    rotation = gated.hold("establish")

    request_a = in_thread(workers, lambda: client(app).post("/rotate", headers=cookie_header(sid)))
    rotation.arrived()
    logout = client(app).post("/logout", headers=cookie_header(sid))
    assert logout.status_code == 200
    rotation.release()
    response_a = finish(request_a)

    assert response_a.status_code == 401, (response_a.status_code, response_a.json)
    assert response_a.json == {"error": "session_invalid", "reason": "session_ended"}
    assert set_cookie(response_a) == ""
    assert live(inner, clock) == []
    old = inner.load(storage_key(sid), clock())
    assert isinstance(old, Tombstone)
    assert old.reason is EndReason.LOGGED_OUT
    assert_dead(app, sid)


# -- 6. rotate_id vs renewal -------------------------------------------------------------------


def test_rotation_held_past_a_renewal_retires_the_renewed_id(
    app: Flask, gated: GatedSyncStore, inner: SessionStore, clock: ManualClock, workers: ThreadPoolExecutor
) -> None:
    """A privilege change decided before another tab renewed the ID: it rotates the renewed session.

    The rotation follows the renewal (the old ID was in its grace) and moves the session
    on from there, so the renewal's ID dies with the less privileged state: one session,
    one live ID, the rotation's.
    """
    sid = logged_in(app)
    clock.advance(RENEWAL_INTERVAL_S + 1)
    rotation = gated.hold("establish")

    request_a = in_thread(workers, lambda: client(app).post("/rotate", headers=cookie_header(sid)))
    rotation.arrived()
    renewed = client(app).get("/whoami", headers=cookie_header(sid))
    renewal_id = set_cookie(renewed)
    assert renewal_id
    assert renewal_id != sid
    rotation.release()
    response_a = finish(request_a)

    assert response_a.status_code == 200, (response_a.status_code, response_a.json)
    rotated = set_cookie(response_a)
    assert rotated
    assert rotated not in (sid, renewal_id)
    assert [s.key for s in live(inner, clock)] == [storage_key(rotated)]
    superseded = inner.load(storage_key(renewal_id), clock())
    assert isinstance(superseded, Tombstone)
    assert superseded.reason is EndReason.SUPERSEDED
    assert_dead(app, renewal_id)
    assert_dead(app, sid)
    assert_alive(app, rotated)
