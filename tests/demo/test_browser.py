"""The demo in real headless Chromium: what a person sees and what the browser keeps.

Each test drives Debian's Chromium through Playwright against the demo running as a real
server process. Timeouts here are real (a server cannot be handed a ManualClock), so the
short-timeout server uses a 3-second idle timeout and the tests wait for it in the
browser. Screenshots of the main pages land in ``tests/demo/screenshots/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect, sync_playwright

from demo.browser_support import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, DemoServer, attacker_site, demo_server
from support.helpers import service_missing

pytestmark = [pytest.mark.browser, pytest.mark.slow]

COOKIE = "__Host-sid"
VIEWPORT: ViewportSize = {"width": 1200, "height": 820}
# A user per flow that counts sessions, so tests sharing the server do not see each other's.
USERS = "alice:alice-demo-pass:admin,bob:bob-demo-pass,carol:carol-demo-pass"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium, shared by the module's tests (each test opens its own contexts)."""
    if not CHROMIUM.exists():
        service_missing(f"{CHROMIUM} is missing (apt-get install chromium)")
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """The demo with an idle timeout long enough for multi-step flows."""
    env = {"SESSIONWARD_IDLE_TIMEOUT": "30", "SESSIONWARD_DEMO_USERS": USERS}
    with demo_server(tmp_path_factory.mktemp("demo"), env) as running:
        yield running


@pytest.fixture(scope="module")
def short_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """The demo with a 3-second idle timeout."""
    with demo_server(tmp_path_factory.mktemp("short"), {"SESSIONWARD_IDLE_TIMEOUT": "3"}) as running:
        yield running


PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Version/17.5 Mobile Safari/604.1"


def new_context(browser: Browser, user_agent: str | None = None) -> BrowserContext:
    return browser.new_context(viewport=VIEWPORT, user_agent=user_agent)


def session_cookie(context: BrowserContext) -> dict[str, object] | None:
    cookies = [dict(cookie) for cookie in context.cookies() if cookie.get("name") == COOKIE]
    assert len(cookies) <= 1
    return cookies[0] if cookies else None


def sign_in(page: Page, server: DemoServer, user: str = "alice", password: str | None = None) -> None:
    page.goto(server.url("/login"))
    page.fill("#username", user)
    page.fill("#password", password or f"{user}-demo-pass")
    page.click("#login-button")
    page.wait_for_url(server.url("/dashboard"))


def shot(page: Page, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def test_sign_in_sets_a_hardened_cookie_that_scripts_cannot_read(browser: Browser, server: DemoServer) -> None:
    context = new_context(browser)
    page = context.new_page()
    page.goto(server.url("/login?reason=idle_timeout"))
    expect(page.locator("#signout-reason")).to_contain_text("inactivity")
    shot(page, "login")
    # The form's CSRF token lives in a pre-session cookie: the login page makes no session.
    assert session_cookie(context) is None
    assert any(c["name"] == "__Host-sid-csrf" for c in context.cookies())
    sign_in(page, server)
    after = session_cookie(context)
    assert after is not None
    assert after["httpOnly"] is True
    assert after["secure"] is True
    assert after["sameSite"] == "Lax"
    assert after["path"] == "/"
    assert after["expires"] == -1  # a browser-session cookie
    assert after["domain"] == "127.0.0.1"  # host-only: no Domain attribute
    # HttpOnly: JavaScript (an XSS payload) cannot read the session ID.
    assert COOKIE not in page.evaluate("document.cookie")
    expect(page.locator("#current-user")).to_contain_text("alice")
    expect(page.locator("[data-status=remaining_idle_s]")).to_contain_text(" s")
    page.wait_for_timeout(600)  # let the first status poll fill in the live figures
    shot(page, "dashboard")
    context.close()


def test_sign_out_kills_the_old_cookie_value(browser: Browser, server: DemoServer) -> None:
    context = new_context(browser)
    page = context.new_page()
    sign_in(page, server)
    old = session_cookie(context)
    assert old is not None
    page.click("#logout-button")
    page.wait_for_url(server.url("/login?reason=logged_out"))
    expect(page.locator("#signout-reason")).to_contain_text("destroyed on the server")
    # A thief who copied the cookie before sign-out replays it in another browser.
    thief = new_context(browser)
    thief.add_cookies(
        [
            {
                "name": COOKIE,
                "value": str(old["value"]),
                "domain": "127.0.0.1",
                "path": "/",
                "secure": True,
                "httpOnly": True,
                "sameSite": "Lax",
            }
        ]
    )
    stolen = thief.new_page()
    stolen.goto(server.url("/dashboard"))
    assert stolen.url == server.url("/login?reason=logged_out")
    thief.close()
    context.close()


def test_revoking_a_device_signs_the_other_browser_out_and_tells_it_why(browser: Browser, server: DemoServer) -> None:
    laptop = new_context(browser)
    phone = new_context(browser, PHONE)
    laptop_page = laptop.new_page()
    phone_page = phone.new_page()
    sign_in(laptop_page, server, "carol")
    sign_in(phone_page, server, "carol")
    laptop_page.goto(server.url("/sessions"))
    rows = laptop_page.locator("#devices tbody tr")
    expect(rows).to_have_count(2)
    shot(laptop_page, "sessions")
    laptop_page.locator("#devices tbody tr:not(.current) button.revoke").click()
    laptop_page.wait_for_url(server.url("/sessions?done=revoked"))
    expect(rows).to_have_count(1)
    # The phone sits on its dashboard; its next status poll finds the session revoked.
    phone_page.wait_for_url(server.url("/login?reason=revoked"), timeout=15_000)
    expect(phone_page.locator("#signout-reason")).to_contain_text("signed out from another device")
    shot(phone_page, "signed-out-revoked")
    laptop.close()
    phone.close()


def test_idle_timeout_warns_then_signs_out_with_the_reason(browser: Browser, short_server: DemoServer) -> None:
    context = new_context(browser)
    page = context.new_page()
    sign_in(page, short_server)
    warning = page.locator("#expiry-warning")
    expect(warning).to_be_visible(timeout=5_000)
    shot(page, "idle-warning")
    # "Stay signed in" is a real request: the idle clock restarts and the warning goes.
    page.click("#stay-signed-in")
    expect(warning).to_be_hidden(timeout=2_000)
    assert page.url == short_server.url("/dashboard")
    # Left alone, the session times out; the page goes to sign-in and says why.
    page.wait_for_url(short_server.url("/login?reason=idle_timeout"), timeout=10_000)
    expect(page.locator("#signout-reason")).to_contain_text("inactivity")
    page.goto(short_server.url("/dashboard"))
    assert page.url == short_server.url("/login")
    context.close()


def test_elevation_asks_for_the_password_and_rotates_the_id(browser: Browser, server: DemoServer) -> None:
    context = new_context(browser)
    page = context.new_page()
    sign_in(page, server)
    page.click("nav >> text=Admin")
    page.wait_for_url(server.url("/admin/elevate"))
    before = session_cookie(context)
    assert before is not None
    page.fill("#elevate-password", "wrong-password")
    page.click("#elevate-button")
    expect(page.locator("#error")).to_contain_text("Wrong password")
    page.fill("#elevate-password", "alice-demo-pass")
    page.click("#elevate-button")
    page.wait_for_url(server.url("/admin?done=elevated"))
    after = session_cookie(context)
    assert after is not None
    assert after["value"] != before["value"]
    expect(page.locator("#current-user")).to_contain_text("admin mode")
    expect(page.locator("#audit")).to_contain_text("elevated")
    page.screenshot(path=str(SCREENSHOTS / "admin.png"), full_page=True)
    context.close()


@pytest.mark.parametrize("attacker_host", ["localhost", "127.0.0.1"], ids=["cross-site", "same-site-other-port"])
def test_csrf_a_forged_form_post_from_another_origin_is_refused(
    browser: Browser, server: DemoServer, attacker_host: str
) -> None:
    context = new_context(browser)
    page = context.new_page()
    sign_in(page, server)
    target = server.url("/account/password")
    with attacker_site(target) as port:
        with page.expect_response(target) as answer:
            page.goto(f"http://{attacker_host}:{port}/")
        assert answer.value.status == 403
        assert answer.value.json()["error"] == "csrf_refused"
    # The victim is still signed in, and the password is unchanged.
    page.goto(server.url("/dashboard"))
    assert page.url == server.url("/dashboard")
    fresh = new_context(browser)
    sign_in(fresh.new_page(), server)
    fresh.close()
    context.close()
