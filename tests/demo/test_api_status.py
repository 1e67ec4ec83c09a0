"""``GET /api/session/status`` (F20, SPEC §4) and invalid-session answers (F10)."""

from __future__ import annotations

from demo.support import DemoUnderTest, MakeDemo, set_sid

FIELDS = {
    "authenticated",
    "user",
    "elevated",
    "session_age_s",
    "idle_s",
    "remaining_idle_s",
    "remaining_absolute_s",
    "next_rotation_s",
}


async def test_status_of_an_anonymous_visitor_has_every_field_and_creates_no_session(
    demo: DemoUnderTest,
) -> None:
    client = await demo.client()
    response = await client.get("/api/session/status")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == FIELDS
    assert body["authenticated"] is False
    assert body["user"] is None
    assert body["elevated"] is False
    assert all(body[name] is None for name in FIELDS - {"authenticated", "user", "elevated"})
    assert "set-cookie" not in response.headers


async def test_status_reports_the_figures_of_a_signed_in_session(make_demo: MakeDemo) -> None:
    demo = await make_demo({"SESSIONWARD_IDLE_TIMEOUT": "600", "SESSIONWARD_RENEWAL_INTERVAL": "0"})
    client = await demo.signed_in()
    demo.clock.advance(30)
    body = (await client.get("/api/session/status")).json()
    assert set(body) == FIELDS
    assert body["authenticated"] is True
    assert body["user"] == "alice"
    assert body["session_age_s"] == 30
    assert body["idle_s"] == 30
    assert body["remaining_idle_s"] == 570
    assert body["remaining_absolute_s"] == 8 * 3600 - 30
    assert body["next_rotation_s"] is None


async def test_polling_the_status_does_not_keep_an_idle_session_alive(make_demo: MakeDemo) -> None:
    demo = await make_demo({"SESSIONWARD_IDLE_TIMEOUT": "100"})
    client = await demo.signed_in()
    for _ in range(9):
        demo.clock.advance(10)
        assert (await client.get("/api/session/status")).status_code == 200
    demo.clock.advance(10)
    response = await client.get("/api/session/status")
    assert response.status_code == 401
    assert response.json() == {"error": "session_invalid", "reason": "idle_timeout"}
    assert "Max-Age=0" in response.headers["set-cookie"]


async def test_stay_signed_in_touch_restarts_the_idle_clock(make_demo: MakeDemo) -> None:
    demo = await make_demo({"SESSIONWARD_IDLE_TIMEOUT": "100"})
    client = await demo.signed_in()
    demo.clock.advance(90)
    assert (await client.post("/api/session/touch")).status_code == 200
    demo.clock.advance(90)
    body = (await client.get("/api/session/status")).json()
    assert body["authenticated"] is True
    assert body["remaining_idle_s"] == 10


async def test_touch_without_a_session_is_401(demo: DemoUnderTest) -> None:
    client = await demo.client()
    response = await client.post("/api/session/touch")
    assert response.status_code == 401
    assert response.json() == {"error": "not_authenticated"}


async def test_absolute_timeout_ends_even_an_active_session(make_demo: MakeDemo) -> None:
    demo = await make_demo({"SESSIONWARD_IDLE_TIMEOUT": "100", "SESSIONWARD_ABSOLUTE_TIMEOUT": "250"})
    client = await demo.signed_in()
    for _ in range(4):
        demo.clock.advance(60)
        assert (await client.post("/api/session/touch")).status_code == 200
    demo.clock.advance(20)
    response = await client.get("/api/sessions")
    assert response.status_code == 401
    assert response.json() == {"error": "session_invalid", "reason": "absolute_timeout"}


async def test_forged_cookie_is_session_invalid_json_on_the_api(demo: DemoUnderTest) -> None:
    client = await demo.client()
    set_sid(client, "x" * 43)
    response = await client.get("/api/session/status")
    assert response.status_code == 401
    assert response.json() == {"error": "session_invalid", "reason": "unknown"}


async def test_expired_cookie_on_a_page_redirects_to_login_with_the_reason(make_demo: MakeDemo) -> None:
    demo = await make_demo({"SESSIONWARD_IDLE_TIMEOUT": "60"})
    client = await demo.signed_in()
    demo.clock.advance(61)
    response = await client.get("/dashboard")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?reason=idle_timeout"
    page = await client.get(response.headers["location"])
    assert "inactivity" in page.text
