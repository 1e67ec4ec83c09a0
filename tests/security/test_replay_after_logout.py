"""Replay after logout: a cookie copied before logout is useless afterwards (server-side destroy)."""

from __future__ import annotations

from sessionward import ManualClock
from sessionward.core.events import EventBus
from sessionward.stores.base import SessionStore
from support.helpers import Recorder, client_for, make_app, set_cookie_value


async def test_cookie_replayed_after_logout_is_refused(local_store: SessionStore, clock: ManualClock) -> None:
    app, _ = make_app(local_store, clock=clock)
    async with client_for(app) as client:
        await client.post("/login")
        stolen = client.cookies["sid"]
        response = await client.post("/logout")
        assert set_cookie_value(response) == ""
    async with client_for(app) as thief:
        thief.cookies.set("sid", stolen)
        response = await thief.get("/api/whoami")
        assert response.status_code == 401
        assert response.json() == {"error": "session_invalid", "reason": "logged_out"}


async def test_logout_then_new_login_does_not_revive_old_id(local_store: SessionStore, clock: ManualClock) -> None:
    app, _ = make_app(local_store, clock=clock)
    async with client_for(app) as client:
        await client.post("/login")
        first = client.cookies["sid"]
        await client.post("/logout")
        await client.post("/login")
        assert client.cookies["sid"] != first
    async with client_for(app) as thief:
        thief.cookies.set("sid", first)
        assert (await thief.get("/whoami")).json()["user"] is None


async def test_replay_is_audited_with_the_victims_name(local_store: SessionStore, clock: ManualClock) -> None:
    recorder = Recorder()
    bus = EventBus()
    bus.subscribe(recorder)
    app, _ = make_app(local_store, clock=clock, events=bus)
    async with client_for(app) as client:
        await client.post("/login")
        stolen = client.cookies["sid"]
        await client.post("/logout")
    async with client_for(app) as thief:
        thief.cookies.set("sid", stolen)
        await thief.get("/api/whoami")
    invalid = [event for event in recorder.events if event.name.value == "invalid_session"]
    assert [(event.reason, event.user) for event in invalid] == [("logged_out", "alice")]
