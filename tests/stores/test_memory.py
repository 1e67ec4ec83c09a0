"""What only the memory store has: one lock makes each of its blocking methods atomic across threads.

The shared guarantees are in ``test_contract.py``; there the blocking store is raced
through worker threads too, but with Python's default switch interval a thread rarely
loses the interpreter inside one short method. Here threads switch every microsecond, so
a method that was not atomic would be cut in the middle many times over.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from sessionward._sync.stores import MemoryStore as BlockingMemoryStore
from sessionward.stores.memory import MemoryStore

from .builders import NOW

THREADS = 8
HITS = 2000


@pytest.fixture
def switching_often() -> Iterator[None]:
    """Make the interpreter switch threads every microsecond while the test runs."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _in_threads(work: Callable[[], None]) -> None:
    start = threading.Barrier(THREADS)

    def run() -> None:
        start.wait()
        work()

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.mark.usefixtures("switching_often")
def test_racing_threads_cannot_lose_hits_and_slip_past_the_login_throttle() -> None:
    store = BlockingMemoryStore()
    name = hashlib.sha256(b"account:alice").hexdigest()

    def hit() -> None:
        for _ in range(HITS):
            store.count_hit(name, 60.0, NOW)

    _in_threads(hit)

    assert store.count_hit(name, 60.0, NOW).count == THREADS * HITS + 1


async def test_the_async_store_is_the_blocking_one_called_on_the_loop() -> None:
    store = MemoryStore()
    name = hashlib.sha256(b"client:203.0.113.7").hexdigest()

    await store.count_hit(name, 60.0, NOW)

    assert isinstance(store.sync, BlockingMemoryStore)
    assert store.sync.count_hit(name, 60.0, NOW).count == 2  # one store, no copy
