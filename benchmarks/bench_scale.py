"""Scale: what a request, a user's listing, a login and a purge cost as the store grows.

One command::

    .venv/bin/python benchmarks/bench_scale.py [--sizes 200,10000,1000000] [--stores redis,postgres]
        [--purge 1000000] [--purge-stores postgres,sqlite] [--parts requests,users,purge,trips] [--quick]

In process, on uvloop: a tiny Starlette app (``/read`` the counter, ``POST /incr`` it,
``POST /login``) behind the ASGI :class:`~sessionward.asgi.middleware.SessionMiddleware`,
called directly (no sockets; the in-process path of ``bench_middleware.py``), against the
same app without sessions measured in the same run. Stores: a private ``redis-server``
and a private PostgreSQL database ``sw_bench_<random>`` on 127.0.0.1:5432 (dropped at the
end). Parts:

``requests``
    req/s and p50/p99 latency of ``/read`` and ``/incr`` (32 requests in flight, median
    of ``--rounds`` samples of ``--seconds`` each, alternating with the bare app) with
    each of ``--sizes`` sessions in the store. The first size's sessions log in through
    the app; the store is then filled up to each next size in bulk. Requests rotate over
    the cookies of ``--working-set`` sessions (10,000) drawn uniformly from the whole
    store, or all of them when it holds fewer, so a larger store is also a larger
    spread of what is read and written.
``users``
    at each size, a user with 1, 10 and 100 sessions: ``list_sessions`` (the request
    API, on one of their sessions) and a login under ``max_sessions`` equal to that
    count (the oldest is displaced: the user keeps that many), median of ``--reps``.
    Both must cost in proportion to the user's sessions, not to the store's.
``purge``
    ``sessionward sessions purge`` (the CLI, in a subprocess) on a store holding
    ``--purge`` expired sessions and as many live ones, PostgreSQL and SQLite; then once
    more with nothing due, for the fixed cost.
``trips``
    store round trips per ``/read`` and ``/incr``: counted on the wire by a TCP proxy in
    front of Redis and PostgreSQL (the client's turns: how often it speaks after the
    server did), and for SQL also the statements SQLAlchemy sends (``before_cursor_execute``),
    its transactions and pool checkouts (each one pings: ``pool_pre_ping``).

Bulk loading: records are made by the engine (``plan_login``, as a login makes them). On
Redis each goes through :meth:`RedisStore.establish` itself (the login script with the
store's own arguments), its script calls queued on one non-transactional pipeline sent
every few thousand sessions. On PostgreSQL the rows the store itself would write
(``SqlStore._row_values``) are copied in with asyncpg's ``COPY``; on SQLite inserted with
``executemany`` in one transaction. The clock is a ManualClock set to the wall clock and
left standing during the timed requests, so no idle-clock touch (at most one write per
session and minute) falls among them. Default garbage collection (no ``gc.freeze()``).

``--quick`` makes every size 100 times smaller. The machine is shared: read ratios to
the bare app of the same run rather than absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import uvloop
from sqlalchemy import event
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionward import CookiePolicy, ManualClock, SessionPolicy
from sessionward.asgi.middleware import SessionMiddleware
from sessionward.core.config import LoginPolicy
from sessionward.core.engine import ClientInfo, SessionEngine
from sessionward.core.records import SessionRecord
from sessionward.io.exchange import Exchange
from sessionward.io.manager import SessionManager
from sessionward.starlette import get_session
from sessionward.stores.base import SessionStore
from sessionward.stores.redis import RedisStore
from sessionward.stores.sql import SqlStore

App = Callable[..., Awaitable[None]]
"""An ASGI application."""

POLICY = SessionPolicy(cookie=CookiePolicy(secure=False))
CLIENT = ClientInfo(ip="203.0.113.7", user_agent="bench-scale/1.0")
CONCURRENCY = 32
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
USER_SESSIONS = (1, 10, 100)
BULK_CHUNK = 5000
CLI = [sys.executable, "-c", "from sessionward.cli import main; main()"]
"""``sessionward`` as the console script runs it, with this interpreter."""


# -- the app -------------------------------------------------------------------------------------


async def read(request: Request) -> Response:
    if "sessionward" not in request.scope:
        return JSONResponse({"n": 0})
    return JSONResponse({"n": get_session(request).get("n", 0)})


async def incr(request: Request) -> Response:
    session = get_session(request)
    session["n"] = int(session.get("n", 0)) + 1
    return JSONResponse({"n": session["n"]})


async def login(request: Request) -> Response:
    session = get_session(request)
    await session.login(request.query_params["user"])
    session["n"] = 0
    return JSONResponse({"ok": True})


ROUTES = [Route("/read", read), Route("/incr", incr, methods=["POST"]), Route("/login", login, methods=["POST"])]


async def call(app: App, method: str, path: str, cookie: bytes | None, query: bytes = b"") -> tuple[int, bytes | None]:
    """Call ``app`` once; return the status and the ``name=value`` of a cookie it set."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"user-agent", b"bench-scale/1.0"),
            *([(b"cookie", cookie)] if cookie else []),
        ],
        "client": (CLIENT.ip, 50000),
        "server": ("bench", 80),
    }
    status = 0
    set_cookie: bytes | None = None

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, set_cookie
        if message["type"] == "http.response.start":
            status = message["status"]
            for name, value in message.get("headers", []):
                if name == b"set-cookie":
                    set_cookie = value.split(b";", 1)[0]

    await app(scope, receive, send)
    return status, set_cookie


@dataclass
class Sample:
    """One timed run of one endpoint."""

    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float
    """CPU time of this process per request (its threads included)."""


async def measure(app: App, method: str, path: str, cookies: list[bytes], seconds: float) -> Sample:
    """Send requests for ``seconds`` with 32 in flight, rotating over ``cookies``; time each."""
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    clock = time.perf_counter

    async def worker(offset: int) -> None:
        i = offset
        while clock() < stop:
            cookie = cookies[i % len(cookies)] if cookies else None
            began = clock()
            status, _ = await call(app, method, path, cookie)
            latencies.append(clock() - began)
            if status != 200:
                raise RuntimeError(f"{method} {path} answered {status}")
            i += CONCURRENCY

    began, cpu = clock(), time.process_time()
    await asyncio.gather(*(worker(w) for w in range(CONCURRENCY)))
    elapsed, cpu = clock() - began, time.process_time() - cpu
    latencies.sort()
    count = len(latencies)
    return Sample(count / elapsed, latencies[count // 2] * 1e3, latencies[int(count * 0.99)] * 1e3, cpu / count * 1e6)


def median_sample(samples: list[Sample]) -> Sample:
    return Sample(
        statistics.median(s.rps for s in samples),
        statistics.median(s.p50_ms for s in samples),
        statistics.median(s.p99_ms for s in samples),
        statistics.median(s.cpu_us for s in samples),
    )


# -- private servers -----------------------------------------------------------------------------


@contextlib.contextmanager
def private_redis() -> Iterator[int | None]:
    """A throw-away ``redis-server`` (default configuration, no persistence); its port, or None."""
    if shutil.which("redis-server") is None:
        print("redis-server is missing (apt-get install -y redis-server): Redis skipped", file=sys.stderr)
        yield None
        return
    from bench_store import private_redis as start

    with start() as port:
        yield port


async def pg_admin(server: str, sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(f"{server}/postgres", timeout=3)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def private_postgres(server: str) -> AsyncIterator[str | None]:
    """A private database ``sw_bench_<random>``; its URL, or None when the server does not answer."""
    name = f"sw_bench_{secrets.token_hex(4)}"
    try:
        await pg_admin(server, f'CREATE DATABASE "{name}"')
    except Exception as error:  # any failure to create it: no PostgreSQL for this run
        print(f"PostgreSQL at {server} does not answer ({type(error).__name__}: {error}); skipped", file=sys.stderr)
        yield None
        return
    try:
        yield f"{server}/{name}"
    finally:
        await pg_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- bulk loading --------------------------------------------------------------------------------


def make_records(
    engine: SessionEngine, prefix: str, start: int, count: int, now: float
) -> list[tuple[str, SessionRecord]]:
    """Return ``count`` (raw ID, record) of users ``<prefix><i>`` logged in at ``now``, as a login makes them."""
    made = []
    for i in range(start, start + count):
        transition = engine.plan_login(None, {"n": 0}, f"{prefix}{i}", now, CLIENT)
        made.append((transition.raw_id, transition.record))
    return made


class _QueuedLogins:
    """Stands in for the Redis store's login script: queues each call on a pipeline, answers "done"."""

    def __init__(self, store: RedisStore) -> None:
        self.script = store._login
        self.pipeline = store.client.pipeline(transaction=False)
        self.queued = 0

    async def __call__(self, *, keys: list[str], args: list[Any]) -> list[int]:
        self.pipeline.evalsha(self.script.sha, len(keys), *keys, *args)
        self.queued += 1
        return [1]

    async def send(self) -> None:
        replies = await self.pipeline.execute()
        if len(replies) != self.queued or any(reply[0] != 1 for reply in replies):
            raise RuntimeError("bulk load: the login script refused sessions")
        self.queued = 0


async def bulk_redis(store: RedisStore, records: list[SessionRecord]) -> None:
    """Write ``records`` through ``RedisStore.establish``, its script calls pipelined."""
    queue = _QueuedLogins(store)
    store._login = cast(Any, queue)
    try:
        for start in range(0, len(records), BULK_CHUNK):
            chunk = records[start : start + BULK_CHUNK]
            for record in chunk:
                await store.establish(record)
            if queue.queued != len(chunk):
                raise RuntimeError("bulk load: RedisStore.establish no longer goes through its login script")
            await queue.send()
    finally:
        store._login = queue.script


def stored_row(store: SqlStore, record: SessionRecord) -> dict[str, Any]:
    """Return the column values the SQL store writes for ``record``."""
    try:
        from sessionward.stores._sql_rows import record_row
    except ImportError:  # before the row mapping had a module of its own
        method = "_row_values"
        return cast(dict[str, Any], getattr(store, method)(record))
    return record_row(record)


def row_tuples(store: SqlStore, records: list[SessionRecord]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Return the columns and the rows the SQL store itself writes for ``records``."""
    rows = [stored_row(store, record) for record in records]
    columns = list(rows[0])
    return columns, [tuple(row[c] for c in columns) for row in rows]


async def bulk_postgres(store: SqlStore, url: str, records: list[SessionRecord]) -> None:
    """COPY the store's own rows for ``records`` into its table."""
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        for start in range(0, len(records), 50_000):
            columns, rows = row_tuples(store, records[start : start + 50_000])
            await connection.copy_records_to_table(store.sessions.name, records=rows, columns=columns)
        await connection.execute(f'ANALYZE "{store.sessions.name}"')
    finally:
        await connection.close()


def bulk_sqlite(store: SqlStore, path: Path, records: list[SessionRecord]) -> None:
    """Insert the store's own rows for ``records`` in one transaction."""
    with sqlite3.connect(path) as db:
        for start in range(0, len(records), 50_000):
            columns, rows = row_tuples(store, records[start : start + 50_000])
            names = ", ".join(f'"{c}"' for c in columns)
            marks = ", ".join("?" for _ in columns)
            db.executemany(f'INSERT INTO "{store.sessions.name}" ({names}) VALUES ({marks})', rows)
        db.execute("ANALYZE")


# -- one store under test ------------------------------------------------------------------------


@dataclass
class Target:
    """A store, the app on it, and what the run knows of its sessions."""

    name: str
    store: SessionStore
    load: Callable[[list[SessionRecord]], Awaitable[None]]
    clock: ManualClock
    app: App = field(init=False)
    raw_ids: list[str] = field(default_factory=list)
    owners: dict[int, bytes] = field(default_factory=dict)
    """The newest cookie of each user with 1, 10, 100 sessions."""

    def __post_init__(self) -> None:
        self.manager = SessionManager(self.store, POLICY, clock=self.clock)
        self.app = SessionMiddleware(Starlette(routes=ROUTES), self.manager)

    @property
    def cookie_name(self) -> bytes:
        return (POLICY.cookie.name or "sid").encode()

    def cookie(self, raw_id: str) -> bytes:
        return self.cookie_name + b"=" + raw_id.encode()

    async def login_through_app(self, user: str) -> bytes:
        self.clock.advance(0.001)  # distinct creation times: "the oldest" is well defined
        status, cookie = await call(self.app, "POST", "/login", None, b"user=" + user.encode())
        if status != 200 or cookie is None:
            raise RuntimeError(f"login of {user} answered {status}")
        return cookie

    async def grow_to(self, size: int) -> None:
        """Log the first sessions in through the app, then bulk-load up to ``size``."""
        missing = size - len(self.raw_ids)
        if missing <= 0:
            return
        if not self.raw_ids:
            for i in range(missing):
                cookie = await self.login_through_app(f"hot{i}")
                self.raw_ids.append(cookie.split(b"=", 1)[1].decode())
            return
        engine = self.manager.engine
        for start in range(len(self.raw_ids), size, 100_000):
            count = min(100_000, size - start)
            made = make_records(engine, "bg", start, count, self.clock())
            await self.load([record for _, record in made])
            self.raw_ids.extend(raw_id for raw_id, _ in made)

    def working_set(self, limit: int) -> list[bytes]:
        ids = (
            self.raw_ids if len(self.raw_ids) <= limit else random.Random(len(self.raw_ids)).sample(self.raw_ids, limit)
        )
        return [self.cookie(raw_id) for raw_id in ids]


# -- parts ---------------------------------------------------------------------------------------


async def requests_at(target: Target, bare: App, args: argparse.Namespace) -> dict[str, Sample]:
    cookies = target.working_set(args.working_set)
    for cookie in cookies[:200]:
        await call(target.app, "POST", "/incr", cookie)  # warm: connections, scripts, statement caches
    samples: dict[str, list[Sample]] = {}
    plan = [
        ("bare read", bare, "GET", "/read"),
        ("read", target.app, "GET", "/read"),
        ("incr", target.app, "POST", "/incr"),
    ]
    for round_number in range(args.rounds):
        for label, app, method, path in plan if round_number % 2 == 0 else reversed(plan):
            samples.setdefault(label, []).append(await measure(app, method, path, cookies, args.seconds))
    return {label: median_sample(values) for label, values in samples.items()}


async def make_owners(target: Target) -> None:
    """Log in the users with 1, 10 and 100 sessions (before the store is filled)."""
    for count in USER_SESSIONS:
        for _ in range(count):
            target.owners[count] = await target.login_through_app(f"owner{count}")


async def users_at(target: Target, reps: int) -> dict[int, tuple[float, float]]:
    """Return, per user's session count, the median ms of ``list_sessions`` and of a login under the limit."""
    results: dict[int, tuple[float, float]] = {}
    for count in USER_SESSIONS:
        listing: list[float] = []
        logins: list[float] = []
        limited = SessionManager(target.store, POLICY.with_(login=LoginPolicy(max_sessions=count)), clock=target.clock)
        for _ in range(reps):
            exchange = Exchange(target.manager, path="/sessions", client=CLIENT, method="GET")
            if await exchange.open([target.owners[count]]) is not None:
                raise RuntimeError(f"owner{count}'s newest session is gone")
            began = time.perf_counter()
            listed = await exchange.session.list_sessions()
            listing.append(time.perf_counter() - began)
            if len(listed) != count:
                raise RuntimeError(f"owner{count} lists {len(listed)} sessions, not {count}")
            target.clock.advance(0.001)
            exchange = Exchange(limited, path="/login", client=CLIENT, method="POST")
            await exchange.open([])
            began = time.perf_counter()
            await exchange.session.login(f"owner{count}")
            logins.append(time.perf_counter() - began)
            headers = await exchange.commit(200)
            cookie = next(v for k, v in headers if k == b"set-cookie").split(b";", 1)[0]
            target.owners[count] = cookie
        results[count] = (statistics.median(listing) * 1e3, statistics.median(logins) * 1e3)
    return results


# -- round trips ---------------------------------------------------------------------------------


def postgres_message(data: bytes) -> str:
    """Name the first frontend message in ``data``: a simple query's text, else its kind."""
    kind = data[:1]
    if kind == b"Q":
        return data[5:].split(b"\0", 1)[0].decode(errors="replace").strip()[:30]
    if kind == b"P":
        return "prepare " + data[5:].split(b"\0", 2)[1].decode(errors="replace")[:30]
    if kind == b"B":
        return "execute"
    return f"message {kind.decode(errors='replace')}"


def redis_message(data: bytes) -> str:
    """Name the commands of a RESP chunk: the first, and how many follow it."""
    lines = data.split(b"\r\n")
    count = sum(1 for line in lines if line.startswith(b"*"))
    first = lines[2].decode(errors="replace").upper() if len(lines) > 2 else "?"
    return first if count <= 1 else f"{first} (+{count - 1})"


class TurnCounter:
    """A TCP proxy that counts round trips: how often a client speaks after the server did.

    Each turn is logged by what the client sent first in it (``describe``).
    """

    def __init__(self, target_port: int, describe: Callable[[bytes], str]) -> None:
        self.target_port = target_port
        self.describe = describe
        self.turns: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> TurnCounter:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        last = "server"

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter, side: str) -> None:
            nonlocal last
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    if side == "client" and last != "client":
                        self.turns.append(self.describe(data))
                    last = side
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pump(client_reader, server_writer, "client"), pump(server_reader, client_writer, "server"))


@dataclass
class Trips:
    """Per request: round trips on the wire, and SQLAlchemy's statements, transactions and checkouts."""

    wire: float | None
    statements: float | None = None
    transactions: float | None = None
    checkouts: float | None = None
    texts: list[str] = field(default_factory=list)
    """What one request sent: each round trip (wire), else each statement."""


async def count_trips(store: SessionStore, wire: TurnCounter | None, requests: int = 20) -> dict[str, Trips]:
    """Count what ``/read`` and ``/incr`` cost ``store``, one request at a time."""
    target = Target("trips", store, lambda _: asyncio.sleep(0), ManualClock(time.time()))
    cookie = await target.login_through_app("trips")
    for _ in range(3):
        await call(target.app, "POST", "/incr", cookie)
        await call(target.app, "GET", "/read", cookie)
    counts = {"statements": 0, "transactions": 0, "checkouts": 0}
    texts: list[str] = []
    sql = store.engine.sync_engine if isinstance(store, SqlStore) else None
    if sql is not None:

        def on_statement(*args: Any) -> None:
            counts["statements"] += 1
            texts.append(str(args[2]).split(None, 1)[0].upper())

        def on_begin(*_: Any) -> None:
            counts["transactions"] += 1

        def on_checkout(*_: Any) -> None:
            counts["checkouts"] += 1

        event.listen(sql, "before_cursor_execute", on_statement)
        event.listen(sql, "begin", on_begin)
        event.listen(sql.pool, "checkout", on_checkout)
    results: dict[str, Trips] = {}
    try:
        for label, method, path in (("read", "GET", "/read"), ("incr", "POST", "/incr")):
            for name in counts:
                counts[name] = 0
            texts.clear()
            turns_before = len(wire.turns) if wire else 0
            for _ in range(requests):
                status, _ = await call(target.app, method, path, cookie)
                if status != 200:
                    raise RuntimeError(f"{method} {path} answered {status}")
            turns = (len(wire.turns) - turns_before) / requests if wire else None
            # What one request sent: the last request's share of the log.
            sent = wire.turns[len(wire.turns) - int(turns or 0) :] if wire else texts[: len(texts) // requests]
            if sql is None:
                results[label] = Trips(turns, texts=sent)
            else:
                per = {name: value / requests for name, value in counts.items()}
                results[label] = Trips(turns, per["statements"], per["transactions"], per["checkouts"], sent)
    finally:
        if sql is not None:
            event.remove(sql, "before_cursor_execute", on_statement)
            event.remove(sql, "begin", on_begin)
            event.remove(sql.pool, "checkout", on_checkout)
    return results


async def trips_of_stores(redis_port: int | None, pg_url: str | None, folder: Path) -> dict[str, dict[str, Trips]]:
    found: dict[str, dict[str, Trips]] = {}
    if redis_port is not None:
        async with TurnCounter(redis_port, redis_message) as proxy:
            store: SessionStore = RedisStore.from_url(f"redis://127.0.0.1:{proxy.port}/0")
            await store.setup()
            found["redis"] = await count_trips(store, proxy)
            await store.close()
    if pg_url is not None:
        server_port = int(pg_url.rsplit(":", 1)[1].split("/", 1)[0])
        async with TurnCounter(server_port, postgres_message) as proxy:
            proxied = pg_url.replace(f":{server_port}/", f":{proxy.port}/")
            store = SqlStore.from_url(proxied, table_prefix="trips_")
            await store.setup()
            found["postgresql"] = await count_trips(store, proxy)
            await store.close()
    store = SqlStore.from_url(f"sqlite:///{folder / 'trips.db'}")
    await store.setup()
    found["sqlite"] = await count_trips(store, None)
    await store.close()
    return found


# -- purge ---------------------------------------------------------------------------------------


def purge_cli(url: str) -> tuple[float, str]:
    """Run ``sessionward sessions purge`` on ``url``; return its wall time and its last line."""
    command = [*CLI, "sessions", "purge", "--store", url]
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"purge failed: {done.stderr.strip() or done.stdout.strip()}")
    return elapsed, done.stdout.strip().splitlines()[-1]


@dataclass
class Purge:
    store: str
    expired: int
    live: int
    load_s: float
    purge_s: float
    purged: str
    again_s: float
    left: int


async def purge_on(
    name: str,
    url: str,
    count: int,
    load: Callable[[SqlStore, list[SessionRecord]], Awaitable[None]],
    rows: Callable[[], Awaitable[int]],
) -> Purge:
    store = SqlStore.from_url(url)
    await store.setup()
    engine = SessionEngine(POLICY)
    now = time.time()
    began = time.perf_counter()
    for start in range(0, count, 100_000):
        step = min(100_000, count - start)
        # Logged in three days ago: past the absolute timeout and the retention after it.
        expired = make_records(engine, "gone", start, step, now - 3 * 86400)
        await load(store, [record for _, record in expired])
        live = make_records(engine, "here", start, step, now)
        await load(store, [record for _, record in live])
    load_s = time.perf_counter() - began
    await store.close()
    purge_s, purged = purge_cli(url)
    again_s, _ = purge_cli(url)
    return Purge(name, count, count, load_s, purge_s, purged, again_s, await rows())


def check_cli() -> None:
    """Fail early when the CLI cannot run (its extra is missing)."""
    done = subprocess.run([*CLI, "--help"], capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError("the sessionward CLI does not run (pip install -e '.[cli]')")


async def purge_sqlite(count: int, folder: Path) -> Purge:
    path = folder / "purge.db"

    async def load(store: SqlStore, records: list[SessionRecord]) -> None:
        bulk_sqlite(store, path, records)

    async def rows() -> int:
        with sqlite3.connect(path) as db:
            return int(db.execute("select count(*) from sessionward_sessions").fetchone()[0])

    print("purge: loading SQLite...", file=sys.stderr)
    return await purge_on("sqlite", f"sqlite:///{path}", count, load, rows)


async def purge_postgres(count: int, url: str) -> Purge:
    import asyncpg

    async def load(store: SqlStore, records: list[SessionRecord]) -> None:
        await bulk_postgres(store, url, records)

    async def rows() -> int:
        connection = await asyncpg.connect(url)
        try:
            return int(await connection.fetchval("select count(*) from sessionward_sessions"))
        finally:
            await connection.close()

    print("purge: loading PostgreSQL...", file=sys.stderr)
    return await purge_on("postgresql", url, count, load, rows)


async def purges(args: argparse.Namespace, folder: Path) -> list[Purge]:
    check_cli()
    done: list[Purge] = []
    for name in args.purge_stores:
        if name == "sqlite":
            done.append(await purge_sqlite(args.purge, folder))
        elif name == "postgres":
            async with private_postgres(args.postgres) as url:
                if url is not None:
                    done.append(await purge_postgres(args.purge, url))
    return done


# -- the run -------------------------------------------------------------------------------------


@dataclass
class StoreResults:
    requests: dict[int, dict[str, Sample]] = field(default_factory=dict)
    users: dict[int, dict[int, tuple[float, float]]] = field(default_factory=dict)
    load_s: dict[int, float] = field(default_factory=dict)


async def run_store(target: Target, args: argparse.Namespace) -> StoreResults:
    results = StoreResults()
    await target.store.setup()
    bare: App = Starlette(routes=ROUTES)
    if "users" in args.parts:
        await make_owners(target)
    for size in args.sizes:
        print(f"{target.name}: filling to {size:,} sessions...", file=sys.stderr)
        began = time.perf_counter()
        await target.grow_to(size)
        results.load_s[size] = time.perf_counter() - began
        if "requests" in args.parts:
            results.requests[size] = await requests_at(target, bare, args)
        if "users" in args.parts:
            results.users[size] = await users_at(target, args.reps)
    await target.store.close()
    return results


def report_requests(name: str, results: StoreResults) -> None:
    if not results.requests:
        return
    print(f"\n{name}: /read and /incr with the store holding N sessions (in process, 32 in flight)")
    print(f"  {'N':>10} {'endpoint':<9} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'cpu µs':>7} {'of bare':>8}", end="")
    print(f" {'req/s vs first N':>17} {'p99 vs first N':>15}")
    first = next(iter(results.requests.values()))
    for size, samples in results.requests.items():
        bare = samples["bare read"]
        for label in ("bare read", "read", "incr"):
            s = samples[label]
            print(f"  {size:>10,} {label:<9} {s.rps:>9,.0f} {s.p50_ms:>7.2f} {s.p99_ms:>7.2f} {s.cpu_us:>7.0f}", end="")
            print(
                f" {s.rps / bare.rps:>8.1%} {s.rps / first[label].rps:>17.1%} {s.p99_ms / first[label].p99_ms:>14.2f}x"
            )
    loads = ", ".join(f"{size:,} in {seconds:.1f} s" for size, seconds in results.load_s.items())
    print(f"  filled up (first size: logins through the app; then bulk): {loads}")


def report_users(name: str, results: StoreResults) -> None:
    if not results.users:
        return
    print(f"\n{name}: one user's sessions, ms (median); the store holds N sessions")
    print(f"  {'N':>10} {'user has':>9} {'list_sessions':>14} {'login, max_sessions':>20}", end="")
    print(f" {'list vs first N':>16} {'login vs first N':>17}")
    first = next(iter(results.users.values()))
    for size, per_user in results.users.items():
        for count, (listing, logging_in) in per_user.items():
            print(f"  {size:>10,} {count:>9} {listing:>14.3f} {logging_in:>20.3f}", end="")
            print(f" {listing / first[count][0]:>15.2f}x {logging_in / first[count][1]:>16.2f}x")


def shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def report_trips(found: dict[str, dict[str, Trips]]) -> None:
    if not found:
        return
    print("\nstore round trips per request (one request at a time; wire: counted by a TCP proxy)")
    print(
        f"  {'store':<11} {'request':<8} {'wire':>5} {'statements':>11} {'transactions':>13} {'checkouts':>10}", end=""
    )
    print("  sent (each round trip, else each statement)")
    for store, per in found.items():
        for label, t in per.items():
            print(f"  {store:<11} {label:<8} {shown(t.wire):>5} {shown(t.statements):>11}", end="")
            print(f" {shown(t.transactions):>13} {shown(t.checkouts):>10}  {' | '.join(t.texts)}")


def report_purges(done: list[Purge]) -> None:
    if not done:
        return
    print("\nsessions purge (the CLI, batches of 500): expired + live sessions in the store")
    print(f"  {'store':<11} {'expired':>10} {'live':>10} {'purge s':>8} {'again s':>8} {'µs/removed':>11}", end="")
    print(f" {'rows left':>10}  loaded in")
    for p in done:
        per_removed = max(0.0, p.purge_s - p.again_s) / p.expired * 1e6
        print(
            f"  {p.store:<11} {p.expired:>10,} {p.live:>10,} {p.purge_s:>8.1f} {p.again_s:>8.2f} {per_removed:>11.1f}",
            end="",
        )
        print(f" {p.left:>10,}  {p.load_s:.0f} s  ({p.purged})")
    print("  again: the same command with nothing due (its fixed cost); µs/removed: (purge - again) / expired")


async def main(args: argparse.Namespace) -> None:
    with private_redis() as redis_port, tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        results: dict[str, StoreResults] = {}
        found: dict[str, dict[str, Trips]] = {}
        async with private_postgres(args.postgres) as pg_url:
            if "redis" in args.stores and redis_port is not None and {"requests", "users"} & set(args.parts):
                store = RedisStore.from_url(f"redis://127.0.0.1:{redis_port}/0")
                target = Target("redis", store, lambda records: bulk_redis(store, records), ManualClock(time.time()))
                results["redis"] = await run_store(target, args)
            if "postgres" in args.stores and pg_url is not None and {"requests", "users"} & set(args.parts):
                url = pg_url
                sql = SqlStore.from_url(url)
                pg_target = Target(
                    "postgresql", sql, lambda records: bulk_postgres(sql, url, records), ManualClock(time.time())
                )
                results["postgresql"] = await run_store(pg_target, args)
            if "trips" in args.parts:
                found = await trips_of_stores(redis_port, pg_url, folder)
        done = await purges(args, folder) if "purge" in args.parts else []
    for name, result in results.items():
        report_requests(name, result)
        report_users(name, result)
    report_trips(found)
    report_purges(done)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="200,10000,1000000", help="sessions in the store, comma-separated, growing")
    parser.add_argument("--stores", default="redis,postgres")
    parser.add_argument("--purge", type=int, default=1_000_000, help="expired (and as many live) sessions to purge")
    parser.add_argument("--purge-stores", default="postgres,sqlite")
    parser.add_argument("--parts", default="requests,users,purge,trips")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per timed sample")
    parser.add_argument("--rounds", type=int, default=2, help="samples per endpoint (alternating order)")
    parser.add_argument("--working-set", type=int, default=10_000, help="sessions the timed requests rotate over")
    parser.add_argument("--reps", type=int, default=20, help="list_sessions and logins timed per user and size")
    parser.add_argument("--postgres", default=os.environ.get("SESSIONWARD_BENCH_PG", PG_SERVER))
    parser.add_argument("--quick", action="store_true", help="every size 100 times smaller")
    args = parser.parse_args(argv)
    shrink = 100 if args.quick else 1
    args.sizes = [max(2, int(s) // shrink) for s in args.sizes.split(",")]
    args.purge = max(10, args.purge // shrink)
    args.stores = args.stores.split(",")
    args.purge_stores = args.purge_stores.split(",")
    args.parts = args.parts.split(",")
    return args


if __name__ == "__main__":
    uvloop.run(main(parse()))
