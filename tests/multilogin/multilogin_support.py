"""Stores shared by several OS processes, and the processes that race on them."""

from __future__ import annotations

import asyncio
import importlib.util
import secrets
import select
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TypeVar

import orjson
import pytest
from multilogin_worker import Outcome, Plan, open_worker_store

from sessionward.core.records import SessionRecord
from sessionward.stores.base import SessionStore
from support.helpers import service_missing

T = TypeVar("T")

WORKER = Path(__file__).with_name("multilogin_worker.py")
SHARED_STORES = ["sqlite", "postgres", "redis", "redis_cluster"]
"""Stores many app servers can share; the memory store is raced by tasks in one process."""


@dataclass(frozen=True, slots=True)
class Namespace:
    """A clean place in a store for one test: URL plus SQL table prefix."""

    url: str
    table_prefix: str = "sessionward_"

    def open(self) -> SessionStore:
        """Open a store on this namespace (a connection of the test process)."""
        return open_worker_store(self.url, self.table_prefix)


def service_url(request: pytest.FixtureRequest, fixture: str) -> str:
    """Return the URL a service fixture gives, skipping (or failing in CI) without it."""
    try:
        return str(request.getfixturevalue(fixture))
    except pytest.FixtureLookupError:
        service_missing(f"the {fixture} fixture is not defined yet")


def namespace_for(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Namespace:
    """Return a clean, set-up namespace of the store ``kind``; drop it after the test."""
    if kind.startswith("redis") and importlib.util.find_spec("sessionward.stores.redis") is None:
        pytest.skip("the Redis store (sessionward.stores.redis) is not in this tree yet")
    if kind == "sqlite":
        space = Namespace(f"sqlite:///{tmp_path / 'shared.db'}")
    elif kind == "postgres":
        space = Namespace(service_url(request, "postgres_url"), table_prefix=f"sw_ml_{secrets.token_hex(4)}_")
    elif kind == "redis":
        space = Namespace(service_url(request, "redis_url"))  # flushed before each test
    else:
        space = Namespace(service_url(request, "redis_cluster_url"))
    on(space, lambda store: store.setup())
    if kind == "postgres":
        request.addfinalizer(lambda: on(space, _drop))
    return space


async def _drop(store: SessionStore) -> None:
    drop = getattr(store, "drop", None)
    if drop is not None:
        await drop()


def on(space: Namespace, work: Callable[[SessionStore], Awaitable[T]]) -> T:
    """Run ``work(store)`` on a fresh connection and close it."""

    async def go() -> T:
        store = space.open()
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(go())


def live_sessions(space: Namespace, user: str) -> list[SessionRecord]:
    """The user's live sessions, as any app server would list them."""
    return on(space, lambda store: store.list_user(user, time.time()))


class WorkerPool:
    """Login worker processes, started once and reused for many races.

    Starting a Python process that imports the store clients costs about a second on
    two cores; one pool serves every race of a test module.
    """

    def __init__(self, processes: int) -> None:
        self.workers = [
            subprocess.Popen(
                [sys.executable, str(WORKER)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                bufsize=0,
            )
            for _ in range(processes)
        ]

    def close(self) -> None:
        """Stop the workers (closing stdin ends their loop)."""
        for worker in self.workers:
            assert worker.stdin is not None
            worker.stdin.close()
        for worker in self.workers:
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            assert worker.stdout is not None
            worker.stdout.close()

    def race(self, space: Namespace, plan: Plan) -> list[Outcome]:
        """Run ``plan`` on ``space`` in every worker, all released at once."""
        line = orjson.dumps(asdict(replace(plan, url=space.url, table_prefix=space.table_prefix))) + b"\n"
        self._send(line)
        for worker in self.workers:
            answer = self._receive(worker)
            if answer != b"ready":
                pytest.fail(f"a login worker could not start: {answer.decode(errors='replace')}")
        # Every process is connected and waiting: release them together.
        self._send(b"go\n")
        outcomes = []
        for worker in self.workers:
            result = orjson.loads(self._receive(worker))
            if "error" in result:
                pytest.fail(f"a login worker failed: {result['error']}")
            outcomes.append(Outcome(**result))
        return outcomes

    def _send(self, line: bytes) -> None:
        for worker in self.workers:
            assert worker.stdin is not None
            worker.stdin.write(line)

    @staticmethod
    def _receive(worker: subprocess.Popen[bytes], timeout_s: float = 60) -> bytes:
        # Workers answer one line and then wait, so nothing is buffered beyond that line
        # and select() on the unbuffered pipe is exact.
        assert worker.stdout is not None
        ready, _, _ = select.select([worker.stdout], [], [], timeout_s)
        if not ready:
            pytest.fail(f"a login worker did not answer within {timeout_s} s")
        line = worker.stdout.readline()
        if not line:
            pytest.fail(f"a login worker exited (status {worker.wait()})")
        return line.strip()


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of ``(start, end)`` intervals that overlap at one instant."""
    # At equal instants count ends first: an interval that ends when another starts
    # does not overlap it.
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = peak = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


@contextmanager
def watch_live_count(space: Namespace, user: str) -> Iterator[list[int]]:
    """Poll the user's live-session count from another connection while the block runs."""
    seen: list[int] = []
    stop = threading.Event()

    async def poll() -> None:
        store = space.open()
        try:
            while not stop.is_set():
                seen.append(len(await store.list_user(user, time.time())))
                await asyncio.sleep(0.002)
        finally:
            await store.close()

    thread = threading.Thread(target=lambda: asyncio.run(poll()), daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(10)
