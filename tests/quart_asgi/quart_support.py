"""A small Quart app on the sessionward extension, shared by the Quart tests.

Its views reach the session the Quart way, through ``quart.session``, with
:func:`~sessionward.quart.current_session` for the verbs.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from quart import Quart, render_template_string, request, session
from quart.typing import TestClientProtocol
from quart.wrappers import Response

from sessionward import ManualClock, SessionPolicy
from sessionward.core.errors import StoreUnavailableError
from sessionward.core.events import EventBus
from sessionward.core.records import EndReason, SessionRecord, Tombstone
from sessionward.quart import SessionWard, current_session
from sessionward.stores.base import SessionStore
from sessionward.stores.memory import MemoryStore


def make_app(
    store: SessionStore | None = None,
    *,
    clock: ManualClock,
    policy: SessionPolicy | None = None,
    events: EventBus | None = None,
    config: dict[str, Any] | None = None,
) -> Quart:
    """Return the test app on ``store`` (a fresh memory store by default), over plain HTTP."""
    app = Quart(__name__)
    app.config["SESSIONWARD_COOKIE_SECURE"] = False
    app.config.update(config or {})
    SessionWard(app, store=store if store is not None else MemoryStore(), policy=policy, clock=clock, events=events)

    @app.post("/login")
    async def login() -> dict[str, Any]:
        await current_session().login(request.args.get("user", "alice"))
        return {"user": current_session().user}

    @app.post("/logout")
    async def logout() -> dict[str, Any]:
        await current_session().logout()
        return {"ok": True}

    @app.post("/clear")
    async def clear() -> dict[str, Any]:
        session.clear()
        return {"data": dict(session)}

    @app.post("/clear-then-write")
    async def clear_then_write() -> dict[str, Any]:
        session.clear()
        session["cart"] = ["pen"]
        return {"ok": True}

    @app.post("/clear-then-login")
    async def clear_then_login() -> dict[str, Any]:
        session.clear()
        await current_session().login("bob")
        return {"user": current_session().user}

    @app.post("/set")
    async def set_values() -> dict[str, Any]:
        for key, value in request.args.items():
            session[key] = value
        return {"ok": True}

    @app.get("/whoami")
    async def whoami() -> dict[str, Any]:
        return {"user": current_session().user, "data": dict(session)}

    @app.get("/status")
    async def status() -> dict[str, Any]:
        return current_session().status().as_dict()

    @app.get("/sessions")
    async def sessions() -> list[dict[str, object]]:
        return [info.as_dict() for info in await current_session().list_sessions()]

    @app.post("/revoke/<handle>")
    async def revoke(handle: str) -> dict[str, Any]:
        return {"revoked": await current_session().revoke(handle)}

    @app.post("/revoke-others")
    async def revoke_others() -> dict[str, Any]:
        return {"ended": await current_session().revoke_others(EndReason.PASSWORD_CHANGED)}

    @app.post("/rotate-after-revocation")
    async def rotate_after_revocation() -> dict[str, Any]:
        # A racing request (an admin's revocation) ends the session while this one runs.
        exchange = current_session().exchange
        record = exchange.record
        assert record is not None
        tomb = exchange.engine.plan_end(record.key, record.meta.user, EndReason.REVOKED, exchange.now)
        await exchange.manager.store.end_following(tomb, exchange.now)
        await current_session().rotate_id()
        return {"ok": True}

    @app.post("/signin")
    async def signin() -> dict[str, Any]:
        user = request.args["user"]
        await current_session().throttle.check(user)
        await current_session().throttle.failed(user)
        return {"ok": False}

    @app.get("/form")
    async def form() -> str:
        return await render_template_string('<input name="csrf_token" value="{{ csrf_token() }}">')

    return app


def client(app: Quart) -> TestClientProtocol:
    """Quart's own test client, without a cookie jar: each request says which cookie it sends."""
    return app.test_client(use_cookies=False)


def sid_of(response: Response | httpx.Response, name: str = "sid") -> str | None:
    """The value ``response`` sets for the session cookie ('' when it clears it), or None."""
    if isinstance(response, httpx.Response):
        headers = response.headers.get_list("set-cookie")
    else:
        headers = response.headers.getlist("set-cookie")
    for header in headers:
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
def serving(app: Quart) -> Iterator[str]:
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
