"""Blocking stand-ins for the few asyncio constructs the async I/O code uses.

``scripts/generate_sync.py`` turns the async stores and exchange into their synchronous
twins under :mod:`sessionward._sync` and rewrites ``asyncio.X`` to ``_blocking.X``; this
module is the only hand-written piece of that translation. Each name keeps asyncio's
meaning for a thread instead of a task:

* :func:`timeout` bounds nothing by itself: a blocking call cannot be cancelled from the
  outside, so the sync side relies on the drivers' socket and statement timeouts, which
  every store configures from the same ``timeout_s``, so a dead store still raises
  :class:`~sessionward.core.errors.StoreUnavailableError` within that time.
* :data:`Lock` is a :class:`threading.Lock`; :func:`sleep` is :func:`time.sleep`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

Lock = threading.Lock
sleep = time.sleep


@contextmanager
def timeout(seconds: float | None) -> Iterator[None]:
    """Stand in for :func:`asyncio.timeout`: the drivers' own timeouts bound blocking calls."""
    del seconds
    yield
