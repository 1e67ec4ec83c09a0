"""The store goes down while a handler runs a verb it does not catch: 503, never 500, no session lost.

Every verb that reaches the store (``login``, ``logout``, ``rotate_id``, ``elevate``,
``list_sessions``, ``revoke`` by handle, ``revoke_others``) on every edge (Starlette and
FastAPI behind ``protect``, a Flask view with ``SessionWard``, a plain WSGI app behind
``sessionward.sync.SessionMiddleware``). The outage is real: the store is a private
redis-server reached through a TCP proxy, and the handler, after its session has loaded
and just before the verb, makes the proxy reset every connection and refuse new ones
(a Redis that went down). The handler catches nothing, as most handlers do.

Each answer must be the middleware's 503 (JSON, ``Retry-After``, no cookie), never a 500,
and once the store is back the browser's session, and its other device's, work as before:
the verb never reached the store, so nothing may have changed.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import pytest
from fastapi import FastAPI
from flask import Flask, jsonify, request, session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from werkzeug.test import Client
from werkzeug.wrappers import Request as WsgiRequest
from werkzeug.wrappers import Response as WsgiResponse

from faults.faults import Refuse
from faults.targets import through, upstream_of
from faults.tcp_proxy import TcpProxy
from sessionward import ManualClock, SessionManager, protect
from sessionward._sync.stores.redis import RedisStore as SyncRedisStore
from sessionward.core.errors import STORE_UNAVAILABLE_MESSAGE
from sessionward.core.events import EventBus, EventName
from sessionward.flask import FlaskSession, SessionWard
from sessionward.starlette import SessionDep, get_session
from sessionward.stores.redis import RedisStore
from sessionward.sync import RequestSession as SyncSession
from sessionward.sync import SessionManager as SyncManager
from sessionward.sync import SessionMiddleware as WsgiSessionMiddleware
from sessionward.testing import plain_http_policy

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from sessionward.io.exchange import RequestSession

pytestmark = pytest.mark.redis

COOKIE = "sid"
USER = "alice"
ORIGIN = "http://testserver"
STORE_TIMEOUT_S = 0.3
"""A refused connection fails at once; were the outage to hang instead, the 503 still comes soon."""
VERBS = ("login", "logout", "rotate_id", "elevate", "list_sessions", "revoke", "revoke_others")
UNAVAILABLE = {"error": "session_store_unavailable", "message": STORE_UNAVAILABLE_MESSAGE}


@dataclass(frozen=True)
class Answer:
    """What a browser sees of one response."""

    status: int
    body: Any
    headers: dict[str, str]
    cookie: str | None
    """The session cookie the response sets ('' when it clears it), or ``None``."""


def session_cookie(set_cookies: Iterable[str]) -> str | None:
    for header in set_cookies:
        name, _, rest = header.partition("=")
        if name.strip() == COOKIE:
            return rest.split(";", 1)[0]
    return None


def cookie_header(sid: str | None) -> dict[str, str]:
    # Same origin, as a browser sends with a fetch(): the CSRF check lets it through.
    return {"Origin": ORIGIN} | ({"Cookie": f"{COOKIE}={sid}"} if sid else {})


# -- the verbs, as a handler calls them: no try, no except ---------------------------------


async def run_async_verb(session: RequestSession, verb: str, handle: str) -> object:
    if verb == "login":
        await session.login(USER)  # signing in again (a step-up), as the same user
    elif verb == "revoke":
        return await session.revoke(handle)
    elif verb == "list_sessions":
        return len(await session.list_sessions())
    else:
        await getattr(session, verb)()
    return None


def run_sync_verb(session: SyncSession | FlaskSession, verb: str, handle: str) -> object:
    if verb == "login":
        session.login(USER)
    elif verb == "revoke":
        return session.revoke(handle)
    elif verb == "list_sessions":
        return len(session.list_sessions())
    else:
        getattr(session, verb)()
    return None


def devices_of(infos: Iterable[Any]) -> list[dict[str, object]]:
    return [{"handle": info.handle, "current": info.current} for info in infos]


# -- the apps: /login, /whoami, /devices, and /verb/<verb> that first takes the store down --


def starlette_app(outage: Refuse) -> Starlette:
    async def login(request: Request) -> Response:
        await get_session(request).login(USER)
        return JSONResponse({"user": USER})

    async def whoami(request: Request) -> Response:
        return JSONResponse({"user": get_session(request).user})

    async def devices(request: Request) -> Response:
        return JSONResponse(devices_of(await get_session(request).list_sessions()))

    async def verb(request: Request) -> Response:
        session = get_session(request)
        outage.begin()
        result = await run_async_verb(session, request.path_params["verb"], request.query_params.get("handle", ""))
        return JSONResponse({"result": result})

    routes = [
        Route("/login", login, methods=["POST"]),
        Route("/whoami", whoami),
        Route("/devices", devices),
        Route("/verb/{verb}", verb, methods=["POST"]),
    ]
    return Starlette(routes=routes)


def fastapi_app(outage: Refuse) -> FastAPI:
    api = FastAPI()

    @api.post("/login")
    async def login(session: SessionDep) -> dict[str, str]:
        await session.login(USER)
        return {"user": USER}

    @api.get("/whoami")
    async def whoami(session: SessionDep) -> dict[str, str | None]:
        return {"user": session.user}

    @api.get("/devices")
    async def devices(session: SessionDep) -> list[dict[str, object]]:
        return devices_of(await session.list_sessions())

    @api.post("/verb/{verb}")
    async def verb(verb: str, session: SessionDep, handle: str = "") -> dict[str, object]:
        outage.begin()
        return {"result": await run_async_verb(session, verb, handle)}

    return api


def flask_app(store: SyncRedisStore, clock: ManualClock, outage: Refuse, events: EventBus | None = None) -> Flask:
    app = Flask(__name__)
    SessionWard(
        app, store=store, policy=plain_http_policy(), clock=clock, store_timeout_s=STORE_TIMEOUT_S, events=events
    )

    def ward() -> FlaskSession:
        assert isinstance(session, FlaskSession)  # flask.session, as sessionward makes it
        return session

    @app.post("/login")
    def login() -> Any:
        ward().login(USER)
        return jsonify(user=USER)

    @app.get("/whoami")
    def whoami() -> Any:
        return jsonify(user=ward().user)

    @app.get("/devices")
    def devices() -> Any:
        return jsonify(devices_of(ward().list_sessions()))

    @app.post("/verb/<verb>")
    def verb(verb: str) -> Any:
        outage.begin()
        return jsonify(result=run_sync_verb(ward(), verb, request.args.get("handle", "")))

    return app


def wsgi_app(outage: Refuse) -> WSGIApplication:
    """A WSGI application with no framework: the session is ``environ["sessionward.session"]``."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        session = environ["sessionward.session"]
        assert isinstance(session, SyncSession)
        incoming = WsgiRequest(environ)
        path = incoming.path
        body: object
        if path == "/login":
            session.login(USER)
            body = {"user": USER}
        elif path == "/whoami":
            body = {"user": session.user}
        elif path == "/devices":
            body = devices_of(session.list_sessions())
        else:
            outage.begin()
            body = {"result": run_sync_verb(session, path.removeprefix("/verb/"), incoming.args.get("handle", ""))}
        return WsgiResponse(json.dumps(body), mimetype="application/json")(environ, start_response)

    return app


def as_a_server_would(app: WSGIApplication) -> WSGIApplication:
    """What a WSGI server does with an exception that reaches it: a bare 500."""

    def served(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            return list(app(environ, start_response))
        except Exception:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
            return [b"Internal Server Error"]

    return served


# -- driving an edge ------------------------------------------------------------------------


class Browser(Protocol):
    async def send(self, method: str, path: str, sid: str | None, params: dict[str, str] | None = None) -> Answer: ...


class AsgiBrowser:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def send(self, method: str, path: str, sid: str | None, params: dict[str, str] | None = None) -> Answer:
        response = await self.client.request(method, path, headers=cookie_header(sid), params=params)
        self.client.cookies.clear()  # each request carries the cookie the test gives it, no other
        return Answer(
            response.status_code,
            response.json() if response.headers.get("content-type") == "application/json" else response.text,
            dict(response.headers),
            session_cookie(response.headers.get_list("set-cookie")),
        )


class WsgiBrowser:
    def __init__(self, client: Client) -> None:
        self.client = client

    async def send(self, method: str, path: str, sid: str | None, params: dict[str, str] | None = None) -> Answer:
        response = self.client.open(
            path, method=method, base_url=ORIGIN, headers=cookie_header(sid), query_string=params
        )
        return Answer(
            response.status_code,
            response.json if response.mimetype == "application/json" else response.text,
            {name.lower(): value for name, value in response.headers.items()},
            session_cookie(response.headers.getlist("Set-Cookie")),
        )


@contextlib.asynccontextmanager
async def asgi_edge(app: Any, store_url: str, clock: ManualClock) -> AsyncIterator[Browser]:
    store = RedisStore.from_url(store_url, timeout_s=STORE_TIMEOUT_S)
    await store.setup()
    manager = SessionManager(store, plain_http_policy(), clock=clock, store_timeout_s=STORE_TIMEOUT_S)
    # An exception that escapes the app becomes the 500 a server would send, not a test error.
    transport = httpx.ASGITransport(app=protect(app, manager), raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as client:
            yield AsgiBrowser(client)
    finally:
        await store.close()


@contextlib.contextmanager
def sync_store(store_url: str) -> Iterator[SyncRedisStore]:
    store = SyncRedisStore.from_url(store_url, timeout_s=STORE_TIMEOUT_S)
    store.setup()
    try:
        yield store
    finally:
        store.close()


@contextlib.asynccontextmanager
async def edge(name: str, store_url: str, clock: ManualClock, outage: Refuse) -> AsyncIterator[Browser]:
    if name in ("starlette", "fastapi"):
        app = starlette_app(outage) if name == "starlette" else fastapi_app(outage)
        async with asgi_edge(app, store_url, clock) as browser:
            yield browser
    elif name == "flask":
        with sync_store(store_url) as store:
            yield WsgiBrowser(flask_app(store, clock, outage).test_client(use_cookies=False))
    else:
        with sync_store(store_url) as store:
            manager = SyncManager(store, plain_http_policy(), clock=clock, store_timeout_s=STORE_TIMEOUT_S)
            served = as_a_server_would(WsgiSessionMiddleware(wsgi_app(outage), manager))
            yield WsgiBrowser(Client(served, use_cookies=False))


async def sign_in(browser: Browser) -> str:
    answer = await browser.send("POST", "/login", None)
    assert answer.status == 200, answer
    assert answer.cookie
    return answer.cookie


async def user_of(browser: Browser, sid: str) -> object:
    answer = await browser.send("GET", "/whoami", sid)
    assert answer.status == 200, answer
    assert answer.cookie is None, "the session moved or ended"
    return answer.body["user"]


@pytest.fixture
def proxy(redis_url: str) -> Iterator[TcpProxy]:
    with TcpProxy(*upstream_of(redis_url)) as proxy:
        yield proxy


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("edge_name", ["starlette", "fastapi", "flask", "wsgi"])
async def test_store_going_down_just_before_a_verb_the_handler_does_not_catch_gives_503_and_loses_no_session(
    edge_name: str, verb: str, proxy: TcpProxy, redis_url: str, clock: ManualClock
) -> None:
    outage = Refuse(proxy)
    async with edge(edge_name, through(redis_url, proxy), clock, outage) as browser:
        laptop = await sign_in(browser)  # another device of the same user: revoke's target
        phone = await sign_in(browser)
        devices = (await browser.send("GET", "/devices", phone)).body
        [laptop_handle] = [device["handle"] for device in devices if not device["current"]]

        try:
            answer = await browser.send("POST", f"/verb/{verb}", phone, {"handle": laptop_handle})
        finally:
            outage.end()

        assert answer.status == 503, answer
        assert answer.body == UNAVAILABLE
        assert answer.headers["retry-after"] == "1"
        assert answer.cookie is None, "a 503 must neither hand out nor clear the session cookie"
        # The verb never reached the store: both devices are still signed in, on the same IDs.
        assert await user_of(browser, phone) == USER
        assert await user_of(browser, laptop) == USER
        assert len((await browser.send("GET", "/devices", phone)).body) == 2


@pytest.mark.parametrize("verb", ["login", "revoke_others"])
async def test_store_outage_met_by_a_flask_view_is_reported_as_store_unavailable(
    verb: str, proxy: TcpProxy, redis_url: str, clock: ManualClock
) -> None:
    # The Flask extension answers such an outage itself (the middleware never sees it); the
    # audit trail must still tell, as it does on the other edges.
    seen: list[str] = []
    bus = EventBus()
    bus.subscribe(lambda event: seen.append(str(event.name)))
    outage = Refuse(proxy)
    with sync_store(through(redis_url, proxy)) as store:
        browser = WsgiBrowser(flask_app(store, clock, outage, bus).test_client(use_cookies=False))
        phone = await sign_in(browser)
        seen.clear()
        try:
            answer = await browser.send("POST", f"/verb/{verb}", phone)
        finally:
            outage.end()
    assert answer.status == 503, answer
    assert seen == [str(EventName.STORE_UNAVAILABLE)]
