"""The audit trail (F16): a scripted life of several sessions, read back from the JSON log.

Every lifecycle event is written where it happens, one JSON line each, with its reason,
the session *handle*, user, IP and User-Agent — and never a raw session ID, so a leaked
log hands an attacker no cookie to replay. A failing subscriber never breaks a request.
"""

from __future__ import annotations

import io
import re
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionward import (
    BindingPolicy,
    EventBus,
    JsonAuditLogger,
    LoginPolicy,
    LoginRefusedError,
    ManualClock,
    SessionEvent,
    TimeoutPolicy,
)
from sessionward.asgi.csrf import CsrfMiddleware
from sessionward.asgi.middleware import SessionMiddleware
from sessionward.io.manager import SessionManager
from sessionward.starlette import get_session
from sessionward.stores.memory import MemoryStore
from support.helpers import plain_http_policy

IDLE_S = 600
ABSOLUTE_S = 1800


async def login(request: Request) -> Response:
    session = get_session(request)
    try:
        await session.login(request.query_params["user"])
    except LoginRefusedError:
        return JSONResponse({"error": "max_sessions"}, status_code=409)
    return JSONResponse({"ok": True})


async def logout(request: Request) -> Response:
    await get_session(request).logout()
    return JSONResponse({"ok": True})


async def whoami(request: Request) -> Response:
    return JSONResponse({"user": get_session(request).user})


async def put(request: Request) -> Response:
    get_session(request)["cart"] = request.query_params["cart"]
    return JSONResponse({"ok": True})


async def rotate(request: Request) -> Response:
    await get_session(request).rotate_id()
    return JSONResponse({"ok": True})


async def elevate(request: Request) -> Response:
    await get_session(request).elevate()
    return JSONResponse({"ok": True})


async def sessions(request: Request) -> Response:
    listed = await get_session(request).list_sessions()
    return JSONResponse({"sessions": [info.as_dict() for info in listed]})


async def revoke(request: Request) -> Response:
    ended = await get_session(request).revoke(request.path_params["handle"])
    return Response(status_code=204 if ended else 404)


ROUTES = [
    Route("/api/login", login, methods=["POST"]),
    Route("/api/logout", logout, methods=["POST"]),
    Route("/api/whoami", whoami),
    Route("/api/cart", put, methods=["POST"]),
    Route("/api/rotate", rotate, methods=["POST"]),
    Route("/api/elevate", elevate, methods=["POST"]),
    Route("/api/sessions", sessions),
    Route("/api/sessions/{handle}", revoke, methods=["DELETE"]),
]


class Broken:
    """Subscribers that always fail, sync and async: they must not break anything."""

    def __call__(self, event: SessionEvent) -> None:
        raise RuntimeError("sync subscriber down")


async def broken_async(event: SessionEvent) -> None:
    raise RuntimeError("async subscriber down")


class Scenario:
    """Apps sharing one audit log, and clients whose every issued ID is remembered."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.log = io.StringIO()
        self.issued_ids: set[str] = set()
        events = EventBus()
        events.subscribe(Broken())
        events.subscribe(broken_async)
        events.subscribe(JsonAuditLogger(self.log))
        policy = plain_http_policy(
            timeouts=TimeoutPolicy(idle_timeout_s=IDLE_S, absolute_timeout_s=ABSOLUTE_S, renewal_interval_s=0),
            login=LoginPolicy(max_sessions=2),
            binding=BindingPolicy(user_agent=True),
        )
        self.app = self._app(SessionManager(MemoryStore(), policy, clock=clock, events=events))
        first_wins = plain_http_policy(login=LoginPolicy(max_sessions=1, prevent_login=True))
        self.first_wins_app = self._app(SessionManager(MemoryStore(), first_wins, clock=clock, events=events))

    @staticmethod
    def _app(manager: SessionManager) -> SessionMiddleware:
        return SessionMiddleware(CsrfMiddleware(Starlette(routes=ROUTES), manager), manager)

    def device(self, name: str, ip: str, *, app: SessionMiddleware | None = None) -> httpx.AsyncClient:
        async def remember(response: httpx.Response) -> None:
            for header in response.headers.get_list("set-cookie"):
                value = header.split(";", 1)[0].partition("=")[2]
                if value:
                    self.issued_ids.add(value)

        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app or self.app, client=(ip, 40000)),
            base_url="http://bank.example",
            headers={"user-agent": f"Browser/{name}"},
            event_hooks={"response": [remember]},
        )

    def lines(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.log.getvalue().splitlines()]


async def run(scenario: Scenario) -> None:
    clock = scenario.clock
    async with (
        scenario.device("A", "192.0.2.1") as a,
        scenario.device("B", "192.0.2.2") as b,
        scenario.device("C", "192.0.2.3") as c,
    ):
        assert (await a.post("/api/cart", params={"cart": "book"})).status_code == 200  # created
        assert (await a.post("/api/login", params={"user": "alice"})).status_code == 200  # login
        assert (await a.post("/api/rotate")).status_code == 200  # rotated (privilege_change)
        assert (await a.post("/api/elevate")).status_code == 200  # rotated (elevation), elevated
        clock.advance(1)
        await b.post("/api/login", params={"user": "alice"})
        clock.advance(1)
        await c.post("/api/login", params={"user": "alice"})  # max 2: A, the oldest, is displaced
        assert (await a.get("/api/whoami")).json()["reason"] == "displaced"
        listed = (await c.get("/api/sessions")).json()["sessions"]
        b_handle = next(s["handle"] for s in listed if not s["current"])
        assert (await c.delete(f"/api/sessions/{b_handle}")).status_code == 204  # revoked
        assert (await b.get("/api/whoami")).json()["reason"] == "revoked"
        forged = await c.post("/api/cart", params={"cart": "x"}, headers={"sec-fetch-site": "cross-site"})
        assert forged.status_code == 403  # csrf_refused
        assert (await c.request("TRACE", "/api/whoami")).status_code == 405  # firewall_refused
        assert (await c.get("/api/whoami;jsessionid=x")).status_code == 400  # firewall_refused
        c.headers["user-agent"] = "Browser/Thief"
        assert (await c.get("/api/whoami")).json()["reason"] == "binding_mismatch"

    async with scenario.device("D", "192.0.2.4") as d, scenario.device("E", "192.0.2.5") as e:
        await d.post("/api/login", params={"user": "bob"})
        clock.advance(IDLE_S + 1)
        assert (await d.get("/api/whoami")).json()["reason"] == "idle_timeout"  # expired
        await e.post("/api/login", params={"user": "carol"})
        for _ in range(3):  # active all along: never idle, yet...
            clock.advance(IDLE_S - 150)
            assert (await e.get("/api/whoami")).json()["user"] == "carol"
        clock.advance(IDLE_S - 150)
        assert (await e.get("/api/whoami")).json()["reason"] == "absolute_timeout"  # expired
        await e.post("/api/login", params={"user": "carol"})
        assert (await e.post("/api/logout")).status_code == 200  # logout

    async with (
        scenario.device("F", "192.0.2.6", app=scenario.first_wins_app) as f,
        scenario.device("G", "192.0.2.7", app=scenario.first_wins_app) as g,
    ):
        await f.post("/api/login", params={"user": "dave"})
        assert (await g.post("/api/login", params={"user": "dave"})).status_code == 409  # login_refused


EXPECTED = [
    ("session_created", None, None),
    ("authn_login_success", "change_id", "alice"),
    ("session_renewed", "privilege_change", "alice"),
    ("session_renewed", "elevation", "alice"),
    ("session_elevated", None, "alice"),
    ("session_created", "login", None),  # device B: a login without a session before makes one
    ("authn_login_success", "change_id", "alice"),
    ("session_expired:displaced", "displaced", "alice"),
    ("session_use_after_expire", "displaced", "alice"),
    ("session_expired:revoked", "revoked", "alice"),
    ("session_use_after_expire", "revoked", "alice"),
    ("authz_fail", "cross_site", "alice"),
    ("authz_fail", "method_not_allowed", None),
    ("session_binding_mismatch", "user_agent", "alice"),
    ("session_use_after_expire", "binding_mismatch", "alice"),
    ("session_expired:idle_timeout", "idle_timeout", "bob"),
    ("session_use_after_expire", "idle_timeout", "bob"),
    ("session_expired:absolute_timeout", "absolute_timeout", "carol"),
    ("session_use_after_expire", "absolute_timeout", "carol"),
    ("session_expired:logout", "logged_out", "carol"),
    ("authn_login_fail", "max_sessions", "dave"),
]


async def test_audit_log_of_a_scripted_scenario_has_every_event_and_reason(clock: ManualClock) -> None:
    scenario = Scenario(clock)
    await run(scenario)  # the broken subscribers raised on every event; no request failed
    lines = scenario.lines()
    triples = [(line["event"], line["reason"], line["user"]) for line in lines]
    position = 0
    for expected in EXPECTED:
        assert expected in triples[position:], f"{expected} missing (in order) from {triples}"
        position = triples.index(expected, position) + 1
    firewall = [line["reason"] for line in lines if line["description"] == "A request was refused by the firewall"]
    assert len(firewall) == 2
    assert "method_not_allowed" in firewall
    spec_events = {
        "session_created", "authn_login_success", "session_renewed", "session_elevated",
        "session_expired:idle_timeout", "session_expired:absolute_timeout", "session_expired:logout",
        "session_expired:revoked", "session_expired:displaced", "authn_login_fail", "session_binding_mismatch",
        "session_use_after_expire", "authz_fail",
    }  # fmt: skip
    assert spec_events <= {line["event"] for line in lines}


async def test_audit_log_never_holds_a_raw_session_id(clock: ManualClock) -> None:
    scenario = Scenario(clock)
    await run(scenario)
    text = scenario.log.getvalue()
    assert len(scenario.issued_ids) >= 8
    for raw_id in scenario.issued_ids:
        assert raw_id not in text
        assert raw_id[:16] not in text  # not even a prefix of one
    handles = {line["session"] for line in scenario.lines() if line["session"] is not None}
    assert handles
    assert all(re.fullmatch(r"[0-9a-f]{16}", handle) for handle in handles)


async def test_each_line_says_who_where_and_when(clock: ManualClock) -> None:
    scenario = Scenario(clock)
    await run(scenario)
    lines = scenario.lines()
    assert all(
        set(line)
        == {
            "datetime", "appid", "event", "level", "description", "reason", "user", "session",
            "source_ip", "user_agent", "request_method", "request_uri", "host", "time", "ip",
        }
        for line in lines
    )  # fmt: skip
    login = next(line for line in lines if line["event"] == "authn_login_success")
    assert (login["source_ip"], login["user_agent"], login["request_method"], login["request_uri"]) == (
        "192.0.2.1",
        "Browser/A",
        "POST",
        "/api/login",
    )
    assert login["datetime"] == "2023-11-14T22:13:20.000Z"  # 1_700_000_000
    mismatch = next(line for line in lines if line["event"] == "session_binding_mismatch")
    assert (mismatch["source_ip"], mismatch["user_agent"]) == ("192.0.2.3", "Browser/Thief")
    revoked = next(line for line in lines if line["event"] == "session_expired:revoked")
    assert revoked["source_ip"] == "192.0.2.3"  # who revoked it
    assert revoked["session"] != login["session"]


async def test_async_subscriber_gets_the_same_events_as_the_log(clock: ManualClock) -> None:
    scenario = Scenario(clock)
    received: list[str] = []

    async def collect(event: SessionEvent) -> None:
        received.append(event.name.value)

    scenario.app.manager.events.subscribe(collect)
    async with scenario.device("A", "192.0.2.1") as a:
        await a.post("/api/login", params={"user": "alice"})
        await a.post("/api/logout")
    assert received == ["created", "login", "logout"]
    assert [line["event"] for line in scenario.lines()] == [
        "session_created",
        "authn_login_success",
        "session_expired:logout",
    ]
