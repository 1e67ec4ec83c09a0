"""OpenTelemetry for session store calls: a span each, and the operation-duration histogram.

Installed with the ``otel`` extra (``opentelemetry-api`` only; the application brings its
SDK and exporters) and switched on per manager::

    from sessionward.io.telemetry import instrument
    instrument(manager)  # the global tracer and meter providers, or pass your own

It follows the stable database client semantic conventions: every store call is a
``CLIENT`` span named after the operation (``load``, ``save``, ``end_following``…) with
``db.system.name`` (``postgresql``, ``mysql``, ``mariadb``, ``sqlite``, ``redis``,
``other_sql``; ``sessionward.memory`` and ``sessionward.file`` for the stores that are not
database clients) and ``db.operation.name``; a failed call adds ``error.type`` (the
exception's class, or ``timeout`` when the store-call deadline cut it) and an error
status. Each call is also recorded in the ``db.client.operation.duration`` histogram
(seconds) with the same attributes.

What it never records: a call's arguments or results. A session ID, its storage key, a
user or session data is never a span attribute, event or name; the operation's name is
all a span says about the call.

Why the store's methods and not the store-call guard: ``async with manager.store_call``
wraps every store call, but it does not know which operation runs inside it. The
store's bound methods do, so :func:`instrument` wraps them on the store *instance* (the
class and any other store are untouched). A method that calls another of the same store
(``end_following`` looks the tombstone up, then ends it) is one span: the inner call is
not counted again. Nothing is wrapped until :func:`instrument` runs, so a manager without
it pays nothing, and this module is imported only by applications that ask for it.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from sessionward.core.extras import needs_extra

with needs_extra("otel", "sessionward.io.telemetry"):
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode

__all__ = ["DURATION_BUCKETS", "StoreTelemetry", "instrument"]

DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Bucket advice of the duration histogram (seconds): a local Redis answers well under 1 ms."""

_SKIPPED = frozenset({"setup", "close"})
"""Store methods that are not calls of the request path."""

_inside: contextvars.ContextVar[bool] = contextvars.ContextVar("sessionward_store_call", default=False)
"""Set while an instrumented call runs: a nested call of the same store is part of it."""


def db_system_name(store: object) -> str:
    """Return the ``db.system.name`` of a store: its database, or ``sessionward.<kind>``."""
    kind = type(store).__name__
    if kind.startswith("Sql"):
        engine = getattr(store, "engine", None)
        dialect = getattr(engine, "dialect", None)
        name = getattr(dialect, "name", "")
        if name == "mysql" and getattr(dialect, "is_mariadb", False):
            return "mariadb"
        return name if name in ("postgresql", "mysql", "sqlite") else "other_sql"
    if kind.startswith("Redis"):
        return "redis"
    return "sessionward." + kind.removesuffix("Store").lower()


def _operations(store: object) -> list[str]:
    """The store contract's public methods, as the store's base class defines them."""
    for klass in type(store).__mro__:
        if klass.__name__ == "SessionStore" and klass.__module__.endswith("stores.base"):
            return sorted(
                name
                for name, value in vars(klass).items()
                if inspect.isfunction(value) and not name.startswith("_") and name not in _SKIPPED
            )
    raise TypeError(f"{type(store).__name__} is not a sessionward session store")


class StoreTelemetry:
    """The spans and the histogram of one manager's store calls (see :func:`instrument`).

    Args:
        manager: A :class:`~sessionward.io.manager.SessionManager` (or its blocking twin).
        tracer_provider: Where spans go; the global provider when ``None``.
        meter_provider: Where the histogram goes; the global provider when ``None``.
    """

    def __init__(
        self,
        manager: Any,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        from sessionward import __name__ as scope_name

        self.store = manager.store
        self._guard = manager.store_call
        self.system = db_system_name(self.store)
        self._tracer = trace.get_tracer(scope_name, tracer_provider=tracer_provider)
        meter = metrics.get_meter(scope_name, meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            "db.client.operation.duration",
            unit="s",
            description="Duration of database client operations.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self._wrapped: list[str] = []
        for operation in _operations(self.store):
            method = getattr(self.store, operation)
            wrapper = self._wrap_async(operation, method) if inspect.iscoroutinefunction(method) else None
            setattr(self.store, operation, wrapper or self._wrap_sync(operation, method))
            self._wrapped.append(operation)

    def uninstrument(self) -> None:
        """Give the store back its own methods."""
        for operation in self._wrapped:
            delattr(self.store, operation)
        self._wrapped = []

    def _attributes(self, operation: str) -> dict[str, str]:
        return {"db.system.name": self.system, "db.operation.name": operation}

    def _wrap_async(self, operation: str, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        attributes = self._attributes(operation)

        @functools.wraps(method)
        async def traced(*args: Any, **kwargs: Any) -> Any:
            if _inside.get():
                return await method(*args, **kwargs)
            with self._span(operation, attributes):
                return await method(*args, **kwargs)

        return traced

    def _wrap_sync(self, operation: str, method: Callable[..., Any]) -> Callable[..., Any]:
        attributes = self._attributes(operation)

        @functools.wraps(method)
        def traced(*args: Any, **kwargs: Any) -> Any:
            if _inside.get():
                return method(*args, **kwargs)
            with self._span(operation, attributes):
                return method(*args, **kwargs)

        return traced

    @contextlib.contextmanager
    def _span(self, operation: str, attributes: dict[str, str]) -> Iterator[None]:
        """Trace one store call (sync or async alike) as a CLIENT span, and time it."""
        token = _inside.set(True)
        span = self._tracer.start_span(operation, kind=SpanKind.CLIENT, attributes=attributes)
        # The span is current while the driver runs, so a driver's own spans nest under it.
        attached = otel_context.attach(trace.set_span_in_context(span))
        started = time.perf_counter()
        try:
            yield
        except BaseException as error:
            self._finish(span, attributes, started, self._error_type(error))
            raise
        finally:
            otel_context.detach(attached)
            _inside.reset(token)
        self._finish(span, attributes, started, None)

    def _error_type(self, error: BaseException) -> str:
        past_deadline = getattr(self._guard, "past_deadline", None)
        if isinstance(error, TimeoutError) or (past_deadline is not None and past_deadline()):
            return "timeout"
        return type(error).__qualname__

    def _finish(self, span: trace.Span, attributes: dict[str, str], started: float, error_type: str | None) -> None:
        seconds = time.perf_counter() - started
        if error_type is None:
            self._duration.record(seconds, attributes)
        else:
            # The exception's message may quote a key or a value: only its class is kept.
            span.set_attribute("error.type", error_type)
            span.set_status(Status(StatusCode.ERROR))
            self._duration.record(seconds, {**attributes, "error.type": error_type})
        span.end()


def instrument(
    manager: Any,
    *,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> StoreTelemetry:
    """Trace every call of ``manager``'s store and time it in ``db.client.operation.duration``.

    Works for the async :class:`~sessionward.io.manager.SessionManager` and its blocking
    twin alike. Call it once per store, after building the manager.
    """
    return StoreTelemetry(manager, tracer_provider=tracer_provider, meter_provider=meter_provider)
