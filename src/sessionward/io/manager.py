"""What every request of an application shares: policy, engine, store, clock and events.

The :class:`SessionManager` is built once per application and handed to the adapters
(ASGI, WSGI). It is also where store calls get their deadline: ``async with
manager.store_call:`` bounds a call by one shared timer, and a call that overruns becomes
:class:`~sessionward.core.errors.StoreUnavailableError`, which the adapters answer with 503.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sessionward.core.clock import Clock
from sessionward.core.config import Fixation, SessionPolicy
from sessionward.core.engine import ClientInfo, SessionEngine
from sessionward.core.events import EventBus, EventName, SessionEvent
from sessionward.io._store_calls import StoreCalls, StoreObserver
from sessionward.io.login_throttle import LoginThrottle
from sessionward.stores.base import SessionStore

T = TypeVar("T")

logger = logging.getLogger("sessionward")


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
        from sessionward.core.clock import system_clock

        self.policy = policy or SessionPolicy()
        if self.policy.login.fixation is Fixation.NONE:
            # Allowed (Spring Security allows it too) but never silently: an ID planted
            # before login stays valid after it.
            logger.warning(
                "session fixation protection is off (fixation 'none', SESSIONWARD_FIXATION): "
                "the session ID is kept at login, so an ID planted before login stays valid; "
                "use change_id (the default), migrate or new_session"
            )
        self.engine = SessionEngine(self.policy)
        self.store = store
        self.clock = clock or system_clock
        self.events = events or EventBus()
        self.store_observers: list[StoreObserver] = []
        """Called after each store call with its duration (s) and ``ok``/``error``/``timeout``."""
        self.store_call = StoreCalls(store_timeout_s, self.store_observers)
        """``async with manager.store_call:`` guards one store call: deadline, outage, metrics."""
        self.login_throttle = LoginThrottle(self)
        """Login throttling: count sign-in attempts, hold back the excess."""

    @property
    def store_timeout_s(self) -> float:
        """How long a store call may take before it counts as an outage."""
        return self.store_call.timeout_s

    @store_timeout_s.setter
    def store_timeout_s(self, seconds: float) -> None:
        self.store_call.timeout_s = seconds

    async def call_store(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run one store operation under :attr:`store_call` (for code off the request path)."""
        async with self.store_call:
            return await operation()

    async def emit(
        self,
        name: EventName,
        *,
        reason: str | None = None,
        handle: str | None = None,
        user: str | None = None,
        client: ClientInfo | None = None,
        path: str | None = None,
        method: str | None = None,
    ) -> None:
        """Emit an event, if anyone listens (subscribers or the ``sessionward.audit`` logger)."""
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
                method=method,
            )
        )
