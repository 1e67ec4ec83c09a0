"""Force the order of racing requests: a store that holds chosen calls until the test says go.

:class:`GatedStore` wraps any async store and passes every call through. A test asks it to
hold the next calls of one method (``hold = store.hold("establish")``): a request that
reaches that call waits there — it has loaded the session and decided, but not written.
The test waits until the request has arrived (``await hold.arrived()``), runs another
request to completion, then lets the first go on (``hold.release()``) and checks what the
store holds. Nothing sleeps and nothing is left to chance: the dangerous order is the only
order. A hold of ``count=N`` is a barrier: N racing requests all arrive before any writes.

Costs nothing in the library: the wrapper exists only in tests.
"""

from __future__ import annotations

import asyncio

from sessionward.core.engine import Hits, SessionLimit
from sessionward.core.records import EndReason, Entry, Expected, SessionRecord, Tombstone, Update
from sessionward.stores.base import Established, SessionStore, StoreStats

ARRIVAL_TIMEOUT_S = 10.0
"""How long a test waits for requests to reach a hold before it fails (a hung test fails)."""


class Hold:
    """The next ``count`` calls of one store method, held at their start."""

    def __init__(self, method: str, count: int) -> None:
        self.method = method
        self.count = count
        self.taken = 0
        self.waiting = 0
        self._go = asyncio.Event()
        self._arrivals = asyncio.Condition()

    async def pass_through(self) -> None:
        """Called by a held call: count it as arrived, then wait for :meth:`release`."""
        async with self._arrivals:
            self.waiting += 1
            self._arrivals.notify_all()
        await self._go.wait()

    async def arrived(self, count: int | None = None) -> None:
        """Wait until ``count`` (default: all) held calls have arrived."""
        wanted = self.count if count is None else count
        async with asyncio.timeout(ARRIVAL_TIMEOUT_S), self._arrivals:
            await self._arrivals.wait_for(lambda: self.waiting >= wanted)

    def release(self) -> None:
        """Let every held call go on."""
        self._go.set()


class GatedStore(SessionStore):
    """A store that passes calls to ``inner``, holding those a test asked to hold."""

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner
        self._holds: dict[str, list[Hold]] = {}

    def hold(self, method: str, count: int = 1) -> Hold:
        """Hold the next ``count`` calls of ``method`` (``load``, ``save``, ``establish``…)."""
        hold = Hold(method, count)
        self._holds.setdefault(method, []).append(hold)
        return hold

    async def _gate(self, method: str) -> None:
        holds = self._holds.get(method)
        if not holds:
            return
        hold = holds[0]
        hold.taken += 1
        if hold.taken >= hold.count:
            holds.pop(0)  # the last call this hold takes
        await hold.pass_through()

    async def load(self, key: str, now: float) -> Entry | None:
        await self._gate("load")
        return await self.inner.load(key, now)

    async def save(self, key: str, update: Update) -> bool:
        await self._gate("save")
        return await self.inner.save(key, update)

    async def establish(
        self,
        record: SessionRecord,
        *,
        retire: Tombstone | None = None,
        limit: SessionLimit | None = None,
        expect: Expected | None = None,
    ) -> Established:
        await self._gate("establish")
        return await self.inner.establish(record, retire=retire, limit=limit, expect=expect)

    async def end(self, tombstone: Tombstone) -> SessionRecord | None:
        await self._gate("end")
        return await self.inner.end(tombstone)

    async def list_user(self, user: str, now: float) -> list[SessionRecord]:
        await self._gate("list_user")
        return await self.inner.list_user(user, now)

    async def find_handle(self, handle: str, now: float) -> SessionRecord | None:
        await self._gate("find_handle")
        return await self.inner.find_handle(handle, now)

    async def find_moved(self, handle: str, now: float) -> Tombstone | None:
        await self._gate("find_moved")
        return await self.inner.find_moved(handle, now)

    async def end_user(
        self, user: str, reason: EndReason, now: float, tombstone_expires_at: float, *, keep_key: str | None = None
    ) -> list[SessionRecord]:
        await self._gate("end_user")
        return await self.inner.end_user(user, reason, now, tombstone_expires_at, keep_key=keep_key)

    async def purge_expired(self, now: float, batch_size: int = 500) -> int:
        return await self.inner.purge_expired(now, batch_size)

    async def stats(self, now: float) -> StoreStats:
        return await self.inner.stats(now)

    async def count_hit(self, name: str, window_s: float, now: float) -> Hits:
        await self._gate("count_hit")
        return await self.inner.count_hit(name, window_s, now)

    async def reset_counter(self, name: str) -> None:
        await self.inner.reset_counter(name)

    async def setup(self) -> None:
        await self.inner.setup()

    async def close(self) -> None:
        """Leave the inner store to whoever opened it."""
