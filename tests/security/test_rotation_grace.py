"""Periodic renewal limits a leaked ID's life; in-flight requests with the old ID survive a short grace."""

from __future__ import annotations

from sessionward import ManualClock, TimeoutPolicy
from sessionward.stores.base import SessionStore
from support.helpers import client_for, make_app, plain_http_policy, set_cookie_value

TIMEOUTS = TimeoutPolicy(idle_timeout_s=600, absolute_timeout_s=7200, renewal_interval_s=300, rotation_grace_s=5)


async def test_id_renews_and_old_id_works_only_during_grace(local_store: SessionStore, clock: ManualClock) -> None:
    app, _ = make_app(local_store, clock=clock, policy=plain_http_policy(timeouts=TIMEOUTS))
    async with client_for(app) as client:
        await client.post("/login")
        await client.post("/set", params={"k": "v"})
        old = client.cookies["sid"]
        clock.advance(300)
        response = await client.get("/whoami")
        new = set_cookie_value(response)
        assert new is not None
        assert new not in ("", old)
        assert response.json()["data"] == {"k": "v"}

    async with client_for(app) as in_flight:
        clock.advance(4)  # within the grace period
        in_flight.cookies.set("sid", old)
        response = await in_flight.get("/whoami")
        assert response.json()["user"] == "alice"
        # The straggler is handed the new ID too, so it is not logged out when grace ends.
        assert set_cookie_value(response) == new

    async with client_for(app) as late:
        clock.advance(2)  # grace over
        late.cookies.set("sid", old)
        response = await late.get("/api/whoami")
        assert response.status_code == 401
        assert response.json()["reason"] == "renewed"

    async with client_for(app) as current:
        current.cookies.set("sid", new)
        assert (await current.get("/whoami")).json()["user"] == "alice"


async def test_write_through_old_id_during_grace_reaches_new_session(
    local_store: SessionStore, clock: ManualClock
) -> None:
    app, _ = make_app(local_store, clock=clock, policy=plain_http_policy(timeouts=TIMEOUTS))
    async with client_for(app) as client:
        await client.post("/login")
        old = client.cookies["sid"]
        clock.advance(300)
        await client.get("/whoami")
        new = client.cookies["sid"]
        assert new != old
    async with client_for(app) as straggler:
        straggler.cookies.set("sid", old)
        await straggler.post("/set", params={"late": "write"})
    async with client_for(app) as current:
        current.cookies.set("sid", new)
        assert (await current.get("/whoami")).json()["data"] == {"late": "write"}


async def test_renewal_off_when_interval_is_zero(local_store: SessionStore, clock: ManualClock) -> None:
    timeouts = TimeoutPolicy(idle_timeout_s=600, absolute_timeout_s=7200, renewal_interval_s=0)
    app, _ = make_app(local_store, clock=clock, policy=plain_http_policy(timeouts=timeouts))
    async with client_for(app) as client:
        await client.post("/login")
        for _ in range(5):
            clock.advance(500)
            response = await client.get("/whoami")
            assert set_cookie_value(response) is None
        assert response.json()["status"]["next_rotation_s"] is None
