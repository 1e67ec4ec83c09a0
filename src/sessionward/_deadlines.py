"""One shared timer bounding every store call of a manager, instead of one timer per call.

:func:`asyncio.timeout` arms and cancels a loop timer on every use; under load that is a
noticeable share of a request (several µs per store call on uvloop, more than the Redis
load itself once pipelined). Every store call of a manager has the same time limit, so
calls start in deadline order: :class:`Deadlines` keeps the calls in flight in arrival
order and one timer, set for the oldest. When it fires, the calls past their deadline
are cancelled and leave with :class:`TimeoutError`, exactly as under ``asyncio.timeout``.

Used as ``async with deadlines:`` in a task. The generated blocking twin of the exchange
uses it as ``with deadlines:``, which bounds nothing by itself, like
:func:`sessionward._blocking.timeout`: a blocking call cannot be cancelled from outside,
and the drivers' own socket timeouts bound it.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class Deadlines:
    """Bounds each ``async with`` block of a task to ``timeout_s`` seconds.

    Args:
        timeout_s: The time limit of every block.
    """

    __slots__ = ("_expired", "_in_flight", "_loop", "_timer", "timeout_s")

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._in_flight: dict[asyncio.Task[object], tuple[float, int]] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A new event loop (a test, a CLI command): the old loop's tasks are gone.
            self._loop, self._timer = loop, None
            self._in_flight, self._expired = {}, set()
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Deadlines must be used inside a task")
        started = loop.time()
        self._in_flight[task] = (started, task.cancelling())
        if self._timer is None:
            self._timer = loop.call_at(started + self.timeout_s, self._expire)

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        _, cancelling = self._in_flight.pop(task)
        if self._expired and task in self._expired:
            self._expired.discard(task)
            # Our cancellation, not someone else's: turn it into a timeout (as asyncio.timeout does).
            if task.uncancel() <= cancelling and kind is asyncio.CancelledError:
                raise TimeoutError from error

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        return None

    def _expire(self) -> None:
        """Cancel the blocks past their deadline; set the timer for the next one."""
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
