"""The Redis store behind the ASGI middleware: round trips, races, outages, memory.

Round trips are counted with ``MONITOR`` on the private server: every command a client
sends is one line there, and commands run inside a script are marked ``lua`` and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest
from redis.crc import key_slot
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionward import ManualClock, SessionPolicy
from sessionward.asgi.middleware import SessionMiddleware
from sessionward.core.config import CookiePolicy, LoginPolicy
from sessionward.core.errors import LoginRefusedError
from sessionward.io.manager import SessionManager
from sessionward.starlette import get_session
from sessionward.stores import open_store
from sessionward.stores._redis_layout import handle_key, session_key, user_keys, user_tag
from sessionward.stores.base import SessionStore
from sessionward.stores.redis import RedisStore
from support.redis_servers import RedisCluster, RedisServer

pytestmark = pytest.mark.redis

POLICY = SessionPolicy().with_(cookie=CookiePolicy(secure=False))


# -- a tiny application ----------------------------------------------------------------------------


async def login(request: Request) -> Response:
    session = get_session(request)
    session["n"] = 0
    try:
        await session.login(request.query_params.get("user", "alice"))
    except LoginRefusedError:
        return JSONResponse({"error": "max_sessions"}, status_code=409)
    return JSONResponse({"ok": True})


async def read(request: Request) -> Response:
    session = get_session(request)
    if session.user is None:
        return JSONResponse({"error": "anonymous"}, status_code=401)
    return JSONResponse({"user": session.user, "n": session.get("n"), "data": dict(session)})


async def incr(request: Request) -> Response:
    session = get_session(request)
    session["n"] = session.get("n", 0) + 1
    return JSONResponse({"user": session.user, "n": session["n"]})


async def put(request: Request) -> Response:
    name = request.path_params["name"]
    get_session(request)[name] = name
    return JSONResponse({"ok": True})


async def logout(request: Request) -> Response:
    await get_session(request).logout()
    return JSONResponse({})


async def sessions(request: Request) -> Response:
    listed = await get_session(request).list_sessions()
    return JSONResponse({"sessions": [s.as_dict() for s in listed]})


async def revoke(request: Request) -> Response:
    revoked = await get_session(request).revoke(request.path_params["handle"])
    return Response(status_code=204 if revoked else 404)


ROUTES = [
    Route("/login", login, methods=["POST"]),
    Route("/read", read),
    Route("/incr", incr, methods=["POST"]),
    Route("/put/{name}", put, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/sessions", sessions),
    Route("/sessions/{handle}", revoke, methods=["DELETE"]),
]


def app_server(store: SessionStore, clock: ManualClock, policy: SessionPolicy = POLICY) -> SessionMiddleware:
    """One application server: its own manager over its own store instance."""
    return SessionMiddleware(Starlette(routes=ROUTES), SessionManager(store, policy, clock=clock))


@contextlib.asynccontextmanager
async def browser(app: SessionMiddleware) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture(params=["standalone", "cluster"])
def any_redis_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("redis_url" if request.param == "standalone" else "redis_cluster_url")
    return url


# -- counting round trips -------------------------------------------------------------------------------


@dataclass
class Monitor:
    """The commands clients send to some servers, read from ``MONITOR`` on each."""

    ports: list[int]
    lines: list[str] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Monitor]:
        tasks, writers = [], []
        for port in self.ports:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"MONITOR\r\n")
            assert await reader.readline() == b"+OK\r\n"
            tasks.append(asyncio.create_task(self._collect(reader)))
            writers.append(writer)
        try:
            yield self
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for writer in writers:
                writer.close()
                await writer.wait_closed()

    async def _collect(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            self.lines.append(line.decode(errors="replace"))
            self.arrived.set()

    async def _sync(self) -> None:
        """Wait until the monitors have seen everything sent so far (markers close the window)."""
        markers = []
        for port in self.ports:
            marker = secrets.token_hex(8)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"ECHO {marker}\r\n".encode())
            await reader.readline()
            writer.close()
            await writer.wait_closed()
            markers.append(marker)
        async with asyncio.timeout(5):
            while not all(any(marker in line for line in self.lines) for marker in markers):
                self.arrived.clear()
                await self.arrived.wait()

    async def commands(self, action: Callable[[], Awaitable[object]]) -> list[str]:
        """Run ``action``; return the commands clients sent meanwhile (not those inside scripts)."""
        await self._sync()
        start = len(self.lines)
        await action()
        await self._sync()
        sent = []
        for line in self.lines[start:]:
            if " lua]" in line or "ECHO" in line.upper():
                continue
            sent.append(line.split("] ", 1)[1].split(" ", 1)[0].strip('"').upper())
        return sent


async def count_requests(app: SessionMiddleware, clock: ManualClock, ports: list[int]) -> dict[str, list[str]]:
    """Return the commands the store sent for each kind of request."""
    async with browser(app) as client:
        # Warm up: scripts get loaded into Redis once (NOSCRIPT, SCRIPT LOAD).
        for path in ("/login", "/incr", "/logout"):
            await client.post(path)
        async with Monitor(ports).running() as monitor:
            counted = {
                "login (no session yet)": await monitor.commands(lambda: client.post("/login")),
                "read-only request": await monitor.commands(lambda: client.get("/read")),
                "request writing one key": await monitor.commands(lambda: client.post("/incr")),
            }
            clock.advance(POLICY.timeouts.effective_touch_interval_s + 1)
            counted["read-only, idle clock due"] = await monitor.commands(lambda: client.get("/read"))
            counted["login over an existing session"] = await monitor.commands(lambda: client.post("/login"))
            counted["logout"] = await monitor.commands(lambda: client.post("/logout"))
            counted["anonymous request, no cookie"] = await monitor.commands(lambda: client.get("/read"))
    return counted


def report(title: str, counted: dict[str, list[str]]) -> None:
    print(f"\n{title}:")
    for name, commands in counted.items():
        print(f"  {name:34s} {len(commands)}  {' '.join(commands)}")


async def test_round_trips_per_request(redis_url: str, redis_server: RedisServer, clock: ManualClock) -> None:
    store = open_store(redis_url)
    policy = POLICY.with_(login=LoginPolicy(max_sessions=3, prevent_login=False))
    counted = await count_requests(app_server(store, clock, policy), clock, [redis_server.port])
    await store.close()
    report("Redis round trips per request (standalone, MONITOR)", counted)
    # A load is one HGETALL; every write (data, the idle clock when due, login, logout) one script.
    assert counted["login (no session yet)"] == ["EVALSHA"]
    assert counted["read-only request"] == ["HGETALL"]
    assert counted["request writing one key"] == ["HGETALL", "EVALSHA"]
    assert counted["read-only, idle clock due"] == ["HGETALL", "EVALSHA"]  # at most once per touch interval
    assert counted["login over an existing session"] == ["HGETALL", "EVALSHA"]
    assert counted["logout"] == ["HGETALL", "EVALSHA"]
    assert counted["anonymous request, no cookie"] == []


async def test_commands_per_request_on_a_cluster(
    redis_cluster_url: str, redis_cluster: RedisCluster, clock: ManualClock
) -> None:
    store = open_store(redis_cluster_url)
    await store.setup()
    policy = POLICY.with_(login=LoginPolicy(max_sessions=3, prevent_login=False))
    counted = await count_requests(app_server(store, clock, policy), clock, [n.port for n in redis_cluster.nodes])
    await store.close()
    report("Redis Cluster commands per request (3 masters, MONITOR on each)", counted)
    # The hot path is the same as on one server: a session's keys share one slot.
    assert counted["read-only request"] == ["HGETALL"]
    assert counted["request writing one key"] == ["HGETALL", "EVALSHA"]
    assert counted["anonymous request, no cookie"] == []
    # Login and logout cross slots in steps (see the store's module docstring).
    assert len(counted["logout"]) <= 3
    # A script's first use on a node loads it there (SCRIPT, HELLO): once, not per request.
    steps = [c for c in counted["login over an existing session"] if c not in ("SCRIPT", "HELLO")]
    assert len(steps) <= 8


# -- races -----------------------------------------------------------------------------------------------


async def test_fifty_racing_requests_on_one_session_each_keep_their_key(any_redis_url: str, clock: ManualClock) -> None:
    stores = [open_store(any_redis_url) for _ in range(2)]
    servers = [app_server(store, clock) for store in stores]
    async with browser(servers[0]) as first, browser(servers[1]) as second:
        assert (await first.post("/login")).status_code == 200
        second.cookies = first.cookies
        clients = [first, second]
        responses = await asyncio.gather(*(clients[i % 2].post(f"/put/k{i}") for i in range(50)))
        assert [r.status_code for r in responses] == [200] * 50
        data = (await first.get("/read")).json()["data"]
    for store in stores:
        await store.close()
    assert {f"k{i}" for i in range(50)} <= set(data)


# -- outages ------------------------------------------------------------------------------------------------


async def test_killed_redis_gives_503_never_500_or_anonymous_and_traffic_recovers(
    redis_server_factory: Callable[..., RedisServer], clock: ManualClock
) -> None:
    server = redis_server_factory(persistent=True)  # AOF, fsync always: a kill -9 loses nothing
    store = open_store(server.url)
    statuses: list[int] = []
    answered = asyncio.Event()

    async def answers(count: int) -> None:
        while len(statuses) < count:
            answered.clear()
            await answered.wait()

    async with browser(app_server(store, clock)) as client:
        assert (await client.post("/login")).status_code == 200
        done = asyncio.Event()

        async def traffic() -> None:
            for i in range(400):  # bounded; stops early once the controller is done
                if done.is_set():
                    return
                response = await (client.post("/incr") if i % 2 else client.get("/read"))
                statuses.append(response.status_code)
                answered.set()
                if response.status_code == 200:
                    assert response.json()["user"] == "alice", "an authenticated request was answered anonymously"
                else:
                    assert response.status_code == 503, response.text
                    assert response.json()["error"] == "session_store_unavailable"
                await asyncio.sleep(0)

        async def controller() -> None:
            async with asyncio.timeout(30):
                await answers(20)
                server.stop(kill=True)
                await answers(len(statuses) + 20)
                server.start()
                await answers(len(statuses) + 20)
            done.set()

        await asyncio.gather(*(traffic() for _ in range(4)), controller())
        after = await client.get("/read")
    await store.close()
    server.stop()
    assert statuses.count(503) >= 15
    assert set(statuses) == {200, 503}
    assert statuses[-10:] == [200] * 10, "traffic did not recover after the restart"
    assert after.status_code == 200
    assert after.json()["user"] == "alice"  # the same session, still valid, no app restart


# -- memory --------------------------------------------------------------------------------------------------


async def test_memory_usage_of_a_typical_session(redis_url: str, clock: ManualClock) -> None:
    store = open_store(redis_url)
    assert isinstance(store, RedisStore)
    async with browser(app_server(store, clock)) as client:
        await client.post("/login", params={"user": "alice@example.com"})
        await client.post("/incr")
    [key] = [r.key for r in await store.list_user("alice@example.com", clock())]
    by_creation, by_deadline = user_keys(store.prefix, user_tag("alice@example.com"))

    async def size(*names: str) -> int:
        sizes = [await store.client.memory_usage(name, samples=0) for name in names]
        return sum(size or 0 for size in sizes)

    usage = {
        "session hash": await size(session_key(store.prefix, key)),
        "handle key": await size(handle_key(store.prefix, key)),
        "user index (2 zsets, 1 session)": await size(by_creation, by_deadline),
    }
    await store.close()
    total = sum(usage.values())
    print("\nRedis MEMORY USAGE of a session with a user and a counter:")
    for name, amount in usage.items():
        print(f"  {name:32s} {amount} bytes")
    print(f"  {'total':32s} {total} bytes")
    assert usage["session hash"] < 1024
    assert total < 2048


# -- cluster: login, limit, list, revoke across slots -----------------------------------------------------------


async def test_cluster_login_limit_list_and_revoke_across_slots(redis_cluster_url: str, clock: ManualClock) -> None:
    store = open_store(redis_cluster_url)
    assert isinstance(store, RedisStore)
    policy = POLICY.with_(login=LoginPolicy(max_sessions=2, prevent_login=True))
    app = app_server(store, clock, policy)
    async with browser(app) as a, browser(app) as b, browser(app) as c, browser(app) as bob:
        assert (await a.post("/login")).status_code == 200
        assert (await b.post("/login")).status_code == 200
        assert (await c.post("/login")).status_code == 409  # first wins: at the limit
        assert (await bob.post("/login", params={"user": "bob"})).status_code == 200
        listed = (await a.get("/sessions")).json()["sessions"]
        assert sorted(s["current"] for s in listed) == [False, True]
        other = next(s["handle"] for s in listed if not s["current"])
        assert (await bob.delete(f"/sessions/{other}")).status_code == 404  # not bob's session
        assert (await a.delete(f"/sessions/{other}")).status_code == 204
        assert (await b.get("/read")).status_code == 401  # revoked on every server
        assert (await c.post("/login")).status_code == 200  # room again
        handles = {s["handle"] for s in (await a.get("/sessions")).json()["sessions"]}
    live = [*await store.list_user("alice", clock()), *await store.list_user("bob", clock())]
    slots = {key_slot(session_key(store.prefix, r.key).encode()) for r in live}
    slots.add(key_slot(user_keys(store.prefix, user_tag("alice"))[0].encode()))
    await store.close()
    assert len(handles) == 2
    assert len(live) == 3
    assert len(slots) > 1  # sessions and the user index sit in different slots: the steps crossed them
