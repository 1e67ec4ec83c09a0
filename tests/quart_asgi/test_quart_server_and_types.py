"""The extension under a real server, the example app, and a user's app under ``mypy --strict``."""

from __future__ import annotations

import importlib.util
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from quart_support import client, cookie, make_app, serving, sid_of

from sessionward import ManualClock
from sessionward.stores.memory import MemoryStore

EXAMPLE = Path(__file__).parents[2] / "examples" / "quart_app.py"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
FORM = {"content-type": "application/x-www-form-urlencoded"}


def load_example() -> ModuleType:
    """Import examples/quart_app.py as a module."""
    spec = importlib.util.spec_from_file_location("quart_example_app", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def raw_status(base_url: str, target: bytes) -> int:
    """Send ``GET target`` byte for byte (no client normalizes it) and return the status."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head = connection.recv(64)
    return int(head.split(b" ", 2)[1])


def test_under_uvicorn_login_clear_and_the_firewall_hold(clock: ManualClock) -> None:
    class ClosingStore(MemoryStore):
        closed = 0

        async def close(self) -> None:
            ClosingStore.closed += 1

    app = make_app(ClosingStore(), clock=clock)
    with serving(app) as base_url, httpx.Client(base_url=base_url) as browser:
        sid = sid_of(browser.post("/login", params={"user": "carol"}))
        assert sid
        browser.cookies.clear()
        assert browser.get("/whoami", headers=cookie(sid)).json() == {"user": "carol", "data": {}}
        assert raw_status(base_url, b"/x/%2e%2e/whoami") == 400
        assert raw_status(base_url, b"/nowhere") == 404
        out = browser.post("/clear", headers=cookie(sid))
        assert sid_of(out) == ""
        assert browser.get("/whoami", headers=cookie(sid)).json()["user"] is None
    assert ClosingStore.closed == 1  # the store closes with the app's lifespan


async def test_example_form_login_with_csrf_token_and_logout(clock: ManualClock) -> None:
    example = load_example()
    app = example.create_app(
        {"SESSIONWARD_STORE": MemoryStore(), "SESSIONWARD_COOKIE_SECURE": False, "SESSIONWARD_TEST_CLOCK": clock}
    )
    browser = client(app)
    first = await browser.get("/")
    assert sid_of(first) is None  # the login form makes no session…
    visitor = sid_of(first, "sid-csrf")  # …its token rides in the pre-session cookie
    match = TOKEN.search(await first.get_data(as_text=True))
    assert visitor
    assert match
    token = match.group(1)
    visitor_cookie = {"cookie": f"sid-csrf={visitor}", **FORM}
    tokenless = await browser.post("/login", data="username=alice&password=alice-demo-pass", headers=visitor_cookie)
    assert tokenless.status_code == 403  # a form post without the token is refused
    wrong = await browser.post(
        "/login", data=f"username=alice&password=nope&csrf_token={token}", headers=visitor_cookie
    )
    assert wrong.status_code == 401
    assert sid_of(wrong) is None
    right = await browser.post(
        "/login", data=f"username=alice&password=alice-demo-pass&csrf_token={token}", headers=visitor_cookie
    )
    assert right.status_code == 303
    sid = sid_of(right)
    assert sid
    page = await browser.get("/", headers=cookie(sid))
    text = await page.get_data(as_text=True)
    assert "Signed in as alice." in text
    logout_token = TOKEN.search(text)
    assert logout_token
    out = await browser.post("/logout", data=f"csrf_token={logout_token.group(1)}", headers={**cookie(sid), **FORM})
    assert out.status_code == 303
    assert sid_of(out) == ""
    assert "Signed in" not in await (await browser.get("/", headers=cookie(sid))).get_data(as_text=True)


USER_APP = """
from __future__ import annotations

from quart import Quart, session

from sessionward.quart import QuartSession, SessionWard, current_session

app = Quart(__name__)
app.config["SESSIONWARD_STORE"] = "memory://"
SessionWard(app)


@app.post("/login")
async def login() -> dict[str, str | None]:
    current: QuartSession = current_session()
    await current.login("alice")
    session["visits"] = 1
    return {"user": current.user}


@app.get("/devices")
async def devices() -> list[dict[str, object]]:
    return [info.as_dict() for info in await current_session().list_sessions()]


@app.post("/logout")
async def logout() -> dict[str, bool]:
    session.clear()
    return {"ok": True}
"""


@pytest.mark.slow
def test_a_typed_user_app_passes_mypy_strict(tmp_path: Path) -> None:
    source = tmp_path / "user_app.py"
    source.write_text(textwrap.dedent(USER_APP))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), str(source)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
