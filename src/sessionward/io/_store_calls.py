"""The guard around every store call of a manager: one shared deadline timer, outages, metrics.

Used as ``async with manager.store_call:`` around one store call. Three jobs:

* **A deadline.** :func:`asyncio.timeout` arms and cancels a loop timer on every use;
  under load that is a noticeable share of a request (several µs per store call on
  uvloop, more than the Redis load itself once pipelined). Every store call of a manager
  has the same time limit, so calls start in deadline order: the guard keeps the calls in
  flight in arrival order and one timer, set for the oldest. When it fires, the calls
  past their deadline are cancelled, exactly as under ``asyncio.timeout``.
* **Outages.** A call past its deadline, or one that a driver's own timeout ended
  (:class:`TimeoutError`), leaves as :class:`~sessionward.core.errors.StoreUnavailableError`,
  which the adapters answer with 503.
* **Observation.** When observers are registered (``sessionward.asgi.metrics``), each is
  called after the call with its duration in seconds and ``ok``, ``error`` (a
  :class:`~sessionward.core.errors.StoreError`) or ``timeout``.

It is an ``async with`` block rather than a wrapper taking a callable because it sits on
every request's path: a wrapper costs a closure, its cells and a coroutine per call. For
the same reason ``__aenter__`` and ``__aexit__`` are plain methods that do their work at
once and return the guard itself, an awaitable that is already complete: no coroutine
is made per call.

A call cut at its deadline answers at once even when its driver is slow to let go:
:func:`unwaited_cleanup` runs the SQL store's transactions in a task of their own for that.

The generated blocking twin of the exchange uses it as ``with manager.store_call:``, which
bounds nothing by itself (a blocking call cannot be cancelled from outside; the drivers'
socket timeouts bound it) but still turns timeouts into outages and reports to observers.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Generator
from types import TracebackType
from typing import Any, TypeVar

from sessionward.core.errors import StoreError, StoreUnavailableError

logger = logging.getLogger("sessionward")

T = TypeVar("T")

StoreObserver = Callable[[float, str], None]
"""Called after each store call with its duration (s) and ``ok``/``error``/``timeout``."""

_COMPLETE: Generator[Any, None, None] = (_ for _ in ())
"""An exhausted iterator: what awaiting an already complete awaitable iterates over."""
next(_COMPLETE, None)


class StoreCalls:
    """Bounds each ``async with`` block of a task to ``timeout_s`` seconds (module docstring).

    Args:
        timeout_s: The time limit of every store call.
        observers: Called after each call; the list may grow later (it is read per call).
    """

    __slots__ = ("_expired", "_in_flight", "_loop", "_threads", "_timer", "observers", "timeout_s")

    def __init__(self, timeout_s: float, observers: list[StoreObserver] | None = None) -> None:
        self.timeout_s = timeout_s
        self.observers = observers if observers is not None else []
        self._in_flight: dict[asyncio.Task[object], tuple[float, int]] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._threads = threading.local()

    def __await__(self) -> Generator[Any, None, None]:
        return _COMPLETE

    def __aenter__(self) -> StoreCalls:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A new event loop (a test, a CLI command): the old loop's tasks are gone.
            self._loop, self._timer = loop, None
            self._in_flight, self._expired = {}, set()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("store calls must be made inside a task")
        started = loop.time()
        self._in_flight[task] = (started, task.cancelling())
        if self._timer is None:
            self._timer = loop.call_at(started + self.timeout_s, self._expire)
        return self

    def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> StoreCalls:
        task = asyncio.current_task(self._loop)
        assert task is not None
        started, cancelling = self._in_flight.pop(task)
        timed_out = False
        if self._expired and task in self._expired:
            self._expired.discard(task)
            # Our cancellation, not someone else's: the call overran (as asyncio.timeout tells).
            timed_out = task.uncancel() <= cancelling and kind is asyncio.CancelledError
        if self.observers:
            assert self._loop is not None
            self._report(self._loop.time() - started, kind, timed_out)
        if timed_out:
            raise StoreUnavailableError(f"the session store did not answer within {self.timeout_s} s") from None
        if kind is not None and issubclass(kind, TimeoutError):
            raise StoreUnavailableError(f"the session store timed out: {error}") from None
        return self  # awaiting it yields None: the block's own exception, if any, goes on

    def __enter__(self) -> None:
        if self.observers:
            self._thread_starts().append(time.perf_counter())

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        starts: list[float] | None = getattr(self._threads, "starts", None)
        if starts:  # empty when no observer was registered as the call began: nothing to time
            self._report(time.perf_counter() - starts.pop(), kind, timed_out=False)
        if kind is not None and issubclass(kind, TimeoutError):
            raise StoreUnavailableError(f"the session store timed out: {error}") from None

    def past_deadline(self) -> bool:
        """Tell whether the current task's call is being cut at its deadline (for telemetry)."""
        if not self._expired:
            return False
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running loop: a blocking call, which no deadline cuts
            return False
        return task is not None and task in self._expired

    def _thread_starts(self) -> list[float]:
        starts: list[float] | None = getattr(self._threads, "starts", None)
        if starts is None:
            starts = self._threads.starts = []
        return starts

    def _report(self, seconds: float, kind: type[BaseException] | None, timed_out: bool) -> None:
        if timed_out or (kind is not None and issubclass(kind, TimeoutError)):
            outcome = "timeout"
        elif kind is not None and issubclass(kind, StoreError):
            outcome = "error"
        else:
            outcome = "ok"
        for observer in self.observers:
            try:
                observer(seconds, outcome)
            except Exception:  # a broken metrics hook must never break a request
                logger.exception("sessionward store observer %r failed", observer)

    def _expire(self) -> None:
        """Cancel the calls past their deadline; set the timer for the next one."""
        self._timer = None
        loop = self._loop
        assert loop is not None
        cutoff = loop.time() - self.timeout_s
        for task, (started, _) in self._in_flight.items():
            if started > cutoff:
                self._timer = loop.call_at(started + self.timeout_s, self._expire)
                return
            if task not in self._expired:
                self._expired.add(task)
                task.cancel()


_ABANDONED: set[asyncio.Task[Any]] = set()
"""Calls cut at their deadline whose drivers are still tidying up (held until they finish)."""


async def unwaited_cleanup(work: Coroutine[Any, Any, T]) -> T:
    """Await ``work`` in a task of its own; if the caller is cancelled, cancel it and leave at once.

    A store call cut at its deadline must answer then, but a driver may go on
    tidying up after a cancellation, shielded from any further one: SQLAlchemy closes an
    invalidated asyncpg connection gracefully (up to 2 s more against a server that
    hangs), and an aiosqlite connection's thread stays in SQLite's busy wait up to the busy
    timeout. Awaited in the caller, that doubled the time a request took to get its 503;
    here it goes on in the abandoned task, which still holds what it held (a connection,
    SQLite's write gate) until it is done.
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.cancel()
        _ABANDONED.add(task)
        task.add_done_callback(_forget)
        raise


def _forget(task: asyncio.Task[Any]) -> None:
    _ABANDONED.discard(task)
    # Nobody awaits it any more: take its outcome, so that asyncio does not log it as lost.
    if not task.cancelled():
        task.exception()
