"""The device list and revocation API (F12, SPEC §4): ``/api/sessions``."""

from __future__ import annotations

from demo.support import DemoUnderTest, MakeDemo, sid

REAUTH = {"SESSIONWARD_REAUTH_WINDOW": "60"}


async def test_listing_sessions_needs_a_login(demo: DemoUnderTest) -> None:
    client = await demo.client()
    response = await client.get("/api/sessions")
    assert response.status_code == 401
    assert response.json() == {"error": "not_authenticated"}


async def test_list_shows_each_device_with_the_current_one_marked(demo: DemoUnderTest) -> None:
    laptop = await demo.signed_in(user_agent="laptop-browser")
    demo.clock.advance(5)
    phone = await demo.signed_in(user_agent="phone-browser")
    await demo.signed_in("bob")
    response = await laptop.get("/api/sessions")
    assert response.status_code == 200
    sessions = response.json()["sessions"]
    assert len(sessions) == 2  # bob's session is not alice's business
    for item in sessions:
        assert set(item) == {"handle", "created_at", "last_seen_at", "ip", "user_agent", "current"}
        assert len(item["handle"]) == 16
        assert item["ip"] == "127.0.0.1"
    by_agent = {item["user_agent"]: item for item in sessions}
    assert by_agent["laptop-browser"]["current"] is True
    assert by_agent["phone-browser"]["current"] is False
    assert by_agent["phone-browser"]["created_at"] == by_agent["laptop-browser"]["created_at"] + 5
    phone_view = (await phone.get("/api/sessions")).json()["sessions"]
    assert [item["current"] for item in phone_view].count(True) == 1


async def test_handles_reveal_nothing_of_the_session_id(demo: DemoUnderTest) -> None:
    client = await demo.signed_in()
    raw_id = sid(client)
    assert raw_id is not None
    (item,) = (await client.get("/api/sessions")).json()["sessions"]
    assert item["handle"] not in raw_id
    assert raw_id[:8] not in item["handle"]


async def test_revoking_a_device_ends_it_with_reason_revoked(demo: DemoUnderTest) -> None:
    laptop = await demo.signed_in(user_agent="laptop")
    phone = await demo.signed_in(user_agent="phone")
    sessions = (await laptop.get("/api/sessions")).json()["sessions"]
    target = next(item["handle"] for item in sessions if not item["current"])
    response = await laptop.delete(f"/api/sessions/{target}")
    assert response.status_code == 204
    assert response.content == b""
    ended = await phone.get("/api/session/status")
    assert ended.status_code == 401
    assert ended.json() == {"error": "session_invalid", "reason": "revoked"}
    assert len((await laptop.get("/api/sessions")).json()["sessions"]) == 1


async def test_revoking_an_unknown_handle_is_404(demo: DemoUnderTest) -> None:
    client = await demo.signed_in()
    for handle in ("0123456789abcdef", "not-a-handle", "A" * 16):
        response = await client.delete(f"/api/sessions/{handle}")
        assert response.status_code == 404, handle


async def test_revoking_another_users_session_by_handle_is_refused_with_404(demo: DemoUnderTest) -> None:
    alice = await demo.signed_in("alice")
    bob = await demo.signed_in("bob")
    (bobs,) = (await bob.get("/api/sessions")).json()["sessions"]
    response = await alice.delete(f"/api/sessions/{bobs['handle']}")
    assert response.status_code == 404
    assert (await bob.get("/api/session/status")).json()["authenticated"] is True


async def test_revoking_the_current_session_signs_it_out(demo: DemoUnderTest) -> None:
    client = await demo.signed_in()
    (item,) = (await client.get("/api/sessions")).json()["sessions"]
    response = await client.delete(f"/api/sessions/{item['handle']}")
    assert response.status_code == 204
    assert "Max-Age=0" in response.headers["set-cookie"]


async def test_stale_sign_in_cannot_revoke_without_reauthentication(make_demo: MakeDemo) -> None:
    demo = await make_demo(REAUTH)
    laptop = await demo.signed_in(user_agent="laptop")
    await demo.signed_in(user_agent="phone")
    sessions = (await laptop.get("/api/sessions")).json()["sessions"]
    target = next(item["handle"] for item in sessions if not item["current"])
    demo.clock.advance(61)
    response = await laptop.delete(f"/api/sessions/{target}")
    assert response.status_code == 403
    assert response.json() == {"error": "reauth_required"}
    # Re-authentication is checked first: an unknown handle does not leak a 404 either.
    assert (await laptop.delete("/api/sessions/0123456789abcdef")).status_code == 403
    others = await laptop.post("/api/sessions/revoke-others")
    assert others.status_code == 403
    assert others.json() == {"error": "reauth_required"}
    assert len((await laptop.get("/api/sessions")).json()["sessions"]) == 2


async def test_entering_the_password_again_counts_as_recent_authentication(make_demo: MakeDemo) -> None:
    demo = await make_demo(REAUTH)
    alice = await demo.signed_in()
    await demo.signed_in()
    demo.clock.advance(61)
    assert (await alice.post("/api/sessions/revoke-others")).status_code == 403
    assert (await alice.post("/api/elevate", json={"password": "alice-demo-pass"})).status_code == 200
    response = await alice.post("/api/sessions/revoke-others")
    assert response.status_code == 200
    assert response.json() == {"revoked": 1}


async def test_revoke_others_ends_every_other_session_and_keeps_this_one(demo: DemoUnderTest) -> None:
    laptop = await demo.signed_in()
    others = [await demo.signed_in() for _ in range(3)]
    bob = await demo.signed_in("bob")
    response = await laptop.post("/api/sessions/revoke-others")
    assert response.status_code == 200
    assert response.json() == {"revoked": 3}
    for other in others:
        answer = await other.get("/api/session/status")
        assert answer.json() == {"error": "session_invalid", "reason": "revoked"}
    assert (await laptop.get("/api/session/status")).json()["authenticated"] is True
    assert (await bob.get("/api/session/status")).json()["authenticated"] is True
    assert (await laptop.post("/api/sessions/revoke-others")).json() == {"revoked": 0}


async def test_revoking_needs_a_login(demo: DemoUnderTest) -> None:
    client = await demo.client()
    assert (await client.delete("/api/sessions/0123456789abcdef")).status_code == 401
    response = await client.post("/api/sessions/revoke-others")
    assert response.status_code == 401
    assert response.json() == {"error": "not_authenticated"}
