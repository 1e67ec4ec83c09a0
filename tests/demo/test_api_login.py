"""``POST /api/login`` and ``POST /api/logout`` (SPEC §4), with multiple-login control."""

from __future__ import annotations

from demo.support import COOKIE, DemoUnderTest, MakeDemo, login, set_sid, sid


async def test_login_answers_ok_and_user_with_a_hardened_cookie(demo: DemoUnderTest) -> None:
    client = await demo.client()
    response = await login(client, "alice")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "user": "alice"}
    set_cookie = response.headers["set-cookie"]
    assert set_cookie.startswith(f"{COOKIE}=")
    for attribute in ("Path=/", "Secure", "HttpOnly", "SameSite=Lax"):
        assert attribute in set_cookie
    assert "Max-Age" not in set_cookie
    assert "Domain" not in set_cookie
    status = (await client.get("/api/session/status")).json()
    assert status["authenticated"] is True
    assert status["user"] == "alice"


async def test_session_fixation_login_issues_a_new_id_and_kills_the_old(demo: DemoUnderTest) -> None:
    client = await demo.signed_in("bob")  # a session the next login must not keep
    before = sid(client)
    assert before is not None
    await login(client)
    after = sid(client)
    assert after is not None
    assert after != before
    set_sid(client, before)
    response = await client.get("/api/session/status")
    assert response.status_code == 401
    assert response.json()["error"] == "session_invalid"


async def test_login_with_a_wrong_password_is_401_and_sets_no_cookie(demo: DemoUnderTest) -> None:
    client = await demo.client()
    response = await login(client, "alice", "not-alice-pass")
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_credentials"}
    assert "set-cookie" not in response.headers


async def test_user_enumeration_unknown_user_gets_the_same_answer(demo: DemoUnderTest) -> None:
    client = await demo.client()
    unknown = await client.post("/api/login", json={"username": "mallory", "password": "alice-demo-pass"})
    wrong = await login(client, "alice", "wrong-password")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


async def test_login_with_a_malformed_body_is_400(demo: DemoUnderTest) -> None:
    client = await demo.client()
    for body in (b"not json", b"[1, 2]", b'{"username": "alice"}', b'{"username": 1, "password": "x"}'):
        response = await client.post("/api/login", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, body
        assert response.json()["error"] == "bad_request"


async def test_first_wins_refuses_a_login_over_max_sessions_with_409(make_demo: MakeDemo) -> None:
    demo = await make_demo({"SESSIONWARD_MAX_SESSIONS": "1", "SESSIONWARD_PREVENT_LOGIN": "true"})
    first = await demo.signed_in("alice")
    second = await demo.client()
    response = await login(second, "alice")
    assert response.status_code == 409
    assert response.json()["error"] == "max_sessions"
    assert sid(second) is None
    assert (await first.get("/api/session/status")).json()["authenticated"] is True
    # Another user is not affected by alice's limit.
    assert (await login(second, "bob")).status_code == 200


async def test_last_wins_displaces_the_oldest_session(make_demo: MakeDemo) -> None:
    demo = await make_demo({"SESSIONWARD_MAX_SESSIONS": "1", "SESSIONWARD_PREVENT_LOGIN": "false"})
    first = await demo.signed_in("alice")
    second = await demo.signed_in("alice")
    response = await first.get("/api/session/status")
    assert response.status_code == 401
    assert response.json() == {"error": "session_invalid", "reason": "displaced"}
    assert (await second.get("/api/session/status")).json()["authenticated"] is True


async def test_logout_destroys_the_session_server_side(demo: DemoUnderTest) -> None:
    client = await demo.signed_in()
    old = sid(client)
    assert old is not None
    response = await client.post("/api/logout")
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert "Max-Age=0" in response.headers["set-cookie"]
    # Replaying the old cookie (stolen, or kept by a careless client) no longer works.
    set_sid(client, old)
    replay = await client.get("/api/sessions")
    assert replay.status_code == 401
    assert replay.json() == {"error": "session_invalid", "reason": "logged_out"}


async def test_logout_without_a_session_is_still_200(demo: DemoUnderTest) -> None:
    client = await demo.client()
    response = await client.post("/api/logout")
    assert response.status_code == 200
    assert "set-cookie" not in response.headers


async def test_login_ignores_a_dead_cookie_instead_of_answering_401(demo: DemoUnderTest) -> None:
    client = await demo.signed_in()
    await client.post("/api/logout")
    set_sid(client, "A" * 43)
    response = await login(client)
    assert response.status_code == 200
