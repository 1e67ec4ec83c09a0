"""Force the order of racing WSGI requests: a sync store that holds chosen calls until the test says go.

The thread twin of ``tests/support/interleave.py``. :class:`GatedSyncStore` wraps any sync store
(``sessionward._sync.stores``) and passes every call through. A test asks it to hold the
next calls of one method (``hold = store.hold("establish")``): a request that reaches that
call blocks its worker thread there — it has loaded the session and decided, but not
written. The test waits until the request has arrived (``hold.arrived()``), runs another
request to completion in its own thread, then lets the first go on (``hold.release()``)
and checks what the store holds. Nothing sleeps and nothing is left to chance: the
dangerous order is the only order. A hold of ``count=N`` is a barrier: N racing requests
all arrive before any of them writes.

``end_following`` and ``end_handle`` are not overridden: the base versions call the
gated ``end``, ``load`` and ``find_handle``, so holding those holds them too.
"""

from __future__ import annotations

import threading

from sessionward._sync.stores.base import SessionStore
from sessionward.core.engine import Hits, SessionLimit
from sessionward.core.records import EndReason, Entry, Expected, SessionRecord, Tombstone, Update
from sessionward.stores.base import Established, StoreStats

ARRIVAL_TIMEOUT_S = 10.0
"""How long a test waits for requests to reach a hold before it fails (a hung test fails)."""

RELEASE_TIMEOUT_S = 30.0
"""How long a held call waits for its release before it gives up (a forgotten release fails)."""


class HoldNeverReleasedError(RuntimeError):
    """A held store call waited longer than :data:`RELEASE_TIMEOUT_S` for :meth:`Hold.release`."""


class Hold:
    """The next ``count`` calls of one store method, held at their start."""

    def __init__(self, method: str, count: int) -> None:
        if count < 1:
            raise ValueError("a hold takes at least one call")
        self.method = method
        self.count = count
        self.taken = 0
        self.waiting = 0
        self._go = threading.Event()
        self._arrivals = threading.Condition()

    def pass_through(self) -> None:
        """Called by a held call (in its request's thread): count it as arrived, then wait for :meth:`release`."""
        with self._arrivals:
            self.waiting += 1
            self._arrivals.notify_all()
        if not self._go.wait(RELEASE_TIMEOUT_S):
            raise HoldNeverReleasedError(f"a held {self.method} call was never released")

    def arrived(self, count: int | None = None, timeout: float = ARRIVAL_TIMEOUT_S) -> None:
        """Wait until ``count`` (default: all) held calls have arrived.

        Raises:
            AssertionError: when they have not arrived within ``timeout`` seconds.
        """
        wanted = self.count if count is None else count
        with self._arrivals:
            if not self._arrivals.wait_for(lambda: self.waiting >= wanted, timeout):
                raise AssertionError(f"{self.waiting} of {wanted} held {self.method} calls arrived within {timeout} s")

    def release(self) -> None:
        """Let every held call go on (and any later one this hold takes)."""
        self._go.set()


class GatedSyncStore(SessionStore):
    """A sync store that passes calls to ``inner``, holding those a test asked to hold."""

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner
        self._holds: dict[str, list[Hold]] = {}
        self._made: list[Hold] = []
        self._lock = threading.Lock()

    def hold(self, method: str, count: int = 1) -> Hold:
        """Hold the next ``count`` calls of ``method`` (``load``, ``save``, ``establish``…)."""
        hold = Hold(method, count)
        with self._lock:
            self._holds.setdefault(method, []).append(hold)
            self._made.append(hold)
        return hold

    def release_all(self) -> None:
        """Release every hold ever made and drop those not yet taken (test teardown: no thread stays stuck)."""
        with self._lock:
            self._holds.clear()
            made = list(self._made)
        for hold in made:
            hold.release()

    def _gate(self, method: str) -> None:
        with self._lock:
            holds = self._holds.get(method)
            if not holds:
                return
            hold = holds[0]
            hold.taken += 1
            if hold.taken >= hold.count:
                holds.pop(0)  # the last call this hold takes
        hold.pass_through()

    def load(self, key: str, now: float) -> Entry | None:
        self._gate("load")
        return self.inner.load(key, now)

    def save(self, key: str, update: Update) -> bool:
        self._gate("save")
        return self.inner.save(key, update)

    def establish(
        self,
        record: SessionRecord,
        *,
        retire: Tombstone | None = None,
        limit: SessionLimit | None = None,
        expect: Expected | None = None,
    ) -> Established:
        self._gate("establish")
        return self.inner.establish(record, retire=retire, limit=limit, expect=expect)

    def end(self, tombstone: Tombstone) -> SessionRecord | None:
        self._gate("end")
        return self.inner.end(tombstone)

    def list_user(self, user: str, now: float) -> list[SessionRecord]:
        self._gate("list_user")
        return self.inner.list_user(user, now)

    def find_handle(self, handle: str, now: float) -> SessionRecord | None:
        self._gate("find_handle")
        return self.inner.find_handle(handle, now)

    def find_moved(self, handle: str, now: float) -> Tombstone | None:
        self._gate("find_moved")
        return self.inner.find_moved(handle, now)

    def end_user(
        self, user: str, reason: EndReason, now: float, tombstone_expires_at: float, *, keep_key: str | None = None
    ) -> list[SessionRecord]:
        self._gate("end_user")
        return self.inner.end_user(user, reason, now, tombstone_expires_at, keep_key=keep_key)

    def purge_expired(self, now: float, batch_size: int = 500) -> int:
        return self.inner.purge_expired(now, batch_size)

    def stats(self, now: float) -> StoreStats:
        return self.inner.stats(now)

    def count_hit(self, name: str, window_s: float, now: float) -> Hits:
        self._gate("count_hit")
        return self.inner.count_hit(name, window_s, now)

    def reset_counter(self, name: str) -> None:
        self.inner.reset_counter(name)

    def setup(self) -> None:
        self.inner.setup()

    def close(self) -> None:
        """Leave the inner store to whoever opened it."""
