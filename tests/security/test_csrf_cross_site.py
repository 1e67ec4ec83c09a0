"""Cross-site request forgery: forged form posts and fetches are refused with 403 (F15).

The attacker's page on another site makes the victim's browser send a request that
carries the victim's session cookie. The origin check (Fetch Metadata, then ``Origin``)
refuses it; for HTML forms the synchronizer token refuses it even where a browser sends
neither header. Same-origin requests and non-browser clients (no such headers) pass.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from sessionward import ConfigError, EventBus, ManualClock
from sessionward.asgi.csrf import CsrfMiddleware
from sessionward.asgi.middleware import SessionMiddleware
from sessionward.core.csrf import csrf_token
from sessionward.io.manager import SessionManager
from sessionward.starlette import get_session
from sessionward.stores.memory import MemoryStore
from support.helpers import Recorder, plain_http_policy

SITE = "http://bank.example"
EVIL = "https://evil.example"
CROSS_SITE_FORM = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate", "origin": EVIL}
CROSS_SITE_FETCH = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "cors", "origin": EVIL}
SAME_ORIGIN = {"sec-fetch-site": "same-origin", "origin": SITE}


class Bank:
    """A small app behind the CSRF and session middleware, counting what reaches it."""

    def __init__(self, clock: ManualClock, **csrf: Any) -> None:
        self.reached: list[str] = []
        self.recorder = Recorder()
        events = EventBus()
        events.subscribe(self.recorder)
        self.manager = SessionManager(MemoryStore(), plain_http_policy(), clock=clock, events=events)
        routes = [
            Route("/login", self.login, methods=["POST"]),
            Route("/token", self.token),
            Route("/cart", self.cart, methods=["POST"]),
            Route("/transfer", self.transfer, methods=["POST"]),
            Route("/api/transfer", self.api_transfer, methods=["POST", "PUT", "PATCH", "DELETE"]),
            Route("/hooks/payment", self.api_transfer, methods=["POST"]),
            Route("/search", self.search),
            WebSocketRoute("/ws", self.ws),
        ]
        self.app = SessionMiddleware(CsrfMiddleware(Starlette(routes=routes), self.manager, **csrf), self.manager)

    async def login(self, request: Request) -> Response:
        await get_session(request).login("alice")
        return JSONResponse({"ok": True})

    async def token(self, request: Request) -> Response:
        return PlainTextResponse(csrf_token(get_session(request)))

    async def cart(self, request: Request) -> Response:
        get_session(request)["cart"] = "book"
        return JSONResponse({"ok": True})

    async def transfer(self, request: Request) -> Response:
        async with request.form() as form:
            self.reached.append("transfer")
            return JSONResponse({key: value for key, value in form.items() if isinstance(value, str)})

    async def api_transfer(self, request: Request) -> Response:
        self.reached.append("api")
        return JSONResponse({"body": (await request.body()).decode()})

    async def search(self, request: Request) -> Response:
        self.reached.append("search")
        return JSONResponse({"ok": True})

    async def ws(self, websocket: WebSocket) -> None:
        await websocket.accept()
        self.reached.append("ws")
        await websocket.close()

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=SITE)


async def logged_in(bank: Bank, client: httpx.AsyncClient) -> str:
    """Log in and return the session's form token."""
    assert (await client.post("/login")).status_code == 200
    return (await client.get("/token")).text


# -- the origin check ----------------------------------------------------------------------


async def test_cross_site_form_post_is_refused(clock: ManualClock) -> None:
    bank = Bank(clock)
    async with bank.client() as victim:
        token = await logged_in(bank, victim)
        # Even with a valid token (say, leaked), a cross-site post is refused outright.
        response = await victim.post(
            "/transfer", data={"to": "mallory", "amount": "1000", "csrf_token": token}, headers=CROSS_SITE_FORM
        )
    assert response.status_code == 403
    assert response.json() == {"error": "csrf_refused", "reason": "cross_site"}
    assert bank.reached == []


async def test_cross_site_fetch_is_refused(clock: ManualClock) -> None:
    bank = Bank(clock)
    async with bank.client() as victim:
        await logged_in(bank, victim)
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = await victim.request(method, "/api/transfer", json={"to": "mallory"}, headers=CROSS_SITE_FETCH)
            assert response.status_code == 403, method
            assert response.json()["reason"] == "cross_site"
    assert bank.reached == []


async def test_foreign_origin_without_fetch_metadata_is_refused(clock: ManualClock) -> None:
    bank = Bank(clock)
    async with bank.client() as victim:
        await logged_in(bank, victim)
        for origin in (
            EVIL,
            "null",
            "http://bank.example.evil.example",
            "https://bank.example",
            "http://bank.example:8080",
        ):
            response = await victim.post("/api/transfer", json={}, headers={"origin": origin})
            assert response.status_code == 403, origin
            assert response.json()["reason"] == "origin_mismatch"
    assert bank.reached == []


async def test_same_site_sibling_is_refused_unless_trusted(clock: ManualClock) -> None:
    sibling = {"sec-fetch-site": "same-site", "origin": "http://blog.bank.example"}
    bank = Bank(clock)
    async with bank.client() as client:
        response = await client.post("/api/transfer", json={}, headers=sibling)
    assert (response.status_code, response.json()["reason"]) == (403, "same_site")
    trusting = Bank(clock, trusted_origins=("http://blog.bank.example",))
    async with trusting.client() as client:
        assert (await client.post("/api/transfer", json={}, headers=sibling)).status_code == 200
        cross = await client.post("/api/transfer", json={}, headers={**sibling, "sec-fetch-site": "cross-site"})
        assert cross.status_code == 200  # a trusted origin may be on another site altogether


async def test_unknown_fetch_metadata_value_is_refused(clock: ManualClock) -> None:
    bank = Bank(clock)
    async with bank.client() as client:
        response = await client.post("/api/transfer", json={}, headers={"sec-fetch-site": "weird"})
    assert response.json()["reason"] == "fetch_metadata_invalid"


async def test_same_origin_fetch_and_user_navigation_pass_without_token(clock: ManualClock) -> None:
    bank = Bank(clock)
    async with bank.client() as client:
        await logged_in(bank, client)
        assert (await client.post("/api/transfer", json={"a": 1}, headers=SAME_ORIGIN)).status_code == 200
        assert (await client.post("/api/transfer", json={}, headers={"origin": SITE})).status_code == 200
        assert (await client.post("/api/transfer", json={}, headers={"sec-fetch-site": "none"})).status_code == 200
    assert bank.reached == ["api", "api", "api"]


async def test_non_browser_client_without_origin_headers_passes(clock: ManualClock) -> None:
    bank = Bank(clock)
    async with bank.client() as script:
        await logged_in(bank, script)
        response = await script.post(
            "/api/transfer", content=b'{"to": "bob"}', headers={"content-type": "application/json"}
        )
    assert response.status_code == 200
    assert response.json() == {"body": '{"to": "bob"}'}  # the body reached the app intact


async def test_safe_methods_are_never_checked(clock: ManualClock) -> None:
    bank = Bank(clock)
    async with bank.client() as client:
        assert (await client.get("/search", headers=CROSS_SITE_FORM)).status_code == 200


async def test_exempt_path_is_not_checked(clock: ManualClock) -> None:
    bank = Bank(clock, exempt_paths=("/hooks/",))
    async with bank.client() as client:
        assert (await client.post("/hooks/payment", data={"x": "1"}, headers=CROSS_SITE_FORM)).status_code == 200
        assert (await client.post("/api/transfer", json={}, headers=CROSS_SITE_FETCH)).status_code == 403


async def test_refusal_is_an_audited_event_naming_the_session_but_not_its_id(clock: ManualClock) -> None:
    bank = Bank(clock)
    async with bank.client() as victim:
        await logged_in(bank, victim)
        raw_id = victim.cookies["sid"]
        await victim.post("/api/transfer", json={}, headers=CROSS_SITE_FETCH)
    refused = [event for event in bank.recorder.events if event.name.value == "csrf_refused"]
    assert len(refused) == 1
    assert (refused[0].reason, refused[0].user, refused[0].path) == ("cross_site", "alice", "/api/transfer")
    assert refused[0].handle is not None
    assert raw_id not in refused[0].to_json().decode()


# -- cross-site WebSocket hijacking --------------------------------------------------------


async def websocket_handshake(app: Any, headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bank.example"), *headers],
        "client": ("192.0.2.1", 50000),
        "server": ("bank.example", 80),
        "subprotocols": [],
    }
    incoming: list[dict[str, Any]] = [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_cross_site_websocket_hijacking_is_refused(clock: ManualClock) -> None:
    bank = Bank(clock)
    refused = await websocket_handshake(bank.app, [(b"origin", EVIL.encode())])
    assert refused == [{"type": "websocket.close", "code": 4403, "reason": "csrf_refused"}]
    accepted = await websocket_handshake(bank.app, [(b"origin", SITE.encode())])
    assert accepted[0]["type"] == "websocket.accept"
    assert bank.reached == ["ws"]


# -- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize("origin", ["https://app.example/path", "app.example", "null", "ftp://app.example"])
def test_trusted_origin_must_be_an_origin(clock: ManualClock, origin: str) -> None:
    with pytest.raises(ConfigError, match=r"csrf\.trusted_origins"):
        Bank(clock, trusted_origins=(origin,))


def test_exempt_path_must_be_a_path(clock: ManualClock) -> None:
    with pytest.raises(ConfigError, match=r"csrf\.exempt_paths"):
        Bank(clock, exempt_paths=("hooks/",))
