"""The HTML pages (SPEC §4): forms with CSRF tokens, redirects, reasons, defences shown."""

from __future__ import annotations

import re

import pytest

from demo.support import DemoUnderTest, MakeDemo, form_login, form_token, page_token, sid
from sessionward.demo.pages import SIGN_OUT_REASONS

PROTECTED = ["/dashboard", "/sessions", "/account/password", "/admin", "/admin/elevate"]
PAGES = ["/", "/login", *PROTECTED]


@pytest.mark.parametrize("path", PROTECTED)
async def test_anonymous_visits_to_protected_pages_go_to_login(demo: DemoUnderTest, path: str) -> None:
    client = await demo.client()
    response = await client.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"


async def test_home_page_is_public_and_creates_no_session(demo: DemoUnderTest) -> None:
    client = await demo.client()
    response = await client.get("/")
    assert response.status_code == 200
    assert "alice" in response.text
    assert "set-cookie" not in response.headers


async def test_every_page_says_which_defence_is_at_work_without_inline_script_or_style(
    demo: DemoUnderTest,
) -> None:
    client = await demo.client()
    await form_login(client)
    token = await page_token(client, "/admin/elevate")
    await client.post("/admin/elevate", data={"password": "alice-demo-pass", "csrf_token": token})
    for path in PAGES:
        response = await client.get(path)
        assert response.status_code == 200, path
        html = response.text
        assert "Defence at work" in html, path
        # The CSP allows no inline code: every script is a file, no style attribute or block.
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert "style=" not in html, path
        assert "<style" not in html, path
        assert "'unsafe-inline'" not in response.headers["content-security-policy"]


async def test_login_form_carries_a_csrf_token_and_signs_in(demo: DemoUnderTest) -> None:
    client = await demo.client()
    page = await client.get("/login")
    assert re.search(r'<input type="hidden" name="csrf_token" value="[^"]{20,}">', page.text)
    before = sid(client)
    response = await form_login(client)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard"
    assert sid(client) not in (None, before)
    dashboard = await client.get("/dashboard")
    assert dashboard.status_code == 200
    assert "Hello, alice" in dashboard.text


async def test_login_csrf_a_form_post_without_the_token_is_refused(demo: DemoUnderTest) -> None:
    client = await demo.client()
    await client.get("/login")
    for data in (
        {"username": "alice", "password": "alice-demo-pass"},
        {"username": "alice", "password": "alice-demo-pass", "csrf_token": "forged"},
    ):
        response = await client.post("/login", data=data)
        assert response.status_code == 403
        assert response.json()["error"] == "csrf_refused"
    assert (await client.get("/api/session/status")).json()["authenticated"] is False


async def test_csrf_a_cross_site_form_post_is_refused_even_with_cookie_and_token(demo: DemoUnderTest) -> None:
    client = await demo.client()
    await form_login(client)
    token = await page_token(client, "/account/password")
    response = await client.post(
        "/logout",
        data={"csrf_token": token},
        headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
    )
    assert response.status_code == 403
    assert response.json()["error"] == "csrf_refused"
    assert (await client.get("/api/session/status")).json()["authenticated"] is True


async def test_a_token_learned_before_login_is_worthless_after(demo: DemoUnderTest) -> None:
    client = await demo.client()
    old_token = await page_token(client, "/login")
    await form_login(client)
    response = await client.post("/logout", data={"csrf_token": old_token})
    assert response.status_code == 403
    assert (await client.get("/api/session/status")).json()["authenticated"] is True


async def test_wrong_password_on_the_form_shows_an_error(demo: DemoUnderTest) -> None:
    client = await demo.client()
    response = await form_login(client, "alice", "nope-nope-nope")
    assert response.status_code == 401
    assert "Wrong user name or password" in response.text


async def test_refused_login_over_max_sessions_is_explained(make_demo: MakeDemo) -> None:
    demo = await make_demo({"SESSIONWARD_MAX_SESSIONS": "1", "SESSIONWARD_PREVENT_LOGIN": "true"})
    await demo.signed_in()
    response = await form_login(await demo.client())
    assert response.status_code == 409
    assert "most allowed" in response.text


@pytest.mark.parametrize("reason", sorted(SIGN_OUT_REASONS))
async def test_login_page_tells_why_the_user_was_signed_out(demo: DemoUnderTest, reason: str) -> None:
    client = await demo.client()
    response = await client.get(f"/login?reason={reason}")
    assert SIGN_OUT_REASONS[reason] in response.text


async def test_xss_the_reason_parameter_is_never_echoed(demo: DemoUnderTest) -> None:
    client = await demo.client()
    response = await client.get("/login", params={"reason": "<script>alert(1)</script>"})
    assert response.status_code == 200
    assert "<script>alert(1)" not in response.text
    assert "alert(1)" not in response.text.replace('data-reason="&lt;script&gt;alert(1)&lt;/script&gt;"', "")


async def test_logout_button_ends_the_session(demo: DemoUnderTest) -> None:
    client = await demo.client()
    await form_login(client)
    token = await page_token(client, "/dashboard")
    response = await client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?reason=logged_out"
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert (await client.get("/dashboard")).status_code == 303


async def test_devices_page_revokes_another_session(demo: DemoUnderTest) -> None:
    laptop = await demo.client()
    await form_login(laptop)
    phone = await demo.signed_in(user_agent="Mozilla/5.0 (iPhone) Safari/605.1")
    page = await laptop.get("/sessions")
    assert "Safari on iOS" in page.text
    handles = re.findall(r'name="handle" value="([0-9a-f]{16})"', page.text)
    assert len(handles) == 2
    (current,) = re.findall(r'<tr data-handle="([0-9a-f]{16})" class="current">', page.text)
    other = next(handle for handle in handles if handle != current)
    response = await laptop.post("/sessions/revoke", data={"handle": other, "csrf_token": form_token(page.text)})
    assert response.status_code == 303
    assert response.headers["location"] == "/sessions?done=revoked"
    assert (await phone.get("/dashboard")).headers["location"] == "/login?reason=revoked"


async def test_devices_page_asks_for_the_password_when_the_sign_in_is_stale(make_demo: MakeDemo) -> None:
    demo = await make_demo({"SESSIONWARD_REAUTH_WINDOW": "60"})
    laptop = await demo.client()
    await form_login(laptop)
    phone = await demo.signed_in()
    demo.clock.advance(61)
    page = await laptop.get("/sessions")
    assert "Confirm it is you" in page.text
    token = form_token(page.text)
    refused = await laptop.post("/sessions/revoke-others", data={"csrf_token": token})
    assert refused.status_code == 403
    wrong = await laptop.post("/sessions/reauth", data={"password": "guess-guess", "csrf_token": token})
    assert wrong.status_code == 403
    confirmed = await laptop.post("/sessions/reauth", data={"password": "alice-demo-pass", "csrf_token": token})
    assert confirmed.headers["location"] == "/sessions?done=reauthenticated"
    done = await laptop.post("/sessions/revoke-others", data={"csrf_token": token})
    assert done.headers["location"] == "/sessions?done=revoked_others"
    assert (await phone.get("/api/session/status")).json()["reason"] == "revoked"


async def test_password_page_changes_the_password_and_signs_out_other_sessions(demo: DemoUnderTest) -> None:
    laptop = await demo.client()
    await form_login(laptop)
    phone = await demo.signed_in()
    token = await page_token(laptop, "/account/password")
    fields = {"current_password": "alice-demo-pass", "csrf_token": token}
    mismatch = await laptop.post(
        "/account/password", data={**fields, "new_password": "new-pass-phrase", "confirm_password": "other-phrase"}
    )
    assert mismatch.status_code == 400
    weak = await laptop.post("/account/password", data={**fields, "new_password": "1", "confirm_password": "1"})
    assert weak.status_code == 400
    before = sid(laptop)
    response = await laptop.post(
        "/account/password",
        data={**fields, "new_password": "new-pass-phrase", "confirm_password": "new-pass-phrase"},
    )
    assert response.headers["location"] == "/account/password?done=password_changed"
    assert sid(laptop) != before
    assert (await phone.get("/dashboard")).headers["location"] == "/login?reason=password_changed"
    assert "Password changed" in (await laptop.get(response.headers["location"])).text


async def test_admin_area_needs_elevation_by_password(demo: DemoUnderTest) -> None:
    client = await demo.client()
    await form_login(client)
    redirect = await client.get("/admin")
    assert redirect.headers["location"] == "/admin/elevate"
    token = await page_token(client, "/admin/elevate")
    wrong = await client.post("/admin/elevate", data={"password": "nope-nope", "csrf_token": token})
    assert wrong.status_code == 403
    before = sid(client)
    response = await client.post("/admin/elevate", data={"password": "alice-demo-pass", "csrf_token": token})
    assert response.headers["location"] == "/admin?done=elevated"
    assert sid(client) != before
    admin = await client.get("/admin")
    assert admin.status_code == 200
    assert "Audit log" in admin.text
    assert "elevated" in admin.text
    raw_id = sid(client)
    assert raw_id is not None
    assert raw_id not in admin.text


async def test_privilege_escalation_a_non_admin_is_refused_the_admin_area(demo: DemoUnderTest) -> None:
    client = await demo.client()
    await form_login(client, "bob")
    page = await client.get("/admin/elevate")
    assert page.status_code == 403
    response = await client.post(
        "/admin/elevate", data={"password": "bob-demo-pass", "csrf_token": form_token(page.text)}
    )
    assert response.status_code == 403
    assert (await client.get("/admin")).headers["location"] == "/admin/elevate"


async def test_admin_signs_a_user_out_everywhere(demo: DemoUnderTest) -> None:
    admin = await demo.client()
    await form_login(admin)
    token = await page_token(admin, "/admin/elevate")
    await admin.post("/admin/elevate", data={"password": "alice-demo-pass", "csrf_token": token})
    bobs = [await demo.signed_in("bob") for _ in range(2)]
    response = await admin.post("/admin/revoke-user", data={"user": "bob", "csrf_token": token})
    assert response.headers["location"] == "/admin?done=user_revoked"
    for bob in bobs:
        assert (await bob.get("/api/session/status")).json()["reason"] == "revoked"


async def test_static_files_are_served(demo: DemoUnderTest) -> None:
    client = await demo.client()
    for path in ("/static/demo.js", "/static/demo.css", "/static/favicon.svg"):
        assert (await client.get(path)).status_code == 200, path
    assert (await client.get("/static/../app.py")).status_code in (400, 404)


async def test_security_headers_are_on_every_page(demo: DemoUnderTest) -> None:
    client = await demo.client()
    response = await client.get("/login")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"


async def test_unknown_api_paths_answer_json_404(demo: DemoUnderTest) -> None:
    client = await demo.client()
    response = await client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found"}
