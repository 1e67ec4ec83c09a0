"""``protect(app, manager)``: every ASGI defence in the right order, the store closed with the app."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionward import ManualClock, SessionManager, protect
from sessionward.starlette import get_session
from sessionward.stores import MemoryStore
from sessionward.testing import plain_http_policy

from .support import starlette_client


class RecordingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def setup(self) -> None:
        self.calls.append("setup")

    async def close(self) -> None:
        self.calls.append("close")


async def _login(request: Request) -> Response:
    await get_session(request).login("alice")
    return JSONResponse({"ok": True})


async def _me(request: Request) -> Response:
    return JSONResponse({"user": get_session(request).user})


def _app(store: MemoryStore, **options: Any) -> Any:
    manager = SessionManager(store, plain_http_policy(), clock=ManualClock(1_700_000_000.0))
    starlette = Starlette(routes=[Route("/login", _login, methods=["POST"]), Route("/me", _me)])
    return protect(starlette, manager, **options)


def test_one_call_installs_sessions_csrf_and_security_headers() -> None:
    with starlette_client(_app(MemoryStore()), base_url="http://127.0.0.1") as client:
        forged = client.post("/login", headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"})
        assert forged.status_code == 403  # CSRF ran (inside the session layer)
        assert forged.headers["x-content-type-options"] == "nosniff"  # headers outermost: on its answer too
        signed_in = client.post("/login", headers={"origin": "http://127.0.0.1"})
        assert signed_in.status_code == 200, signed_in.text
        assert client.get("/me").json() == {"user": "alice"}


def test_the_store_is_closed_when_the_app_shuts_down_and_set_up_only_when_asked() -> None:
    plain, asked = RecordingStore(), RecordingStore()
    with starlette_client(_app(plain)):
        assert plain.calls == []
    with starlette_client(_app(asked, setup_store=True)):
        assert asked.calls == ["setup"]
    assert plain.calls == ["close"]
    assert asked.calls == ["setup", "close"]


def test_each_defence_can_be_left_out() -> None:
    with starlette_client(
        _app(MemoryStore(), csrf=False, add_security_headers=False), base_url="http://127.0.0.1"
    ) as client:
        answer = client.post("/login", headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"})
        assert answer.status_code == 200
        assert "x-content-type-options" not in answer.headers
