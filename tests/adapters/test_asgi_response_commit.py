"""When the ASGI middleware commits: after the handler returns, never delaying the client.

A commit that writes is made from the middleware's own frame once the application has
handed over its whole response (so the store is not awaited under the application's
suspended call stack), yet background work after the response never holds it back, a
streamed response is committed before its first chunk, and a failing application gets
the server's own 500 rather than half a response.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from sessionward import ManualClock
from sessionward.asgi.middleware import SessionMiddleware
from sessionward.core.errors import StoreUnavailableError
from sessionward.core.records import SessionRecord, Update
from sessionward.io.manager import SessionManager
from sessionward.starlette import get_session
from sessionward.stores.memory import MemoryStore
from support.helpers import plain_http_policy

Message = MutableMapping[str, Any]
ASGIApp = Callable[..., Awaitable[None]]


def scope(method: str, target: str, cookie: bytes | None = None) -> dict[str, Any]:
    path, _, query = target.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},  # 2.4: no listening for a disconnect
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"cookie", cookie)] if cookie else [],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class Recorder(list[Message]):
    """The server's ``send``: keeps every message the middleware sends."""

    async def __call__(self, message: Message) -> None:
        self.append(message)


def session_cookie(start: Message) -> bytes:
    value = next(v for k, v in start["headers"] if k == b"set-cookie")
    return bytes(value.split(b";", 1)[0])


async def write(request: Request) -> Response:
    get_session(request)["n"] = int(request.query_params.get("n", "1"))
    return JSONResponse({"ok": True})


def wrapped(store: MemoryStore, clock: ManualClock, app: ASGIApp) -> SessionMiddleware:
    return SessionMiddleware(app, SessionManager(store, plain_http_policy(), clock=clock))


async def stored_n(store: MemoryStore, clock: ManualClock, cookie: bytes) -> object:
    from sessionward.core.ids import storage_key

    entry = await store.load(storage_key(cookie.split(b"=", 1)[1].decode()), clock())
    assert isinstance(entry, SessionRecord)
    return entry.data.get("n")


async def test_a_write_is_committed_after_the_handler_has_returned(clock: ManualClock) -> None:
    handler_returned = False
    saved_after_return: list[bool] = []

    class WatchingStore(MemoryStore):
        async def save(self, key: str, update: Update) -> bool:
            saved_after_return.append(handler_returned)
            return await super().save(key, update)

    store = WatchingStore()
    starlette = Starlette(routes=[Route("/write", write, methods=["POST"])])

    async def watched(s: dict[str, Any], r: Callable[[], Awaitable[Message]], send: Any) -> None:
        nonlocal handler_returned
        handler_returned = False
        await starlette(s, r, send)
        handler_returned = True

    app = wrapped(store, clock, watched)
    sent = send = Recorder()
    await app(scope("POST", "/write"), receive, send)
    cookie = session_cookie(sent[0])
    sent.clear()
    await app(scope("POST", "/write?n=2", cookie), receive, send)
    assert saved_after_return == [True]
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert await stored_n(store, clock, cookie) == 2


async def test_background_work_after_the_response_does_not_hold_it_back(clock: ManualClock) -> None:
    release = asyncio.Event()
    background_done = asyncio.Event()

    async def slow_background() -> None:
        await release.wait()
        background_done.set()

    async def write_then_work(request: Request) -> Response:
        get_session(request)["n"] = 7
        return JSONResponse({"ok": True}, background=BackgroundTask(slow_background))

    store = MemoryStore()
    app = wrapped(store, clock, Starlette(routes=[Route("/w", write_then_work, methods=["POST"])]))
    body_sent = asyncio.Event()
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body":
            body_sent.set()

    call = asyncio.ensure_future(app(scope("POST", "/w"), receive, send))
    await asyncio.wait_for(body_sent.wait(), timeout=5)
    assert not background_done.is_set()  # the client has its response; the work is still going
    assert await stored_n(store, clock, session_cookie(sent[0])) == 7
    release.set()
    await asyncio.wait_for(call, timeout=5)
    assert background_done.is_set()


async def test_a_streamed_response_is_committed_before_its_first_chunk(clock: ManualClock) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"one,"
        yield b"two"

    async def stream(request: Request) -> Response:
        get_session(request)["n"] = 3
        return StreamingResponse(chunks())

    store = MemoryStore()
    app = wrapped(store, clock, Starlette(routes=[Route("/s", stream)]))
    sent: list[Message] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            # By the first chunk the session is written and its cookie is in the start.
            assert await stored_n(store, clock, session_cookie(sent[0])) == 3
        sent.append(message)

    await app(scope("GET", "/s"), receive, send)
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"one,two"


async def test_an_application_failing_before_its_body_leaves_the_answer_to_the_server(clock: ManualClock) -> None:
    async def half(s: dict[str, Any], r: Callable[[], Awaitable[Message]], send: Any) -> None:
        if s["type"] != "http":
            return
        from sessionward.starlette import get_session as session_of

        session_of(Request(s))["n"] = 9
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("handler crashed mid-response")

    store = MemoryStore()
    app = wrapped(store, clock, half)
    sent = send = Recorder()
    with pytest.raises(RuntimeError, match="mid-response"):
        await app(scope("POST", "/x"), receive, send)
    assert sent == []  # nothing started: the server can still answer 500
    assert store.sync._live == {}  # and nothing was created or saved


async def test_an_application_failing_after_its_response_still_delivers_it(clock: ManualClock) -> None:
    async def whole_then_fail(s: dict[str, Any], r: Callable[[], Awaitable[Message]], send: Any) -> None:
        from sessionward.starlette import get_session as session_of

        session_of(Request(s))["n"] = 5
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        raise RuntimeError("cleanup after the response failed")

    store = MemoryStore()
    app = wrapped(store, clock, whole_then_fail)
    sent = send = Recorder()
    with pytest.raises(RuntimeError, match="cleanup"):
        await app(scope("POST", "/x"), receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert await stored_n(store, clock, session_cookie(sent[0])) == 5


async def test_a_store_outage_while_committing_a_held_response_gives_503(clock: ManualClock) -> None:
    class FailingSaves(MemoryStore):
        async def save(self, key: str, update: Update) -> bool:
            raise StoreUnavailableError("Redis store unavailable: connection refused")

    store = FailingSaves()
    app = wrapped(store, clock, Starlette(routes=[Route("/write", write, methods=["POST"])]))
    sent = send = Recorder()
    await app(scope("POST", "/write"), receive, send)
    cookie = session_cookie(sent[0])
    sent.clear()
    await app(scope("POST", "/write?n=2", cookie), receive, send)
    assert sent[0]["status"] == 503
    assert len(sent) == 2  # the 503's start and body; the application's response is dropped
    assert await stored_n(store, clock, cookie) == 1


async def test_a_response_with_nothing_to_write_starts_at_once(clock: ManualClock) -> None:
    started_before_body: list[bool] = []
    sent: list[Message] = []

    async def reader(s: dict[str, Any], r: Callable[[], Awaitable[Message]], send: Any) -> None:
        if s["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        started_before_body.append(bool(sent))
        await send({"type": "http.response.body", "body": b"read only"})

    app = wrapped(MemoryStore(), clock, reader)

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope("GET", "/r"), receive, send)
    assert started_before_body == [True]
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
