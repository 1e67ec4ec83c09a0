"""PostgreSQL and SQLite as the session store: against Redis, and against a bare primary-key lookup.

One command::

    .venv/bin/python benchmarks/bench_sql_store.py [--seconds 2] [--rounds 3] [--sessions 200]
        [--stores redis,postgres,sqlite] [--profile postgres] [--quick]

In process, on uvloop, the app of ``bench_scale.py`` (``/read`` the counter, ``POST /incr``
it) behind the ASGI :class:`~sessionward.asgi.middleware.SessionMiddleware`, called directly
(no sockets), on each store with ``--sessions`` sessions logged in through it and 32
requests in flight rotating over their cookies, in alternating rounds with:

* the bare app (no sessions): the ratios' baseline;
* the floor of each SQL database: the same routes without the library, each request
  hashing its cookie to the storage key and reading the row by primary key (``/read``:
  one ``SELECT``; ``/incr``: that ``SELECT`` and one ``UPDATE`` of the data, both
  autocommit) on the store's own table. PostgreSQL: an asyncpg pool of 15 connections (as
  many as SQLAlchemy's default pool may open), without asyncpg's reset query on release.
  SQLite: 15 aiosqlite connections with the store's ``journal_mode`` and ``synchronous``,
  writers queued on an ``asyncio.Lock`` as the store queues them. It is the limit of a
  session read and a read-modify-write in one process.

Printed: req/s, p50/p99 latency, CPU per request of this process (its threads included,
aiosqlite's; not the database servers'), connections the store's pool opened, and ratios
to the bare app, to the same app on Redis and to the floor. Then, for PostgreSQL, the
round trips per request with 32 in flight, counted by a TCP proxy (the store and its
floor, one second each). ``--profile postgres`` (or ``sqlite``, ``redis``) also runs
pyinstrument over ``/read`` and ``/incr`` on that store. ``--quick``: short samples, 20
sessions. The machine is shared and noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import uvloop
from bench_scale import (
    PG_SERVER,
    POLICY,
    ROUTES,
    App,
    Sample,
    TurnCounter,
    call,
    measure,
    median_sample,
    postgres_message,
    private_postgres,
    private_redis,
)
from sqlalchemy import event
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionward.asgi.middleware import SessionMiddleware
from sessionward.core.ids import storage_key
from sessionward.io.manager import SessionManager
from sessionward.stores.base import SessionStore
from sessionward.stores.redis import RedisStore
from sessionward.stores.sql import SqlStore

POOL_SIZE = 15
COOKIE_PREFIX = (POLICY.cookie.name or "sid") + "="
TABLE = "sessionward_sessions"


def key_of(request: Request) -> str | None:
    """The storage key of the request's session cookie (what the library computes first)."""
    raw = request.cookies.get(COOKIE_PREFIX[:-1])
    return storage_key(raw) if raw else None


class Floor:
    """A primary-key read and update on one database, without the library."""

    async def read(self, key: str) -> str | None:
        raise NotImplementedError

    async def write(self, key: str, data: str) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def app(self) -> App:
        async def read(request: Request) -> Response:
            key = key_of(request)
            data = await self.read(key) if key else None
            return JSONResponse({"n": orjson.loads(data).get("n", 0) if data else 0})

        async def incr(request: Request) -> Response:
            key = key_of(request)
            if key is None:
                return JSONResponse({"error": "no session"}, status_code=401)
            text = await self.read(key)
            data = orjson.loads(text) if text else {}
            data["n"] = int(data.get("n", 0)) + 1
            await self.write(key, orjson.dumps(data).decode())
            return JSONResponse({"n": data["n"]})

        return Starlette(routes=[Route("/read", read), Route("/incr", incr, methods=["POST"])])


class PostgresFloor(Floor):
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @classmethod
    async def open(cls, url: str) -> PostgresFloor:
        import asyncpg

        async def keep(_connection: Any) -> None:
            """Skip asyncpg's reset on release (one more round trip): the floor runs nothing to undo."""

        return cls(await asyncpg.create_pool(url, min_size=POOL_SIZE, max_size=POOL_SIZE, reset=keep))

    async def read(self, key: str) -> str | None:
        value: str | None = await self.pool.fetchval(f"SELECT data FROM {TABLE} WHERE key = $1", key)
        return value

    async def write(self, key: str, data: str) -> None:
        await self.pool.execute(f"UPDATE {TABLE} SET data = $2, version = version + 1 WHERE key = $1", key, data)

    async def close(self) -> None:
        await self.pool.close()


class SqliteFloor(Floor):
    def __init__(self, connections: list[Any]) -> None:
        self.idle: asyncio.Queue[Any] = asyncio.Queue()
        for connection in connections:
            self.idle.put_nowait(connection)
        self.connections = connections
        self.write_gate = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> SqliteFloor:
        import aiosqlite

        connections = []
        for _ in range(POOL_SIZE):
            connection = await aiosqlite.connect(path, isolation_level=None)
            await connection.execute("PRAGMA journal_mode=WAL")
            await connection.execute("PRAGMA synchronous=NORMAL")
            connections.append(connection)
        return cls(connections)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        connection = await self.idle.get()
        try:
            yield connection
        finally:
            self.idle.put_nowait(connection)

    async def read(self, key: str) -> str | None:
        async with (
            self.connection() as connection,
            connection.execute(f"SELECT data FROM {TABLE} WHERE key = ?", (key,)) as cursor,
        ):
            row = await cursor.fetchone()
        return None if row is None else str(row[0])

    async def write(self, key: str, data: str) -> None:
        async with self.write_gate, self.connection() as connection:
            await connection.execute(f"UPDATE {TABLE} SET data = ?, version = version + 1 WHERE key = ?", (data, key))

    async def close(self) -> None:
        for connection in self.connections:
            await connection.close()


@dataclass
class Variant:
    """One app measured: its name, the app, whether it serves ``/incr``, connections it opened."""

    name: str
    app: App
    writes: bool = True
    connects: Callable[[], int] = lambda: 0


def connections_opened(store: SessionStore) -> Callable[[], int]:
    """Count the connections a SQL store's pool opens from now on (none for other stores)."""
    opened = [0]
    if isinstance(store, SqlStore):

        def on_connect(*_: Any) -> None:
            opened[0] += 1

        event.listen(store.engine.sync_engine.pool, "connect", on_connect)
    return lambda: opened[0]


async def sessions_of(app: App, count: int) -> list[bytes]:
    cookies = []
    for i in range(count):
        status, cookie = await call(app, "POST", "/login", None, f"user=u{i}".encode())
        if status != 200 or cookie is None:
            raise RuntimeError(f"login answered {status}")
        cookies.append(cookie)
    return cookies


@dataclass
class Taken:
    """One variant's figures for one endpoint."""

    sample: Sample
    connects: float
    """Connections the store's pool opened per 1,000 requests."""


async def timed(variant: Variant, method: str, path: str, cookies: list[bytes], seconds: float) -> Taken:
    opened = variant.connects()
    sample = await measure(variant.app, method, path, cookies, seconds)
    return Taken(sample, (variant.connects() - opened) / max(1.0, sample.rps * seconds) * 1000)


async def profile(name: str, app: App, cookies: list[bytes], seconds: float) -> None:
    from pyinstrument import Profiler

    for method, path in (("GET", "/read"), ("POST", "/incr")):
        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
        await measure(app, method, path, cookies, seconds)
        profiler.stop()
        print(f"\n--- pyinstrument: {name} {method} {path} ---")
        print(profiler.output_text(unicode=False, color=False, show_all=False, short_mode=False))


async def main(args: argparse.Namespace) -> None:
    stores: dict[str, SessionStore] = {}
    floors: dict[str, Floor] = {}
    with private_redis() as redis_port, tempfile.TemporaryDirectory() as scratch:
        async with private_postgres(args.postgres) as pg_url:
            if "redis" in args.stores and redis_port is not None:
                stores["redis"] = RedisStore.from_url(f"redis://127.0.0.1:{redis_port}/0")
            if "postgres" in args.stores and pg_url is not None:
                stores["postgresql"] = SqlStore.from_url(pg_url)
            if "sqlite" in args.stores:
                stores["sqlite"] = SqlStore.from_url(f"sqlite:///{Path(scratch) / 'sessions.db'}")
            variants = [Variant("bare", Starlette(routes=ROUTES), writes=False)]
            cookies: dict[str, list[bytes]] = {}
            for name, store in stores.items():
                await store.setup()
                app: App = SessionMiddleware(Starlette(routes=ROUTES), SessionManager(store, POLICY))
                cookies[name] = await sessions_of(app, args.sessions)
                variants.append(Variant(name, app, connects=connections_opened(store)))
            if pg_url is not None and "postgresql" in stores:
                floors["postgresql"] = await PostgresFloor.open(pg_url)
            if "sqlite" in stores:
                floors["sqlite"] = await SqliteFloor.open(Path(scratch) / "sessions.db")
            for name, floor in floors.items():
                variants.append(Variant(f"floor {name}", floor.app()))
                cookies[f"floor {name}"] = cookies[name]
            any_cookies = next(iter(cookies.values()), [])
            cookies["bare"] = any_cookies
            results = await rounds(variants, cookies, args)
            loaded = await trips_under_load(pg_url, cookies.get("postgresql", []), args) if pg_url else {}
            target = {"postgres": "postgresql"}.get(args.profile or "", args.profile or "")
            chosen = next((v for v in variants if v.name == target), None)
            if chosen is not None:
                await profile(chosen.name, chosen.app, cookies[chosen.name], args.seconds)
            for floor in floors.values():
                await floor.close()
            for store in stores.values():
                await store.close()
    report(results, args)
    report_loaded(loaded)


async def trips_under_load(url: str, cookies: list[bytes], args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    """Round trips per request with 32 in flight, through a counting proxy: the store and its floor.

    Returns, per variant and endpoint, round trips and connections opened per request.
    """
    found: dict[str, tuple[float, float]] = {}
    if not cookies:
        return found
    server_port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    async with TurnCounter(server_port, postgres_message) as proxy:
        proxied = url.replace(f":{server_port}/", f":{proxy.port}/")
        store = SqlStore.from_url(proxied)
        floor = await PostgresFloor.open(proxied)
        variants = [
            Variant("postgresql", SessionMiddleware(Starlette(routes=ROUTES), SessionManager(store, POLICY))),
            Variant("floor postgresql", floor.app()),
        ]
        variants[0].connects = connections_opened(store)
        for variant in variants:
            for label, method, path in (("read", "GET", "/read"), ("incr", "POST", "/incr")):
                await measure(variant.app, method, path, cookies, min(args.seconds, 0.5))  # warm
                turns, opened = len(proxy.turns), variant.connects()
                sample = await measure(variant.app, method, path, cookies, min(args.seconds, 1.0))
                requests = max(1.0, sample.rps * min(args.seconds, 1.0))
                found[f"{variant.name} {label}"] = (
                    (len(proxy.turns) - turns) / requests,
                    (variant.connects() - opened) / requests,
                )
        await floor.close()
        await store.close()
    return found


def report_loaded(found: dict[str, tuple[float, float]]) -> None:
    if not found:
        return
    print("\nPostgreSQL round trips per request with 32 in flight (through a counting TCP proxy):")
    for name, (turns, opened) in found.items():
        print(f"  {name:<24} {turns:>6.2f} round trips, {opened * 1000:>6.1f} connections opened per 1,000 requests")


async def rounds(
    variants: list[Variant], cookies: dict[str, list[bytes]], args: argparse.Namespace
) -> dict[tuple[str, str], Taken]:
    for variant in variants:  # warm: connections, scripts, prepared statements
        for cookie in cookies[variant.name][:50]:
            await call(variant.app, "GET", "/read", cookie)
            if variant.writes:
                await call(variant.app, "POST", "/incr", cookie)
    samples: dict[tuple[str, str], list[Taken]] = {}
    for round_number in range(args.rounds):
        order = variants if round_number % 2 == 0 else list(reversed(variants))
        for variant in order:
            for label, method, path in (("read", "GET", "/read"), ("incr", "POST", "/incr")):
                if label == "incr" and not variant.writes:
                    continue
                taken = await timed(variant, method, path, cookies[variant.name], args.seconds)
                samples.setdefault((variant.name, label), []).append(taken)
    return {
        key: Taken(median_sample([t.sample for t in values]), statistics.median(t.connects for t in values))
        for key, values in samples.items()
    }


def report(results: dict[tuple[str, str], Taken], args: argparse.Namespace) -> None:
    bare = results[("bare", "read")].sample
    print(
        f"\nSQL stores against Redis and a bare primary-key lookup ({args.sessions} sessions, 32 in flight, in process)"
    )
    header = f"  {'variant':<18} {'endpoint':<8} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'cpu µs':>7} {'conn/1k':>8}"
    print(header + f" {'of bare':>8} {'vs redis':>9} {'vs floor':>9}")
    for (name, label), taken in results.items():
        sample = taken.sample
        redis = results.get(("redis", label))
        floor = results.get((f"floor {name}", label))
        versus_redis = f"{sample.rps / redis.sample.rps:>9.1%}" if redis and name not in ("redis", "bare") else " " * 9
        versus_floor = f"{sample.rps / floor.sample.rps:>9.1%}" if floor else " " * 9
        print(
            f"  {name:<18} {label:<8} {sample.rps:>8,.0f} {sample.p50_ms:>7.2f} {sample.p99_ms:>7.2f} "
            f"{sample.cpu_us:>7.0f} {taken.connects:>8.1f} {sample.rps / bare.rps:>8.1%} {versus_redis} {versus_floor}"
        )
    print("  cpu µs: this process's CPU per request; conn/1k: connections the store's pool opened per 1,000 requests")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per timed sample")
    parser.add_argument("--rounds", type=int, default=3, help="samples per variant and endpoint (alternating order)")
    parser.add_argument("--sessions", type=int, default=200, help="sessions the requests rotate over")
    parser.add_argument("--stores", default="redis,postgres,sqlite")
    parser.add_argument("--profile", choices=("redis", "postgres", "sqlite"), help="profile this store's requests")
    parser.add_argument("--postgres", default=PG_SERVER)
    parser.add_argument("--quick", action="store_true", help="short samples, 20 sessions")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds, args.sessions = min(args.seconds, 0.3), min(args.rounds, 1), min(args.sessions, 20)
    args.stores = args.stores.split(",")
    return args


if __name__ == "__main__":
    uvloop.run(main(parse()))
