"""Run the conformance suite against the generated sync stores.

:class:`AsyncView` presents a sync store (``sessionward._sync.stores``) through the async
contract by running each call in a worker thread. The suite's ``asyncio.gather`` races
thereby become races between real threads on the sync store, as under a threaded WSGI
server; nothing of the async store is involved.
"""

from __future__ import annotations

import asyncio
from functools import partial

from sessionward._sync.stores.base import SessionStore as SyncSessionStore
from sessionward.core.engine import Hits, SessionLimit
from sessionward.core.records import EndReason, Entry, Expected, SessionRecord, Tombstone, Update
from sessionward.stores.base import Established, SessionStore, StoreStats


class AsyncView(SessionStore):
    """The async contract over a sync store; every call runs in a thread of its own."""

    def __init__(self, store: SyncSessionStore) -> None:
        self.sync = store

    async def load(self, key: str, now: float) -> Entry | None:
        return await asyncio.to_thread(self.sync.load, key, now)

    async def save(self, key: str, update: Update) -> bool:
        return await asyncio.to_thread(self.sync.save, key, update)

    async def discard(self, tombstone: Tombstone) -> None:
        await asyncio.to_thread(self.sync.discard, tombstone)

    async def establish(
        self,
        record: SessionRecord,
        *,
        retire: Tombstone | None = None,
        limit: SessionLimit | None = None,
        expect: Expected | None = None,
    ) -> Established:
        work = partial(self.sync.establish, record, retire=retire, limit=limit, expect=expect)
        return await asyncio.to_thread(work)

    async def end(self, tombstone: Tombstone) -> SessionRecord | None:
        return await asyncio.to_thread(self.sync.end, tombstone)

    async def list_user(self, user: str, now: float) -> list[SessionRecord]:
        return await asyncio.to_thread(self.sync.list_user, user, now)

    async def find_handle(self, handle: str, now: float) -> SessionRecord | None:
        return await asyncio.to_thread(self.sync.find_handle, handle, now)

    async def find_moved(self, handle: str, now: float) -> Tombstone | None:
        return await asyncio.to_thread(self.sync.find_moved, handle, now)

    async def end_user(
        self, user: str, reason: EndReason, now: float, tombstone_expires_at: float, *, keep_key: str | None = None
    ) -> list[SessionRecord]:
        work = partial(self.sync.end_user, user, reason, now, tombstone_expires_at, keep_key=keep_key)
        return await asyncio.to_thread(work)

    async def end_handle(
        self, handle: str, reason: EndReason, now: float, tombstone_expires_at: float, *, user: str | None = None
    ) -> SessionRecord | None:
        work = partial(self.sync.end_handle, handle, reason, now, tombstone_expires_at, user=user)
        return await asyncio.to_thread(work)

    async def purge_expired(self, now: float, batch_size: int = 500) -> int:
        return await asyncio.to_thread(self.sync.purge_expired, now, batch_size)

    async def stats(self, now: float) -> StoreStats:
        return await asyncio.to_thread(self.sync.stats, now)

    async def count_hit(self, name: str, window_s: float, now: float) -> Hits:
        return await asyncio.to_thread(self.sync.count_hit, name, window_s, now)

    async def reset_counter(self, name: str) -> None:
        await asyncio.to_thread(self.sync.reset_counter, name)

    async def setup(self) -> None:
        await asyncio.to_thread(self.sync.setup)

    async def close(self) -> None:
        await asyncio.to_thread(self.sync.close)
