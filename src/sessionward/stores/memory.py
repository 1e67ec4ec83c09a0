"""An in-process store, for tests and single-process apps (``memory://``).

The work is done by the blocking store of :mod:`sessionward.stores._memory_sync`, whose
every method holds one lock from start to end and waits for nothing else. This store
calls those methods inline on the event loop (no worker thread), so each of its methods
is atomic and as fast as a dict; that is what makes :meth:`MemoryStore.establish`
enforce the per-user limit exactly.
"""

from __future__ import annotations

from sessionward.stores._memory_sync import MemoryStore as BlockingMemoryStore
from sessionward.stores._threaded import ThreadedStore


class MemoryStore(ThreadedStore[BlockingMemoryStore]):
    """Sessions in a dict; lost when the process ends."""

    def __init__(self) -> None:
        super().__init__(BlockingMemoryStore(), inline=True)
