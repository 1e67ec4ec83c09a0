"""Prometheus metrics for sessions, through the official ``prometheus-client`` (extra ``prometheus``).

:class:`SessionMetrics` listens to a manager's events (created, rotated, expired,
revoked… by reason) and times every store call through the manager's store observer
hook. Counts of live sessions come from the store's ``stats()``, *lazily*: only when the
metrics are scraped, and at most once per ``stats_max_age_s``, because a count can cost
a scan on some stores.

Names follow Prometheus' conventions: counters end in ``_total``, durations in
``_seconds``, every name starts with the namespace. Label sets are bounded: no path,
user, session handle or ID is ever a label; the only labels are ``outcome`` (``ok``,
``error``, ``timeout``) and ``reason``, a reason code that is cut to a short token and,
past :data:`MAX_REASONS` distinct codes per metric (an application may pass reasons of
its own), counted as ``other``. A scrape therefore never grows with traffic.

Usage::

    metrics = SessionMetrics(default_registry=True)  # or a registry of your own
    metrics.attach(manager)
    app = Starlette(routes=[Mount("/metrics", metrics.asgi_app())])
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time

from sessionward.asgi.types import ASGIApp, Receive, Scope, Send
from sessionward.core.errors import ConfigError, StoreError
from sessionward.core.events import EventName, SessionEvent
from sessionward.core.extras import needs_extra
from sessionward.io.manager import SessionManager

with needs_extra("prometheus", "sessionward.asgi.metrics"):
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        REGISTRY,
        CollectorRegistry,
        Counter,
        Gauge,
        Histogram,
        generate_latest,
    )

logger = logging.getLogger("sessionward")


STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Store latency buckets (seconds): a local Redis answers in well under a millisecond."""

MAX_LABEL_CHARS = 64
"""Longest ``reason`` label value; longer reason codes are cut."""

MAX_REASONS = 32
"""Distinct ``reason`` values per metric; further ones are counted as ``other``."""

_NOT_A_TOKEN = re.compile(r"[^a-z0-9_.:-]")


class SessionMetrics:
    """Session counters, gauges and the store latency histogram.

    Args:
        registry: Where to register; a private registry when ``None``.
        default_registry: Register on ``prometheus_client.REGISTRY``, the process's default
            registry, which the client's own exporters (``start_http_server``,
            ``make_asgi_app``…) serve along with the process metrics.
        namespace: Prefix of every metric name.
        stats_max_age_s: How long store counts are reused before asking the store again.

    Raises:
        ConfigError: both ``registry`` and ``default_registry`` were given, or the
            registry already holds metrics of this namespace (one ``SessionMetrics``
            per namespace and registry).
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        default_registry: bool = False,
        namespace: str = "sessionward",
        stats_max_age_s: float = 15.0,
    ) -> None:
        if default_registry and registry is not None:
            raise ConfigError("default_registry", "give either a registry or default_registry=True, not both")
        if default_registry:
            registry = REGISTRY
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        try:
            self._register(namespace)
        except ValueError as error:  # prometheus_client: "Duplicated timeseries in CollectorRegistry"
            raise ConfigError(
                "namespace", f"{namespace!r} is already registered on this registry ({error}); use another namespace"
            ) from None
        self.stats_max_age_s = stats_max_age_s
        self._manager: SessionManager | None = None
        self._stats_at: float | None = None
        self._stats_lock = asyncio.Lock()
        self._reasons: dict[Counter, set[str]] = {}
        self._reasons_lock = threading.Lock()

    def _register(self, namespace: str) -> None:
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
        self.budget_exceeded = Counter(
            "session_budget_exceeded",
            "Anonymous sessions not created because their client spent its creation budget.",
            ["reason"],
            namespace=ns,
            registry=r,
        )
        self.logins_failed = Counter(
            "logins_failed", "Sign-ins with a wrong password or an unknown user.", ["reason"], namespace=ns, registry=r
        )
        self.logins_throttled = Counter(
            "logins_throttled",
            "Sign-in attempts held back by login throttling.",
            ["reason"],
            namespace=ns,
            registry=r,
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
            EventName.SESSION_BUDGET_EXCEEDED: self.budget_exceeded,
            EventName.LOGIN_FAILED: self.logins_failed,
            EventName.LOGIN_THROTTLED: self.logins_throttled,
        }
        self._plain: dict[EventName, Counter] = {
            EventName.CREATED: self.created,
            EventName.LOGIN: self.logins,
            EventName.ELEVATED: self.elevated,
            EventName.LOGOUT: self.logouts,
            EventName.STORE_UNAVAILABLE: self.store_unavailable,
        }

    def unregister(self) -> None:
        """Remove these metrics from their registry (e.g. to build them anew after a reload)."""
        for collector in self._collectors():
            self.registry.unregister(collector)

    def _collectors(self) -> list[Counter | Gauge | Histogram]:
        return [value for value in vars(self).values() if isinstance(value, Counter | Gauge | Histogram)]

    def attach(self, manager: SessionManager) -> None:
        """Count ``manager``'s events, time its store calls and read its store's counts."""
        manager.events.subscribe(self.observe_event)
        manager.store_observers.append(self.observe_store)
        self._manager = manager

    def observe_event(self, event: SessionEvent) -> None:
        """Count one lifecycle event (an :class:`~sessionward.core.events.EventBus` subscriber)."""
        counter = self._labelled.get(event.name)
        if counter is not None:
            counter.labels(reason=self._reason_label(counter, event.reason)).inc()
            return
        plain = self._plain.get(event.name)
        if plain is not None:
            plain.inc()

    def _reason_label(self, counter: Counter, reason: str | None) -> str:
        """Return the ``reason`` label of ``reason``: a short token, ``other`` past the bound."""
        label = _NOT_A_TOKEN.sub("_", (reason or "none").lower())[:MAX_LABEL_CHARS]
        seen = self._reasons.get(counter)
        if seen is not None and label in seen:
            return label
        with self._reasons_lock:
            seen = self._reasons.setdefault(counter, set())
            if label in seen:
                return label
            if len(seen) >= MAX_REASONS:
                return "other"
            seen.add(label)
            return label

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
