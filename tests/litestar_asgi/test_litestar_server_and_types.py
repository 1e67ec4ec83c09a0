"""The plugin under a real server, the example app, and a user's app under ``mypy --strict``."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from litestar_support import client, cookie, make_app, serving, sid_of

from sessionward import ManualClock
from sessionward.litestar import SessionwardConfig
from sessionward.stores.memory import MemoryStore
from support.helpers import plain_http_policy

EXAMPLE = Path(__file__).parents[2] / "examples" / "litestar_app.py"


def load_example() -> ModuleType:
    """Import examples/litestar_app.py as a module."""
    spec = importlib.util.spec_from_file_location("litestar_example_app", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its data class and Litestar resolve names through it
    spec.loader.exec_module(module)
    return module


def raw_status(base_url: str, target: bytes) -> int:
    """Send ``GET target`` byte for byte (no client normalizes it) and return the status."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head = connection.recv(64)
    return int(head.split(b" ", 2)[1])


def test_under_uvicorn_login_logout_and_the_firewall_hold(clock: ManualClock) -> None:
    app, _ = make_app(clock=clock)
    with serving(app) as base_url, httpx.Client(base_url=base_url) as browser:
        signed_in = browser.post("/login", params={"user": "carol"})
        sid = sid_of(signed_in)
        assert sid
        browser.cookies.clear()
        assert browser.get("/me", headers=cookie(sid)).json() == {"user": "carol"}
        assert raw_status(base_url, b"/x/%2e%2e/me") == 400
        assert raw_status(base_url, b"/nowhere") == 404
        out = browser.post("/clear", headers=cookie(sid))
        assert sid_of(out) == ""
        assert browser.get("/me", headers=cookie(sid)).status_code == 401


async def test_example_sign_in_throttle_and_logout(clock: ManualClock) -> None:
    example = load_example()
    config = SessionwardConfig(store=MemoryStore(), policy=plain_http_policy(), clock=clock)
    app = example.create_app(config, logging_config=None)
    async with client(app) as browser:
        wrong = await browser.post("/login", json={"name": "alice", "password": "nope"})
        assert wrong.status_code == 401
        assert sid_of(wrong) is None  # a failed sign-in makes no session
        right = await browser.post("/login", json={"name": "alice", "password": "alice-demo-pass"})
        sid = sid_of(right)
        assert sid
        browser.cookies.clear()
        me = await browser.get("/me", headers=cookie(sid))
        assert me.json()["user"] == "alice"
        assert me.json()["data"] == {"theme": "light"}
        await browser.post("/theme/dark", headers=cookie(sid))
        devices = await browser.get("/sessions", headers=cookie(sid))
        assert [device["current"] for device in devices.json()] == [True]
        out = await browser.post("/logout", headers=cookie(sid))
        assert sid_of(out) == ""
        assert (await browser.get("/me", headers=cookie(sid))).status_code == 401


USER_APP = """
from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, get, post

from sessionward import SessionPolicy
from sessionward.litestar import (
    RequestSession,
    SessionDep,
    SessionwardConfig,
    SessionwardPlugin,
    get_session,
    requires_login,
)


@post("/login")
async def login(session: SessionDep) -> dict[str, str | None]:
    await session.login("alice")
    session["visits"] = 1
    return {"user": session.user}


@get("/me", guards=[requires_login])
async def me(request: Request[Any, Any, Any]) -> dict[str, Any]:
    session: RequestSession = get_session(request)
    request.set_session({"seen": True})
    return {"user": session.user, "status": session.status().as_dict()}


@post("/logout")
async def logout(request: Request[Any, Any, Any]) -> None:
    request.clear_session()


plugin = SessionwardPlugin(SessionwardConfig(store="memory://", policy=SessionPolicy.from_env()))
app = Litestar([login, me, logout], plugins=[plugin])
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
