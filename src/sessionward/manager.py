"""What every request of an application shares: policy, engine, store, clock and events.

The :class:`SessionManager` is built once per application and handed to the adapters
(ASGI, WSGI). It is also where store calls get their deadline (F19): one shared timer
bounds every call, and a call that overruns becomes
:class:`~sessionward.errors.StoreUnavailableError`, which the adapters answer with 503.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sessionward._deadlines import Deadlines
from sessionward.clock import Clock
from sessionward.config import SessionPolicy
from sessionward.engine import ClientInfo, SessionEngine
from sessionward.errors import StoreError, StoreUnavailableError
from sessionward.events import EventBus, EventName, SessionEvent
from sessionward.stores.base import SessionStore

logger = logging.getLogger("sessionward")
T = TypeVar("T")


class SessionManager:
    """What every request of an application shares: policy, engine, store, clock, events."""

    def __init__(
        self,
        store: SessionStore,
        policy: SessionPolicy | None = None,
        *,
        clock: Clock | None = None,
        events: EventBus | None = None,
        store_timeout_s: float = 2.0,
    ) -> None:
        from sessionward.clock import system_clock

        self.policy = policy or SessionPolicy()
        self.engine = SessionEngine(self.policy)
        self.store = store
        self.clock = clock or system_clock
        self.events = events or EventBus()
        # One shared timer bounds all store calls (cheaper than asyncio.timeout per call).
        self._deadlines = Deadlines(store_timeout_s)
        self.store_observers: list[Callable[[float, str], None]] = []
        """Called after each store call with its duration (s) and ``ok``/``error``/``timeout``."""

    @property
    def store_timeout_s(self) -> float:
        """How long a store call may take before it counts as an outage (F19)."""
        return self._deadlines.timeout_s

    @store_timeout_s.setter
    def store_timeout_s(self, seconds: float) -> None:
        self._deadlines.timeout_s = seconds

    async def call_store(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run one store operation under the store timeout (F19)."""
        started = time.perf_counter() if self.store_observers else 0.0
        outcome = "ok"
        try:
            async with self._deadlines:
                return await operation()
        except TimeoutError:
            outcome = "timeout"
            raise StoreUnavailableError(f"the session store did not answer within {self.store_timeout_s} s") from None
        except StoreError:
            outcome = "error"
            raise
        finally:
            if self.store_observers:
                self._observe_store(time.perf_counter() - started, outcome)

    def _observe_store(self, seconds: float, outcome: str) -> None:
        for observer in self.store_observers:
            try:
                observer(seconds, outcome)
            except Exception:  # a broken metrics hook must never break a request
                logger.exception("sessionward store observer %r failed", observer)

    async def emit(
        self,
        name: EventName,
        *,
        reason: str | None = None,
        handle: str | None = None,
        user: str | None = None,
        client: ClientInfo | None = None,
        path: str | None = None,
    ) -> None:
        """Emit an event, if anyone listens."""
        if not self.events.has_subscribers:
            return
        await self.events.emit(
            SessionEvent(
                name=name,
                at=self.clock(),
                reason=reason,
                handle=handle,
                user=user,
                ip=client.ip if client else None,
                user_agent=client.user_agent if client else None,
                path=path,
            )
        )
