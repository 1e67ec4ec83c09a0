"""Blocking stand-ins for the few asyncio constructs the async I/O code uses.

``scripts/generate_sync.py`` turns the async stores and exchange into their synchronous
twins under :mod:`sessionward._sync` and rewrites ``asyncio.X`` to ``_blocking.X``; this
module is the only hand-written piece of that translation. Each name keeps asyncio's
meaning for a thread instead of a task:

* :func:`timeout` bounds nothing by itself: a blocking call cannot be cancelled from the
  outside, so the sync side relies on the drivers' socket and statement timeouts, which
  every store configures from the same ``timeout_s`` (F19 still holds: a dead store
  raises :class:`~sessionward.core.errors.StoreUnavailableError` within that time).
* :data:`Lock` is a :class:`threading.Lock`; :func:`sleep` is :func:`time.sleep`.
* :func:`call_inline` runs what asyncio would hand to a worker thread in the calling
  thread, which is already a worker.
* :func:`serialized` makes a method hold one re-entrant lock: what an event loop gives an
  await-free coroutine for free (it runs to its end) threads must take explicitly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

Lock = threading.Lock
sleep = time.sleep

_SERIAL = threading.RLock()


@contextmanager
def timeout(seconds: float | None) -> Iterator[None]:
    """Stand in for :func:`asyncio.timeout`: the drivers' own timeouts bound blocking calls."""
    del seconds
    yield


def call_inline(work: Callable[..., T], *args: Any) -> T:
    """Stand in for :func:`asyncio.to_thread`: run ``work`` here, in the caller's thread."""
    return work(*args)


def serialized(method: Callable[P, T]) -> Callable[P, T]:
    """Run ``method`` under one process-wide re-entrant lock (for in-memory state)."""

    @wraps(method)
    def locked(*args: P.args, **kwargs: P.kwargs) -> T:
        with _SERIAL:
            return method(*args, **kwargs)

    return locked
