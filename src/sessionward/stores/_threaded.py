"""The async store contract over a blocking store: one wrapper for every store written sync.

The memory and file stores do synchronous work (a dict, files and ``flock``); they are
written once, as blocking stores (:mod:`sessionward.stores._memory_sync`,
:mod:`sessionward.stores._file_sync`, which Flask and WSGI apps use as they are), and
:class:`ThreadedStore` gives the async contract on top.

Each async method is one call of the blocking store's method of the same name, so it is
exactly as atomic as the blocking store makes it: the blocking store holds its own locks
(a :class:`threading.Lock`, ``flock`` stripes), and nothing here adds or drops one.
A call runs in a worker thread (:func:`asyncio.to_thread`), so a file lock that is slow
to come never holds up the event loop, or, for a store whose methods never block (the
memory store), inline on the loop: no thread hop per call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, ParamSpec, TypeVar

from sessionward._sync.stores.base import SessionStore as BlockingStore
from sessionward.core.engine import Hits, SessionLimit
from sessionward.core.records import EndReason, Entry, Expected, SessionRecord, Tombstone, Update
from sessionward.stores.base import Established, SessionStore, StoreStats

S = TypeVar("S", bound=BlockingStore)
P = ParamSpec("P")
T = TypeVar("T")


class ThreadedStore(SessionStore, Generic[S]):
    """The async contract, each method one call of ``sync``'s method of the same name.

    Args:
        sync: The blocking store that does the work (also reachable as :attr:`sync`).
        inline: Call it on the event loop rather than in a worker thread. Only for a
            store whose methods never wait (on a lock held elsewhere, a disk, a network).
    """

    def __init__(self, sync: S, *, inline: bool = False) -> None:
        self.sync = sync
        self._inline = inline

    async def _call(self, work: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self._inline:
            return work(*args, **kwargs)
        return await asyncio.to_thread(work, *args, **kwargs)

    async def load(self, key: str, now: float) -> Entry | None:
        return await self._call(self.sync.load, key, now)

    async def save(self, key: str, update: Update) -> bool:
        return await self._call(self.sync.save, key, update)

    async def establish(
        self,
        record: SessionRecord,
        *,
        retire: Tombstone | None = None,
        limit: SessionLimit | None = None,
        expect: Expected | None = None,
    ) -> Established:
        return await self._call(self.sync.establish, record, retire=retire, limit=limit, expect=expect)

    async def end(self, tombstone: Tombstone) -> SessionRecord | None:
        return await self._call(self.sync.end, tombstone)

    async def discard(self, tombstone: Tombstone) -> None:
        await self._call(self.sync.discard, tombstone)

    async def list_user(self, user: str, now: float) -> list[SessionRecord]:
        return await self._call(self.sync.list_user, user, now)

    async def find_handle(self, handle: str, now: float) -> SessionRecord | None:
        return await self._call(self.sync.find_handle, handle, now)

    async def find_moved(self, handle: str, now: float) -> Tombstone | None:
        return await self._call(self.sync.find_moved, handle, now)

    async def end_user(
        self,
        user: str,
        reason: EndReason,
        now: float,
        tombstone_expires_at: float,
        *,
        keep_key: str | None = None,
    ) -> list[SessionRecord]:
        return await self._call(self.sync.end_user, user, reason, now, tombstone_expires_at, keep_key=keep_key)

    async def end_handle(
        self, handle: str, reason: EndReason, now: float, tombstone_expires_at: float, *, user: str | None = None
    ) -> SessionRecord | None:
        return await self._call(self.sync.end_handle, handle, reason, now, tombstone_expires_at, user=user)

    async def end_following(self, tombstone: Tombstone, now: float) -> SessionRecord | None:
        return await self._call(self.sync.end_following, tombstone, now)

    async def purge_expired(self, now: float, batch_size: int = 500) -> int:
        return await self._call(self.sync.purge_expired, now, batch_size)

    async def stats(self, now: float) -> StoreStats:
        return await self._call(self.sync.stats, now)

    async def count_hit(self, name: str, window_s: float, now: float) -> Hits:
        return await self._call(self.sync.count_hit, name, window_s, now)

    async def reset_counter(self, name: str) -> None:
        await self._call(self.sync.reset_counter, name)

    async def setup(self) -> None:
        await self._call(self.sync.setup)

    async def close(self) -> None:
        await self._call(self.sync.close)
