"""A small Litestar app on the sessionward plugin, shared by the Litestar tests.

Its handlers use every way Litestar offers to reach a session: the ``session``
dependency, ``request.session``, ``request.set_session()`` and ``request.clear_session()``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import uvicorn
from litestar import Litestar, Request, get, post, websocket
from litestar.connection import WebSocket
from litestar.testing import AsyncTestClient
from litestar.types import Empty

from sessionward import ManualClock, SessionPolicy
from sessionward.core.errors import SessionDataError, StoreUnavailableError
from sessionward.core.events import EventBus
from sessionward.core.records import EndReason, SessionRecord, Tombstone
from sessionward.litestar import (
    SessionDep,
    SessionwardConfig,
    SessionwardPlugin,
    get_session,
    requires_login,
    requires_recent_authentication,
)
from sessionward.stores.base import SessionStore
from sessionward.stores.memory import MemoryStore
from support.helpers import plain_http_policy

Req = Request[Any, Any, Any]


@dataclass
class Preferences:
    """A data class handed to ``set_session`` (Litestar encodes it)."""

    theme: str
    size: int


@post("/login", status_code=200)
async def login(request: Req, session: SessionDep) -> dict[str, Any]:
    await session.login(request.query_params.get("user", "alice"))
    return {"user": session.user}


@post("/logout", status_code=200)
async def logout(session: SessionDep) -> dict[str, Any]:
    await session.logout()
    return {"ok": True}


@post("/clear", status_code=200)
async def clear(request: Req) -> dict[str, Any]:
    request.clear_session()
    return {"session_is_empty": cast(object, request.session) is Empty}


@post("/clear-then-set", status_code=200)
async def clear_then_set(request: Req) -> dict[str, Any]:
    request.clear_session()
    request.set_session({"cart": ["pen"]})
    request.session["note"] = "after"
    return {"ok": True}


@post("/clear-then-login", status_code=200)
async def clear_then_login(request: Req, session: SessionDep) -> dict[str, Any]:
    request.clear_session()
    await session.login("bob")
    return {"user": session.user}


@post("/set", status_code=200)
async def set_values(request: Req) -> dict[str, Any]:
    for key, value in request.query_params.items():
        request.session[key] = value
    return {"ok": True}


@post("/replace", status_code=200)
async def replace(request: Req) -> dict[str, Any]:
    request.set_session(await request.json())
    return {"data": dict(get_session(request))}


@post("/replace-with-model", status_code=200)
async def replace_with_model(request: Req) -> dict[str, Any]:
    request.set_session(Preferences(theme="dark", size=3))
    return {"data": dict(get_session(request))}


@post("/replace-with-bad-value", status_code=200)
async def replace_with_bad_value(request: Req) -> dict[str, Any]:
    if request.query_params.get("caught") == "false":
        request.set_session({"when": datetime(2024, 1, 1, tzinfo=UTC)})
    try:
        request.set_session({"fresh": 1, "when": datetime(2024, 1, 1, tzinfo=UTC)})
    except SessionDataError as error:
        return {"error": str(error), "data": dict(get_session(request))}
    return {"error": None}


@post("/rotate-after-revocation", status_code=200)
async def rotate_after_revocation(session: SessionDep) -> dict[str, Any]:
    # A racing request (an admin's revocation) ends the session while this one runs.
    exchange = session.exchange
    record = exchange.record
    assert record is not None
    tomb = exchange.engine.plan_end(record.key, record.meta.user, EndReason.REVOKED, exchange.now)
    await exchange.manager.store.end_following(tomb, exchange.now)
    await session.rotate_id()
    return {"ok": True}


@post("/signin", status_code=200)
async def signin(request: Req, session: SessionDep) -> dict[str, Any]:
    user = request.query_params["user"]
    await session.throttle.check(user)
    await session.throttle.failed(user)
    return {"ok": False}


@get("/whoami")
async def whoami(request: Req) -> dict[str, Any]:
    session = get_session(request)
    return {"user": session.user, "data": dict(request.session)}


@get("/me", guards=[requires_login])
async def me(session: SessionDep) -> dict[str, Any]:
    return {"user": session.user}


@get("/account", guards=[requires_recent_authentication])
async def account(session: SessionDep) -> dict[str, Any]:
    return {"user": session.user}


@websocket("/ws")
async def socket_handler(socket: WebSocket[Any, Any, Any], session: SessionDep) -> None:
    await socket.accept()
    try:
        socket.set_session({"changed": True})
    except Exception as error:
        await socket.send_json({"user": session.user, "set_session": type(error).__name__})
    await socket.close()


HANDLERS = [
    login,
    logout,
    clear,
    clear_then_set,
    clear_then_login,
    set_values,
    replace,
    replace_with_model,
    replace_with_bad_value,
    rotate_after_revocation,
    signin,
    whoami,
    me,
    account,
    socket_handler,
]


def make_app(
    store: SessionStore | None = None,
    *,
    clock: ManualClock,
    policy: SessionPolicy | None = None,
    events: EventBus | None = None,
    debug: bool = False,
) -> tuple[Litestar, SessionwardPlugin]:
    """Return the test app on ``store`` (a fresh memory store by default), and its plugin."""
    config = SessionwardConfig(
        store=store if store is not None else MemoryStore(),
        policy=policy or plain_http_policy(),
        clock=clock,
        events=events,
    )
    plugin = SessionwardPlugin(config)
    # No logging_config: Litestar would reconfigure the process's logging for every app made.
    return Litestar(HANDLERS, plugins=[plugin], debug=debug, logging_config=None), plugin


def client(app: Litestar) -> AsyncTestClient[Litestar]:
    """Litestar's own async test client for ``app`` (enter it: that runs the app's lifespan)."""
    return AsyncTestClient(app, base_url="http://testserver.local")


def sid_of(response: httpx.Response, name: str = "sid") -> str | None:
    """The value ``response`` sets for the session cookie ('' when it clears it), or None."""
    for header in response.headers.get_list("set-cookie"):
        cookie_name, _, rest = header.partition("=")
        if cookie_name == name:
            return rest.split(";", 1)[0]
    return None


def cookie(sid: str | None) -> dict[str, str]:
    """The request headers of a browser holding session cookie ``sid`` (none for ``None``)."""
    return {} if sid is None else {"cookie": f"sid={sid}"}


class DownAtLogin(MemoryStore):
    """A store that goes down when a verb moves a session (a login), as Redis paused mid-request."""

    async def establish(self, record: SessionRecord, **kwargs: Any) -> Any:
        if record.meta.user is not None:
            raise StoreUnavailableError("Redis store unavailable: paused")
        return await super().establish(record, **kwargs)


class DownAtEnd(MemoryStore):
    """A store that goes down when a session is ended (a logout)."""

    async def end_following(self, tombstone: Tombstone, now: float) -> SessionRecord | None:
        raise StoreUnavailableError("Redis store unavailable: paused")


@contextmanager
def serving(app: Litestar) -> Iterator[str]:
    """Serve ``app`` under uvicorn (lifespan on) on a free local port; yield its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", ws="none", http="h11", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:  # readiness, not timing: the server says when it listens
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()
