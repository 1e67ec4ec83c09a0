"""Idle and absolute timeouts are enforced by the server on every load, whatever the cookie says (F8)."""

from __future__ import annotations

from sessionward import ManualClock, TimeoutPolicy
from sessionward.core.events import EventBus
from sessionward.stores.base import SessionStore
from support.helpers import Recorder, client_for, make_app, plain_http_policy

TIMEOUTS = TimeoutPolicy(idle_timeout_s=60, absolute_timeout_s=300, renewal_interval_s=0)


async def test_idle_session_is_refused_after_idle_timeout(local_store: SessionStore, clock: ManualClock) -> None:
    recorder = Recorder()
    bus = EventBus()
    bus.subscribe(recorder)
    app, _ = make_app(local_store, clock=clock, policy=plain_http_policy(timeouts=TIMEOUTS), events=bus)
    async with client_for(app) as client:
        await client.post("/login")
        cookie = client.cookies["sid"]
        clock.advance(59)
        assert (await client.get("/api/whoami")).json()["user"] == "alice"
        clock.advance(60)  # 60 s after the last request
        response = await client.get("/api/whoami")
        assert response.status_code == 401
        assert response.json() == {"error": "session_invalid", "reason": "idle_timeout"}
    async with client_for(app) as replay:
        replay.cookies.set("sid", cookie)
        response = await replay.get("/api/whoami")
        # The reason survives (tombstone), so a returning user can be told why.
        assert response.json() == {"error": "session_invalid", "reason": "idle_timeout"}
    assert "expired" in recorder.names()


async def test_activity_keeps_session_alive_until_absolute_timeout(
    local_store: SessionStore, clock: ManualClock
) -> None:
    app, _ = make_app(local_store, clock=clock, policy=plain_http_policy(timeouts=TIMEOUTS))
    async with client_for(app) as client:
        await client.post("/login")
        for _ in range(9):  # active every 30 s: never idle for 60 s
            clock.advance(30)
            assert (await client.get("/api/whoami")).json()["user"] == "alice"
        clock.advance(30)  # 300 s after login
        response = await client.get("/api/whoami")
        assert response.json() == {"error": "session_invalid", "reason": "absolute_timeout"}


async def test_status_polling_is_passive_and_does_not_extend_idle(
    local_store: SessionStore, clock: ManualClock
) -> None:
    policy = plain_http_policy(timeouts=TIMEOUTS, passive_paths=("/api/whoami",))
    app, _ = make_app(local_store, clock=clock, policy=policy)
    async with client_for(app) as client:
        await client.post("/login")
        for _ in range(5):
            clock.advance(10)
            status = (await client.get("/api/whoami")).json()["status"]
        assert status["idle_s"] == 50
        assert status["remaining_idle_s"] == 10
        clock.advance(10)
        assert (await client.get("/api/whoami")).status_code == 401


async def test_touch_is_written_at_most_once_per_interval(local_store: SessionStore, clock: ManualClock) -> None:
    app, _ = make_app(local_store, clock=clock, policy=plain_http_policy(timeouts=TIMEOUTS))
    async with client_for(app) as client:
        await client.post("/login")
        key = next(iter(await local_store.list_user("alice", clock()))).key
        clock.advance(3)  # under the touch interval (a tenth of 60 s)
        await client.get("/whoami")
        record = await local_store.load(key, clock())
        assert record is not None
        assert record.meta.last_access_at == clock() - 3  # type: ignore[union-attr]
        clock.advance(4)  # now 7 s since the last write: due
        await client.get("/whoami")
        record = await local_store.load(key, clock())
        assert record.meta.last_access_at == clock()  # type: ignore[union-attr]
