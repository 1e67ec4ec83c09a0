"""``POST /api/password`` (SPEC §4, seed 000): other sessions end, this one gets a new ID."""

from __future__ import annotations

from demo.support import DemoUnderTest, login, set_sid, sid

NEW_PASSWORD = "a-much-better-passphrase"


async def test_password_change_revokes_other_sessions_and_rotates_the_id(demo: DemoUnderTest) -> None:
    laptop = await demo.signed_in()
    phone = await demo.signed_in()
    bob = await demo.signed_in("bob")
    before = sid(laptop)
    assert before is not None
    response = await laptop.post(
        "/api/password", json={"current_password": "alice-demo-pass", "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 200
    assert response.json()["ok"] is True
    after = sid(laptop)
    assert after is not None
    assert after != before
    # The current session goes on under its new ID.
    assert (await laptop.get("/api/session/status")).json()["authenticated"] is True
    # A thief holding a copy of any old ID is out: the phone's, and this one's old ID.
    ended = await phone.get("/api/session/status")
    assert ended.json() == {"error": "session_invalid", "reason": "password_changed"}
    set_sid(phone, before)
    assert (await phone.get("/api/session/status")).status_code == 401
    assert (await bob.get("/api/session/status")).json()["authenticated"] is True
    # The new password is the one that works now.
    fresh = await demo.client()
    assert (await login(fresh, "alice")).status_code == 401
    assert (await login(fresh, "alice", NEW_PASSWORD)).status_code == 200


async def test_password_change_with_a_wrong_current_password_is_403(demo: DemoUnderTest) -> None:
    laptop = await demo.signed_in()
    phone = await demo.signed_in()
    response = await laptop.post("/api/password", json={"current_password": "guess", "new_password": NEW_PASSWORD})
    assert response.status_code == 403
    assert response.json()["error"] == "invalid_credentials"
    assert (await phone.get("/api/session/status")).json()["authenticated"] is True
    assert (await login(await demo.client(), "alice")).status_code == 200


async def test_weak_new_passwords_are_refused_with_400(demo: DemoUnderTest) -> None:
    client = await demo.signed_in()
    for weak in ("short", "password123", "aaaaaaaaaaaa", "alice-is-great", "alice-demo-pass", "x" * 129):
        response = await client.post(
            "/api/password", json={"current_password": "alice-demo-pass", "new_password": weak}
        )
        assert response.status_code == 400, weak
        assert response.json()["error"] == "weak_password"
        assert response.json()["message"]
    assert (await login(await demo.client(), "alice")).status_code == 200


async def test_password_change_needs_a_login_and_a_well_formed_body(demo: DemoUnderTest) -> None:
    anonymous = await demo.client()
    response = await anonymous.post(
        "/api/password", json={"current_password": "alice-demo-pass", "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 401
    assert response.json() == {"error": "not_authenticated"}
    client = await demo.signed_in()
    assert (await client.post("/api/password", json={"new_password": NEW_PASSWORD})).status_code == 400
