"""Run the conformance suite against the sync stores (``sessionward._sync.stores``).

:class:`AsyncView` presents a sync store through the async contract by running each call
in a worker thread: the suite's ``asyncio.gather`` races thereby become races between
real threads on the sync store, as under a threaded WSGI server. It is the wrapper the
async memory and file stores are made of (:class:`~sessionward.stores._threaded.ThreadedStore`),
under its own name so that tests can tell a sync store seen through it from those.
"""

from __future__ import annotations

from sessionward._sync.stores.base import SessionStore as SyncSessionStore
from sessionward.stores._threaded import ThreadedStore


class AsyncView(ThreadedStore[SyncSessionStore]):
    """The async contract over a sync store; every call runs in a thread of its own."""
