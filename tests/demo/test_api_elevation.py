"""``POST /api/elevate`` and ``GET /api/admin`` (F7, SPEC §4): sudo mode that lapses."""

from __future__ import annotations

from demo.support import DemoUnderTest, MakeDemo, set_sid, sid


async def test_elevation_rotates_the_id_and_opens_the_admin_api(demo: DemoUnderTest) -> None:
    client = await demo.signed_in("alice")
    before = sid(client)
    assert before is not None
    assert (await client.get("/api/admin")).status_code == 403
    response = await client.post("/api/elevate", json={"password": "alice-demo-pass"})
    assert response.status_code == 200
    assert response.json()["ok"] is True
    after = sid(client)
    assert after is not None
    assert after != before
    assert (await client.get("/api/session/status")).json()["elevated"] is True
    admin = await client.get("/api/admin")
    assert admin.status_code == 200
    assert admin.json()["store"]["live_sessions"] >= 1
    # The less privileged ID died at once: no grace period for a privilege change.
    set_sid(client, before)
    assert (await client.get("/api/admin")).status_code == 401


async def test_elevation_with_a_wrong_password_is_403(demo: DemoUnderTest) -> None:
    client = await demo.signed_in("alice")
    before = sid(client)
    response = await client.post("/api/elevate", json={"password": "bob-demo-pass"})
    assert response.status_code == 403
    assert sid(client) == before
    assert (await client.get("/api/admin")).status_code == 403


async def test_privilege_escalation_a_non_admin_cannot_elevate(demo: DemoUnderTest) -> None:
    client = await demo.signed_in("bob")
    response = await client.post("/api/elevate", json={"password": "bob-demo-pass"})
    assert response.status_code == 403
    assert response.json()["error"] == "not_admin"
    admin = await client.get("/api/admin")
    assert admin.status_code == 403
    assert admin.json() == {"error": "elevation_required"}


async def test_elevation_lapses_by_itself(make_demo: MakeDemo) -> None:
    demo = await make_demo({"SESSIONWARD_ELEVATION_TIMEOUT": "120"})
    client = await demo.signed_in("alice")
    assert (await client.post("/api/elevate", json={"password": "alice-demo-pass"})).status_code == 200
    demo.clock.advance(119)
    assert (await client.get("/api/admin")).status_code == 200
    demo.clock.advance(2)
    assert (await client.get("/api/admin")).status_code == 403
    assert (await client.get("/api/session/status")).json()["elevated"] is False


async def test_elevation_and_admin_need_a_login(demo: DemoUnderTest) -> None:
    client = await demo.client()
    assert (await client.post("/api/elevate", json={"password": "alice-demo-pass"})).status_code == 401
    response = await client.get("/api/admin")
    assert response.status_code == 401
    assert response.json() == {"error": "not_authenticated"}


async def test_elevation_with_a_malformed_body_is_400(demo: DemoUnderTest) -> None:
    client = await demo.signed_in("alice")
    assert (await client.post("/api/elevate", json={"pass": "alice-demo-pass"})).status_code == 400
