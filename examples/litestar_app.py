"""A Litestar login API on sessionward: run ``uvicorn examples.litestar_app:app``.

Signing in changes the session ID (the pre-login one is dead), failed sign-ins are
throttled (429), ``/me`` and the device list need a signed-in user (401), ending another
device's session needs a recent sign-in (403 ``reauth_required``), and
``request.clear_session()`` logs out for real: the session ends in the store and its
cookie is cleared. The store is ``SESSIONWARD_STORE`` (``memory://`` unless set), and
every ``SESSIONWARD_*`` setting applies. The cookie is ``Secure``: to try it over plain
HTTP on your own machine, start it with ``SESSIONWARD_COOKIE_SECURE=false``::

    curl -si -c jar -H 'content-type: application/json' \\
        -d '{"name": "alice", "password": "alice-demo-pass"}' http://127.0.0.1:8000/login
    curl -s -b jar http://127.0.0.1:8000/me
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from litestar import Litestar, Request, delete, get, post
from litestar.exceptions import ClientException, NotAuthorizedException, NotFoundException
from litestar.params import FromPath, JSONBody

from sessionward.core.errors import LoginRefusedError
from sessionward.litestar import (
    SessionDep,
    SessionwardConfig,
    SessionwardPlugin,
    requires_login,
    requires_recent_authentication,
)

USERS = {"alice": "alice-demo-pass", "bob": "bob-demo-pass"}  # a real app checks password hashes


@dataclass
class Credentials:
    """What a sign-in posts."""

    name: str
    password: str


@post("/login", status_code=200)
async def login(data: JSONBody[Credentials], session: SessionDep) -> dict[str, Any]:
    """Sign in: a new session ID, the pre-login one dead; throttled after repeated failures."""
    await session.throttle.check(data.name)  # LoginThrottledError: 429 with Retry-After
    if not hmac.compare_digest(USERS.get(data.name, "\0"), data.password):
        await session.throttle.failed(data.name)
        raise NotAuthorizedException("wrong name or password")
    await session.throttle.succeeded(data.name)
    try:
        await session.login(data.name)
    except LoginRefusedError:
        raise ClientException("signed in elsewhere already", status_code=409) from None
    session["theme"] = "light"
    return {"user": session.user}


@get("/me", guards=[requires_login])
async def me(session: SessionDep) -> dict[str, Any]:
    """Who is signed in, and how long the session has left."""
    return {"user": session.user, "data": dict(session), "status": session.status().as_dict()}


@post("/theme/{theme:str}", guards=[requires_login], status_code=200)
async def set_theme(theme: FromPath[str], request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Change a value through Litestar's own ``request.session``."""
    request.session["theme"] = theme
    return {"theme": theme}


@get("/sessions", guards=[requires_login])
async def sessions(session: SessionDep) -> list[dict[str, object]]:
    """The signed-in user's devices."""
    return [info.as_dict() for info in await session.list_sessions()]


@delete("/sessions/{handle:str}", guards=[requires_recent_authentication], status_code=200)
async def revoke(handle: FromPath[str], session: SessionDep) -> dict[str, Any]:
    """Sign another device out (needs a sign-in within the re-authentication window)."""
    if not await session.revoke(handle):
        raise NotFoundException("no such session of yours")
    return {"revoked": handle}


@post("/logout", status_code=200)
async def logout(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Sign out the Litestar way: the session ends, server-side, and its cookie goes."""
    request.clear_session()
    return {"user": None}


def create_app(config: SessionwardConfig | None = None, **litestar_options: Any) -> Litestar:
    """Build the app; tests pass their store, policy and clock in ``config``."""
    plugin = SessionwardPlugin(config)
    return Litestar([login, me, set_theme, sessions, revoke, logout], plugins=[plugin], **litestar_options)


app = create_app()
