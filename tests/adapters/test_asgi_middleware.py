"""The ASGI middleware: headers, creation policies, 5xx handling, store failures, FastAPI, websockets."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from sessionward import Creation, ManualClock, SessionNotAvailableError
from sessionward.asgi.middleware import SessionMiddleware
from sessionward.core.errors import StoreUnavailableError
from sessionward.core.events import EventBus
from sessionward.core.records import Entry, Update
from sessionward.io.manager import SessionManager
from sessionward.starlette import SessionDep
from sessionward.stores.base import SessionStore
from sessionward.stores.memory import MemoryStore
from support.helpers import ROUTES, Recorder, client_for, make_app, plain_http_policy, set_cookie_value


async def test_request_not_touching_the_session_gets_no_cookie_and_no_vary(clock: ManualClock) -> None:
    app, _ = make_app(MemoryStore(), clock=clock)
    async with client_for(app) as client:
        response = await client.get("/plain")
        assert "set-cookie" not in response.headers
        assert "vary" not in response.headers
        response = await client.get("/whoami")  # reads an empty session: nothing to create
        assert "set-cookie" not in response.headers
        assert response.headers["vary"] == "Cookie"


async def test_first_write_creates_the_session_with_hardened_headers(
    local_store: SessionStore, clock: ManualClock
) -> None:
    app, _ = make_app(local_store, clock=clock)
    async with client_for(app) as client:
        response = await client.post("/set", params={"a": "1"})
        header = response.headers["set-cookie"]
        assert "HttpOnly" in header
        assert "SameSite=Lax" in header
        assert response.headers["cache-control"] == "no-store"
        assert (await client.get("/whoami")).json()["data"] == {"a": "1"}


async def test_server_error_response_saves_nothing(local_store: SessionStore, clock: ManualClock) -> None:
    app, _ = make_app(local_store, clock=clock)
    async with client_for(app) as client:
        response = await client.post("/boom")
        assert response.status_code == 500
        assert "set-cookie" not in response.headers
        await client.post("/set", params={"a": "1"})
        await client.post("/boom")
        assert (await client.get("/whoami")).json()["data"] == {"a": "1"}


async def test_unchanged_request_writes_nothing(clock: ManualClock) -> None:
    class CountingStore(MemoryStore):
        saves = 0

        async def save(self, key: str, update: Update) -> bool:
            CountingStore.saves += 1
            return await super().save(key, update)

    store = CountingStore()
    app, _ = make_app(store, clock=clock)
    async with client_for(app) as client:
        await client.post("/login")
        for _ in range(5):
            await client.get("/whoami")
        assert CountingStore.saves == 0
        await client.post("/incr")
        assert CountingStore.saves == 1


async def test_creation_always_gives_every_visitor_a_session(clock: ManualClock) -> None:
    app, _ = make_app(MemoryStore(), clock=clock, policy=plain_http_policy(creation=Creation.ALWAYS))
    async with client_for(app) as client:
        response = await client.get("/plain")
        assert set_cookie_value(response)
        response = await client.get("/plain")
        assert set_cookie_value(response) is None


async def test_creation_never_creates_only_at_login(clock: ManualClock) -> None:
    app, _ = make_app(MemoryStore(), clock=clock, policy=plain_http_policy(creation=Creation.NEVER))
    async with client_for(app) as client:
        assert set_cookie_value(await client.get("/whoami")) is None
        await client.post("/login")
        await client.post("/incr")
        assert (await client.get("/whoami")).json()["data"] == {"n": 1}


async def test_stateless_neither_reads_nor_writes(clock: ManualClock) -> None:
    store = MemoryStore()
    app, _ = make_app(store, clock=clock, policy=plain_http_policy(creation=Creation.STATELESS))
    async with client_for(app) as client:
        response = await client.post("/set", params={"a": "1"})
        assert set_cookie_value(response) is None
        with pytest.raises(SessionNotAvailableError):
            await client.post("/login")
    assert (await store.stats(clock())).live_sessions == 0


async def test_concurrent_requests_changing_different_keys_both_keep_their_change(
    local_store: SessionStore, clock: ManualClock
) -> None:
    app, _ = make_app(local_store, clock=clock)
    async with client_for(app) as client:
        await client.post("/login")
        await asyncio.gather(*(client.post("/set", params={f"k{i}": str(i)}) for i in range(20)))
        data = (await client.get("/whoami")).json()["data"]
    assert data == {f"k{i}": str(i) for i in range(20)}


class SlowStore(MemoryStore):
    """A real memory store whose loads stall, as a store under overload does."""

    async def load(self, key: str, now: float) -> Entry | None:
        await asyncio.sleep(5)  # longer than the store timeout; the middleware must not wait for it
        return await super().load(key, now)


async def test_store_timeout_gives_503_not_an_anonymous_answer(clock: ManualClock) -> None:
    store = SlowStore()
    recorder = Recorder()
    bus = EventBus()
    bus.subscribe(recorder)
    manager = SessionManager(store, plain_http_policy(), clock=clock, events=bus, store_timeout_s=0.05)
    app = SessionMiddleware(Starlette(routes=ROUTES), manager)
    async with client_for(app) as client:
        await client.post("/login")
        response = await client.get("/whoami")
    assert response.status_code == 503
    assert response.json()["error"] == "session_store_unavailable"
    assert response.headers["retry-after"] == "1"
    assert "store_unavailable" in recorder.names()


async def test_fastapi_dependency_gives_the_session(clock: ManualClock) -> None:
    api = FastAPI()

    @api.post("/count")
    async def count(session: SessionDep) -> dict[str, int]:
        session["n"] = int(session.get("n", 0)) + 1
        return {"n": session["n"]}

    @api.post("/login")
    async def login(session: SessionDep) -> dict[str, str | None]:
        await session.login("alice")
        return {"user": session.user}

    manager = SessionManager(MemoryStore(), plain_http_policy(), clock=clock)
    app = SessionMiddleware(api, manager)
    async with client_for(app) as client:
        assert (await client.post("/count")).json() == {"n": 1}
        assert (await client.post("/login")).json() == {"user": "alice"}
        assert (await client.post("/count")).json() == {"n": 2}


async def test_websocket_sees_the_session_read_only(clock: ManualClock) -> None:
    async def websocket_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"user": websocket.scope["session"].user})
        await websocket.close()

    manager = SessionManager(MemoryStore(), plain_http_policy(), clock=clock)
    app = SessionMiddleware(Starlette(routes=[*ROUTES, WebSocketRoute("/ws", websocket_endpoint)]), manager)
    async with client_for(app) as client:
        await client.post("/login")
        cookie = f"sid={client.cookies['sid']}".encode()
    inbox: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "websocket.connect"})
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return await inbox.get()

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "websocket.close":
            await inbox.put({"type": "websocket.disconnect", "code": 1000})

    scope = {
        "type": "websocket",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"cookie", cookie)],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "scheme": "ws",
        "subprotocols": [],
        "asgi": {"version": "3.0"},
    }
    await app(scope, receive, send)
    texts = [m.get("text") for m in sent if m["type"] == "websocket.send"]
    assert texts == ['{"user":"alice"}']


class DownAtLogin(MemoryStore):
    """A store that goes down when a verb writes (a login), as Redis paused mid-request."""

    async def establish(self, *args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailableError("Redis store unavailable: paused")


async def test_store_outage_during_a_verb_the_handler_does_not_catch_gives_503_not_500(clock: ManualClock) -> None:
    recorder = Recorder()
    bus = EventBus()
    bus.subscribe(recorder)
    manager = SessionManager(DownAtLogin(), plain_http_policy(), clock=clock, events=bus)
    app = SessionMiddleware(Starlette(routes=ROUTES), manager)
    async with client_for(app) as client:
        response = await client.post("/login")
    assert response.status_code == 503
    assert response.json()["error"] == "session_store_unavailable"
    assert response.headers["retry-after"] == "1"
    assert "set-cookie" not in response.headers  # nobody was logged in (or out) by the outage
    assert "store_unavailable" in recorder.names()
