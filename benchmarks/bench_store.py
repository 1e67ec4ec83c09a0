"""The Redis store on its own: sessions loaded and saved per second, and round trips per request.

Starts a private ``redis-server`` on a free port and measures, in one process on uvloop:

* ``load`` and ``save`` calls per second with 32 concurrent callers over 200 sessions,
  through the store's hot path (auto-pipelined) and through plain redis-py (the same
  store with the pipeline switched off), so the pipeline's effect shows;
* the CPU cost per request of the ASGI middleware around a tiny Starlette app, for a
  read and for a write, against the same app without sessions (in-process ASGI calls,
  no sockets, so only the middleware and its store calls differ);
* the Redis commands each kind of request sends, counted with ``MONITOR`` (commands run
  inside Lua scripts are not round trips and are left out).

Usage: .venv/bin/python benchmarks/bench_store.py [--seconds 2] [--callers 32]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import uvloop
from bench_middleware import ROUTES, call, session_cookies
from starlette.applications import Starlette

from sessionward import CookiePolicy, SessionPolicy
from sessionward.asgi.middleware import SessionMiddleware
from sessionward.core.engine import SessionEngine
from sessionward.core.records import SessionRecord
from sessionward.io.manager import SessionManager
from sessionward.stores.redis import RedisStore

POLICY = SessionPolicy(cookie=CookiePolicy(secure=False))
App = Callable[..., Awaitable[None]]


@contextlib.contextmanager
def private_redis() -> Iterator[int]:
    """Run a throw-away redis-server; yield its port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
                time.sleep(0.05)
            yield port
        finally:
            process.terminate()
            process.wait(timeout=10)


def open_store(port: int, *, pipelined: bool) -> RedisStore:
    store = RedisStore.from_url(f"redis://127.0.0.1:{port}/0")
    if not pipelined:
        store._pipeline = None  # the plain redis-py path, for comparison
    return store


async def rate(callers: int, seconds: float, work: Callable[[int], Awaitable[object]]) -> float:
    """Return calls per second of ``work(i)`` with ``callers`` concurrent callers."""
    done = 0
    stop = time.perf_counter() + seconds

    async def caller(offset: int) -> None:
        nonlocal done
        i = offset
        while time.perf_counter() < stop:
            await work(i)
            i += callers
            done += 1

    began = time.perf_counter()
    await asyncio.gather(*(caller(c) for c in range(callers)))
    return done / (time.perf_counter() - began)


async def store_rates(port: int, callers: int, seconds: float) -> dict[str, float]:
    """Return the best of two samples of loads and saves per second, with and without the pipeline."""
    results: dict[str, float] = {}
    for pipelined in (True, False, True, False):
        store = open_store(port, pipelined=pipelined)
        mode = "auto-pipelined" if pipelined else "plain redis-py"
        for name, sample in (await rates_of(store, callers, seconds)).items():
            key = f"{name} ({mode})"
            results[key] = max(results.get(key, 0.0), sample)
        await store.close()
    return results


async def rates_of(store: RedisStore, callers: int, seconds: float) -> dict[str, float]:
    engine = SessionEngine(POLICY)
    now = time.time()
    records: list[SessionRecord] = []
    for _ in range(200):
        _, record = engine.new_record(now, {"n": 0})
        await store.establish(record)
        records.append(record)

    async def load(i: int) -> object:
        return await store.load(records[i % len(records)].key, now)

    async def save(i: int) -> object:
        record = records[i % len(records)]
        update = engine.plan_update(record, {"n": i}, frozenset(), now, touch=False)
        assert update is not None
        return await store.save(record.key, update)

    return {"load": await rate(callers, seconds, load), "save": await rate(callers, seconds, save)}


async def middleware_costs(port: int, requests: int) -> dict[str, float]:
    """Return µs per request, in process, of the bare app and of the middleware with Redis."""
    store = open_store(port, pipelined=True)
    bare: App = Starlette(routes=ROUTES)
    wrapped: App = SessionMiddleware(Starlette(routes=ROUTES), SessionManager(store, POLICY))
    cookies = await session_cookies(wrapped, 200)

    async def cost(app: App, method: str, path: str, jar: list[bytes]) -> float:
        per_caller = requests // 32

        async def caller(offset: int) -> None:
            for i in range(per_caller):
                status, _ = await call(app, method, path, jar[(offset + i * 32) % len(jar)] if jar else None)
                if status != 200:
                    raise RuntimeError(f"{method} {path} answered {status}")

        began = time.process_time()
        await asyncio.gather(*(caller(c) for c in range(32)))
        return (time.process_time() - began) / (per_caller * 32) * 1e6

    samples: dict[str, list[float]] = {}
    for _ in range(3):
        for label, app, method, path, jar in (
            ("bare app, GET /read", bare, "GET", "/read", []),
            ("sessionward, GET /read", wrapped, "GET", "/read", cookies),
            ("sessionward, POST /incr", wrapped, "POST", "/incr", cookies),
        ):
            samples.setdefault(label, []).append(await cost(app, method, path, jar))
    await store.close()
    return {label: statistics.median(values) for label, values in samples.items()}


async def round_trips(port: int) -> dict[str, list[str]]:
    """Return the commands sent to Redis (not those inside scripts) for each kind of request."""
    store = open_store(port, pipelined=True)
    app: App = SessionMiddleware(Starlette(routes=ROUTES), SessionManager(store, POLICY))
    [cookie] = await session_cookies(app, 1)
    await call(app, "POST", "/incr", cookie)  # loads the save script once
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"MONITOR\r\n")
    await reader.readline()
    # A connection in MONITOR mode runs no commands: the markers go through another one.
    marker_reader, marker_writer = await asyncio.open_connection("127.0.0.1", port)
    counted: dict[str, list[str]] = {}

    async def sent(label: str, method: str, path: str, jar: bytes | None) -> None:
        marker = f"bench-marker-{len(counted)}".encode()
        await call(app, method, path, jar)
        marker_writer.write(b"ECHO " + marker + b"\r\n")  # everything before it came from the request
        await marker_reader.readline()
        await marker_reader.readline()
        commands: list[str] = []
        while marker not in (line := await reader.readline()):
            text = line.decode(errors="replace")
            if text.startswith("+") and " lua] " not in text and "] " in text:
                commands.append(text.split("] ", 1)[1].split(" ", 1)[0].strip('"').upper())
        counted[label] = commands

    await sent("login", "POST", "/login", None)
    await sent("read", "GET", "/read", cookie)
    await sent("write (incr)", "POST", "/incr", cookie)
    await sent("no cookie", "GET", "/read", None)
    writer.close()
    marker_writer.close()
    await store.close()
    return counted


async def main(seconds: float, callers: int) -> None:
    with private_redis() as port:
        print("measuring store calls...", file=sys.stderr)
        rates = await store_rates(port, callers, seconds)
        print("measuring the middleware...", file=sys.stderr)
        costs = await middleware_costs(port, 6400)
        trips = await round_trips(port)
    print(f"\nstore calls per second ({callers} concurrent callers, 200 sessions, one process):")
    for label, value in rates.items():
        print(f"  {label:<30} {value:>10,.0f} /s   {1e6 / value:6.1f} µs each")
    print("\nCPU per request, in-process ASGI (no sockets; median of 3):")
    bare = costs["bare app, GET /read"]
    for label, value in costs.items():
        extra = "" if value is bare else f"   (+{value - bare:.1f} µs over the bare app)"
        print(f"  {label:<30} {value:>7.1f} µs{extra}")
    print("\nRedis commands per request (MONITOR; commands inside scripts are not round trips):")
    for label, commands in trips.items():
        print(f"  {label:<30} {len(commands)}  {' '.join(commands)}")


def run(arguments: Any) -> int:
    if shutil.which("redis-server") is None:
        print("redis-server is missing (apt-get install -y redis-server)", file=sys.stderr)
        return 2
    uvloop.run(main(arguments.seconds, arguments.callers))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per rate sample")
    parser.add_argument("--callers", type=int, default=32)
    sys.exit(run(parser.parse_args()))
