"""Prometheus metrics for sessions, through the official ``prometheus-client`` (extra ``prometheus``).

:class:`SessionMetrics` listens to a manager's events (created, rotated, expired,
revoked… by reason) and times every store call through the manager's store observer
hook. Counts of live sessions come from the store's ``stats()``, *lazily*: only when the
metrics are scraped, and at most once per ``stats_max_age_s``, because a count can cost
a scan on some stores. Nothing here sees a session ID or handle: labels are reason codes
from a fixed vocabulary, so their number stays small.

Usage::

    metrics = SessionMetrics()
    metrics.attach(manager)
    app = Starlette(routes=[Mount("/metrics", metrics.asgi_app())])
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

try:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ImportError("sessionward.metrics needs prometheus-client: pip install 'sessionward[prometheus]'") from error

from sessionward.errors import StoreError
from sessionward.events import EventName, SessionEvent
from sessionward.manager import SessionManager

logger = logging.getLogger("sessionward")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Store latency buckets (seconds): a local Redis answers in well under a millisecond."""

MAX_LABEL_CHARS = 64


class SessionMetrics:
    """Session counters, gauges and the store latency histogram.

    Args:
        registry: Where to register; a private registry when ``None`` (pass
            ``prometheus_client.REGISTRY`` to expose them with the process's defaults).
        namespace: Prefix of every metric name.
        stats_max_age_s: How long store counts are reused before asking the store again.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        namespace: str = "sessionward",
        stats_max_age_s: float = 15.0,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.stats_max_age_s = stats_max_age_s
        self._manager: SessionManager | None = None
        self._stats_at: float | None = None
        self._stats_lock = asyncio.Lock()
        r, ns = self.registry, namespace
        self.active = Gauge("sessions_active", "Live sessions in the store.", namespace=ns, registry=r)
        self.authenticated = Gauge(
            "sessions_authenticated", "Live sessions with a logged-in user.", namespace=ns, registry=r
        )
        self.users = Gauge("users_active", "Users with at least one live session.", namespace=ns, registry=r)
        self.tombstones = Gauge(
            "tombstones", "Ended sessions whose reason is still remembered.", namespace=ns, registry=r
        )
        self.created = Counter("sessions_created", "Sessions created.", namespace=ns, registry=r)
        self.logins = Counter("logins", "Successful logins.", namespace=ns, registry=r)
        self.login_refused = Counter(
            "logins_refused", "Logins refused by multiple-login control.", ["reason"], namespace=ns, registry=r
        )
        self.rotated = Counter("sessions_rotated", "Session ID rotations.", ["reason"], namespace=ns, registry=r)
        self.elevated = Counter("sessions_elevated", "Elevations (sudo mode).", namespace=ns, registry=r)
        self.expired = Counter("sessions_expired", "Sessions ended by a timeout.", ["reason"], namespace=ns, registry=r)
        self.revoked = Counter(
            "sessions_revoked", "Sessions ended by revocation or displacement.", ["reason"], namespace=ns, registry=r
        )
        self.logouts = Counter("logouts", "Sessions ended by logout.", namespace=ns, registry=r)
        self.invalid = Counter(
            "invalid_sessions_presented",
            "Requests carrying an unknown, ended or malformed session cookie.",
            ["reason"],
            namespace=ns,
            registry=r,
        )
        self.binding_mismatch = Counter(
            "binding_mismatches",
            "Requests whose client did not fit the session binding.",
            ["reason"],
            namespace=ns,
            registry=r,
        )
        self.csrf_refused = Counter("csrf_refused", "Requests refused as CSRF.", ["reason"], namespace=ns, registry=r)
        self.firewall_refused = Counter(
            "firewall_refused", "Requests refused by the firewall.", ["reason"], namespace=ns, registry=r
        )
        self.store_unavailable = Counter(
            "store_unavailable", "Requests answered 503 because the store failed.", namespace=ns, registry=r
        )
        self.store_latency = Histogram(
            "store_latency_seconds",
            "Duration of session store calls.",
            ["outcome"],
            namespace=ns,
            registry=r,
            buckets=STORE_BUCKETS,
        )
        self._labelled: dict[EventName, Counter] = {
            EventName.LOGIN_REFUSED: self.login_refused,
            EventName.ROTATED: self.rotated,
            EventName.EXPIRED: self.expired,
            EventName.REVOKED: self.revoked,
            EventName.DISPLACED: self.revoked,
            EventName.INVALID_SESSION: self.invalid,
            EventName.BINDING_MISMATCH: self.binding_mismatch,
            EventName.CSRF_REFUSED: self.csrf_refused,
            EventName.FIREWALL_REFUSED: self.firewall_refused,
        }
        self._plain: dict[EventName, Counter] = {
            EventName.CREATED: self.created,
            EventName.LOGIN: self.logins,
            EventName.ELEVATED: self.elevated,
            EventName.LOGOUT: self.logouts,
            EventName.STORE_UNAVAILABLE: self.store_unavailable,
        }

    def attach(self, manager: SessionManager) -> None:
        """Count ``manager``'s events, time its store calls and read its store's counts."""
        manager.events.subscribe(self.observe_event)
        manager.store_observers.append(self.observe_store)
        self._manager = manager

    def observe_event(self, event: SessionEvent) -> None:
        """Count one lifecycle event (an :class:`~sessionward.events.EventBus` subscriber)."""
        counter = self._labelled.get(event.name)
        if counter is not None:
            counter.labels(reason=(event.reason or "none")[:MAX_LABEL_CHARS]).inc()
            return
        plain = self._plain.get(event.name)
        if plain is not None:
            plain.inc()

    def observe_store(self, seconds: float, outcome: str) -> None:
        """Record one store call's duration (a ``SessionManager.store_observers`` hook)."""
        self.store_latency.labels(outcome=outcome).observe(seconds)

    async def refresh(self, *, force: bool = False) -> None:
        """Read the store's counts into the gauges, unless they are fresh enough.

        A failing store leaves the last counts in place; the failure shows in the
        latency histogram's ``error``/``timeout`` outcomes.
        """
        manager = self._manager
        if manager is None:
            return
        async with self._stats_lock:
            now = time.monotonic()
            if not force and self._stats_at is not None and now - self._stats_at < self.stats_max_age_s:
                return
            try:
                stats = await manager.call_store(lambda: manager.store.stats(manager.clock()))
            except StoreError as error:
                logger.warning("session store counts unavailable for metrics: %s", error)
                return
            self._stats_at = now
            self.active.set(stats.live_sessions)
            self.authenticated.set(stats.authenticated_sessions)
            self.users.set(stats.users)
            self.tombstones.set(stats.tombstones)

    def render(self) -> bytes:
        """Return the metrics in Prometheus' text exposition format."""
        return generate_latest(self.registry)

    def asgi_app(self) -> ASGIApp:
        """Return an ASGI app serving the metrics (refreshing store counts lazily)."""

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                return
            await self.refresh()
            body = self.render()
            headers = [
                (b"content-type", CONTENT_TYPE_LATEST.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        return app
