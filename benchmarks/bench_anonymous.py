"""What anonymous traffic makes a session store hold: entries and bytes per page, per store.

One command::

    .venv/bin/python benchmarks/bench_anonymous.py [--requests 100000] [--ips 1000]
        [--budget 120] [--pages all|writing] [--stores sqlite,postgres,redis]

Drives the demo in-process (its real middleware stack, no network) with anonymous
requests, each from a new visitor (an empty cookie jar, as a flood would be), spread
evenly over its pages — ``GET /``, ``GET /login``, ``GET /api/session/status``, a failed
``POST /api/login`` — and one route this benchmark adds that writes to the session
(``GET /bench/visit``, a visit counter: any application's anonymous write, say a cart).
It runs them from one client IP and from ``--ips`` forwarded IPs (the demo trusts the
loopback proxy for this run and the benchmark sets ``X-Forwarded-For``), and prints, per
store and page, how many entries (rows, keys) and bytes the store gained, and how many
live sessions and budget counters that was.

``--budget`` is ``SESSIONWARD_ANONYMOUS_SESSION_BUDGET`` (new anonymous sessions per
client and minute; 0 turns it off, which is how anonymous writes behaved before the
budget). The clock is a ManualClock that does not move: every request falls in one
budget window, so the writing route's growth is what one minute of such a flood leaves.

Bytes are what the store's storage takes: SQLite's used pages, PostgreSQL's total
relation size (8 KiB pages, dead row versions included until a vacuum), and the sum of
Redis's ``MEMORY USAGE`` over its keys. The demo's password hashing is made cheap for the
run (failed logins would otherwise spend their time in Argon2, which is not measured).

Stores: SQLite in a temporary file; PostgreSQL in a private database on 127.0.0.1:5432
(``--postgres`` names another server) when it answers; a private ``redis-server`` when
one is on the PATH. ``tests/budget/test_bench_anonymous.py`` runs :func:`measure` with a
few hundred requests as part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from sessionward import ManualClock
from sessionward.demo import create_app
from sessionward.demo.context import DemoContext
from sessionward.demo.users import UserDirectory
from sessionward.starlette import get_session

WRITING_PATH = "/bench/visit"


@dataclass(frozen=True)
class Page:
    """One kind of request the benchmark sends."""

    label: str
    method: str
    path: str
    needs_session: bool = False


PAGES = (
    Page("GET /", "GET", "/"),
    Page("GET /login", "GET", "/login"),
    Page("GET /api/session/status", "GET", "/api/session/status"),
    Page("POST /api/login (failed)", "POST", "/api/login"),
    Page(f"GET {WRITING_PATH} (writes)", "GET", WRITING_PATH, needs_session=True),
)

Size = Callable[[], tuple[int, int]]
"""Returns a store's entries (rows, keys) and bytes."""


@dataclass(frozen=True)
class Growth:
    """What one page's requests left in the store."""

    page: Page
    requests: int
    entries: int
    bytes: int
    sessions: int
    counters: int
    seconds: float


# -- the demo under load -------------------------------------------------------------------------


async def _visit(request: Request) -> Response:
    """An anonymous write, as any application's cart or visit counter makes one."""
    session = get_session(request)
    visits = session.get("visits", 0)
    session["visits"] = (visits if isinstance(visits, int) else 0) + 1
    return PlainTextResponse("counted")


def demo_app(store_url: str, budget: int) -> Starlette:
    """The demo on ``store_url``, trusting the loopback proxy, with the writing route added."""
    environ = {"SESSIONWARD_TRUSTED_PROXIES": "127.0.0.0/8", "SESSIONWARD_ANONYMOUS_SESSION_BUDGET": str(budget)}
    app = create_app(store_url, environ=environ, clock=ManualClock())
    app.router.routes.insert(0, Route(WRITING_PATH, _visit))
    context: DemoContext = app.state.demo
    context.users = UserDirectory(
        context.settings.users, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )
    return app


def forwarded_ip(index: int, ips: int) -> str:
    """The client address of request ``index`` when ``ips`` clients take turns."""
    client = index % ips
    return f"198.51.{client // 250}.{client % 250 + 1}"


async def measure(
    store_url: str, size: Size, *, requests: int, ips: int, budget: int, pages: tuple[Page, ...] = PAGES
) -> list[Growth]:
    """Send ``requests`` anonymous requests spread evenly over ``pages``; return each page's growth.

    Args:
        store_url: The demo's store (its schema is set up here).
        size: Measures the store's entries and bytes.
        requests: How many requests in all (each page gets an equal share).
        ips: 1: every request from one client; more: from that many forwarded clients.
        budget: ``SESSIONWARD_ANONYMOUS_SESSION_BUDGET`` for the run (0: off).
        pages: Which pages to send.
    """
    app = demo_app(store_url, budget)
    manager = app.state.demo.manager
    grown: list[Growth] = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="https://demo.test") as client:
            for page in pages:
                share = requests // len(pages)
                entries, stored = size()
                before = await manager.store.stats(manager.clock())
                started = time.perf_counter()
                for index in range(share):
                    headers = {"x-forwarded-for": forwarded_ip(index, ips)} if ips > 1 else {}
                    client.cookies.clear()  # a new visitor every time
                    body = {"username": "alice", "password": "wrong"} if page.method == "POST" else None
                    response = await client.request(page.method, page.path, json=body, headers=headers)
                    if response.status_code >= 500:
                        raise RuntimeError(f"{page.label}: {response.status_code} {response.text[:200]}")
                seconds = time.perf_counter() - started
                after = await manager.store.stats(manager.clock())
                entries_after, stored_after = size()
                grown.append(
                    Growth(
                        page,
                        share,
                        entries_after - entries,
                        stored_after - stored,
                        after.live_sessions - before.live_sessions,
                        after.counters - before.counters,
                        seconds,
                    )
                )
    return grown


# -- sizing each store ---------------------------------------------------------------------------


def sqlite_size(path: Path) -> Size:
    """Rows of every sessionward table, and the database's used pages in bytes."""

    def size() -> tuple[int, int]:
        with sqlite3.connect(path) as db:
            tables = [row[0] for row in db.execute("select name from sqlite_master where type = 'table'")]
            rows = sum(db.execute(f'select count(*) from "{name}"').fetchone()[0] for name in tables)
            pages = db.execute("pragma page_count").fetchone()[0] - db.execute("pragma freelist_count").fetchone()[0]
            page_size = db.execute("pragma page_size").fetchone()[0]
        return int(rows), int(pages * page_size)

    return size


def postgres_size(url: str) -> Size:
    """Rows of every table, and their total relation size (indexes and TOAST included)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))

    def size() -> tuple[int, int]:
        with engine.connect() as connection:
            tables = list(connection.execute(sa.text("select tablename from pg_tables where schemaname = 'public'")))
            rows = sum(connection.execute(sa.text(f'select count(*) from "{t[0]}"')).scalar_one() for t in tables)
            total = sum(
                connection.execute(sa.text("select pg_total_relation_size(:t)"), {"t": t[0]}).scalar_one()
                for t in tables
            )
        return int(rows), int(total)

    return size


def redis_size(port: int) -> Size:
    """Keys, and the sum of ``MEMORY USAGE`` over them."""
    import redis

    def size() -> tuple[int, int]:
        client = redis.Redis(port=port)
        try:
            keys = list(client.scan_iter(count=1000))
            used = sum(int(client.memory_usage(key) or 0) for key in keys)
        finally:
            client.close()
        return len(keys), used

    return size


# -- the stores ----------------------------------------------------------------------------------


@contextmanager
def sqlite_store(scratch: Path) -> Iterator[tuple[str, Size]]:
    database = scratch / f"sessions-{secrets.token_hex(4)}.db"
    yield f"sqlite:///{database}", sqlite_size(database)


@contextmanager
def postgres_store(server: str) -> Iterator[tuple[str, Size] | None]:
    import sqlalchemy as sa

    admin = sa.create_engine(f"{server}/postgres".replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"sw_bench_{secrets.token_hex(4)}"
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text(f'create database "{name}"'))
    except sa.exc.OperationalError as error:
        print(f"PostgreSQL at {server} does not answer ({str(error).splitlines()[0]}); skipped", file=sys.stderr)
        yield None
        return
    url = f"{server}/{name}"
    try:
        yield url, postgres_size(url)
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()


@contextmanager
def redis_store(scratch: Path) -> Iterator[tuple[str, Size] | None]:
    if not shutil.which("redis-server"):
        print("no redis-server on the PATH; Redis skipped", file=sys.stderr)
        yield None
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    command = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(scratch)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", redis_size(port)
    finally:
        server.terminate()
        server.wait(10)


# -- the report ----------------------------------------------------------------------------------


def report(store: str, ips: int, budget: int, grown: list[Growth]) -> None:
    budget_text = f"budget {budget}/min per client" if budget else "no budget"
    print(f"\n{store}, {'1 IP' if ips == 1 else f'{ips} forwarded IPs'}, {budget_text}")
    print(f"  {'page':34s} {'requests':>8s} {'entries':>9s} {'bytes':>11s} {'sessions':>9s} {'counters':>9s} {'s':>7s}")
    for g in grown:
        print(
            f"  {g.page.label:34s} {g.requests:8d} {g.entries:+9d} {g.bytes:+11d} {g.sessions:+9d} "
            f"{g.counters:+9d} {g.seconds:7.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000, help="requests per store and client set")
    parser.add_argument("--ips", type=int, default=1000, help="forwarded client IPs of the second run")
    parser.add_argument("--budget", type=int, default=120, help="new anonymous sessions per client and minute")
    parser.add_argument("--pages", choices=("all", "writing"), default="all")
    parser.add_argument("--stores", default="sqlite,postgres,redis")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    # One warning per client over its budget: a thousand clients would bury the report.
    logging.getLogger("sessionward").setLevel(logging.ERROR)
    pages = PAGES if args.pages == "all" else tuple(p for p in PAGES if p.needs_session)
    openers: dict[str, Callable[[Path], Any]] = {
        "sqlite": sqlite_store,
        "postgres": lambda _scratch: postgres_store(args.postgres),
        "redis": redis_store,
    }
    with tempfile.TemporaryDirectory() as scratch:
        for store in args.stores.split(","):
            for ips in (1, args.ips):
                with openers[store](Path(scratch)) as opened:
                    if opened is None:
                        break
                    url, size = opened
                    grown = asyncio.run(
                        measure(url, size, requests=args.requests, ips=ips, budget=args.budget, pages=pages)
                    )
                    report(store, ips, args.budget, grown)


if __name__ == "__main__":
    main()
