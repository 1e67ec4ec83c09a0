"""What anonymous traffic makes a session store hold: records and bytes per page, per store.

One command::

    .venv/bin/python benchmarks/bench_anonymous.py [--requests 2000] [--ips 1000] [--store URL ...]

Drives the demo in-process (its real middleware stack, no network) with anonymous
requests spread over its public pages — ``GET /``, ``GET /login``,
``GET /api/session/status`` and a failed ``POST /api/login`` — from one client IP and
from ``--ips`` forwarded IPs (the demo trusts the loopback proxy for this run), and
prints, per store and page, how many entries and bytes the store gained. Stores default
to SQLite in a temporary file and, when ``redis-server`` is on the PATH, a private Redis.

Not part of the test suite; ``tests/lifecycle/test_anonymous_traffic.py`` holds the
pass/fail version (no growth at all, on every store).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from sessionward import ManualClock
from sessionward.demo import create_app

PAGES = (("GET", "/"), ("GET", "/login"), ("GET", "/api/session/status"), ("POST", "/api/login"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_size(port: int) -> tuple[int, int]:
    """Keys and used memory (bytes) of the Redis on ``port``."""
    import redis

    client = redis.Redis(port=port)
    try:
        return int(client.dbsize()), int(client.info("memory")["used_memory"])
    finally:
        client.close()


def sqlite_size(path: Path) -> tuple[int, int]:
    """Rows of the sessions table and bytes of the database file (WAL included)."""
    with sqlite3.connect(path) as db:
        rows = db.execute("select count(*) from sessionward_sessions").fetchone()[0]
    size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    return int(rows), size


async def drive(store_url: str, requests: int, ips: int) -> None:
    env = {"SESSIONWARD_TRUSTED_PROXIES": "127.0.0.0/8"}
    app = create_app(store_url, environ=env, clock=ManualClock())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="https://demo.test") as client:
            for i in range(requests):
                method, path = PAGES[i % len(PAGES)]
                headers = {"x-forwarded-for": f"198.51.{(i % ips) // 250}.{(i % ips) % 250}"} if ips > 1 else {}
                client.cookies.clear()  # every request a new visitor, as a flood would be
                body = {"username": "alice", "password": "wrong"} if method == "POST" else None
                await client.request(method, path, json=body, headers=headers)


def measure(name: str, store_url: str, size: Callable[[], tuple[int, int]], requests: int, ips: int) -> None:
    before = size()
    started = time.perf_counter()
    asyncio.run(drive(store_url, requests, ips))
    seconds = time.perf_counter() - started
    after = size()
    print(
        f"{name:8s} ips={ips:<5d} requests={requests:<7d} entries +{after[0] - before[0]:<7d} "
        f"bytes +{after[1] - before[1]:<10d} ({seconds:.1f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--ips", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        database = Path(scratch) / "sessions.db"
        url = f"sqlite:///{database}"
        asyncio.run(drive(url, 1, 1))  # create the schema
        for ips in (1, args.ips):
            measure("sqlite", url, lambda: sqlite_size(database), args.requests, ips)
        if shutil.which("redis-server"):
            port = free_port()
            server = subprocess.Popen(
                ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", scratch],
                stdout=subprocess.DEVNULL,
            )
            try:
                for _ in range(100):
                    with socket.socket() as probe:
                        if probe.connect_ex(("127.0.0.1", port)) == 0:
                            break
                    time.sleep(0.05)
                for ips in (1, args.ips):
                    measure("redis", f"redis://127.0.0.1:{port}/0", lambda: redis_size(port), args.requests, ips)
            finally:
                server.terminate()
                server.wait(10)


if __name__ == "__main__":
    main()
