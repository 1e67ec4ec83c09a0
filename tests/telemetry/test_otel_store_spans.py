"""OpenTelemetry: one CLIENT span per store call, the duration histogram, and never a session ID (F22)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from sessionward import ManualClock, TimeoutPolicy
from sessionward._sync.manager import SessionManager as SyncSessionManager
from sessionward._sync.stores import MemoryStore as SyncMemoryStore
from sessionward.core.errors import StoreUnavailableError
from sessionward.core.ids import storage_key
from sessionward.core.records import Entry
from sessionward.io.manager import SessionManager
from sessionward.io.telemetry import StoreTelemetry, instrument
from sessionward.stores.memory import MemoryStore
from sessionward.stores.sql import SqlStore
from sessionward.wsgi import SessionMiddleware as WsgiSessionMiddleware
from support.helpers import client_for, make_app, plain_http_policy


class Otel:
    """An SDK tracer and meter provider that keep everything in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def instrument(self, manager: Any) -> StoreTelemetry:
        return instrument(manager, tracer_provider=self.tracer_provider, meter_provider=self.meter_provider)

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def durations(self) -> list[HistogramDataPoint]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == "db.client.operation.duration" and metric.unit == "s"
            for point in metric.data.data_points
            if isinstance(point, HistogramDataPoint)
        ]


@pytest.fixture
def otel() -> Iterator[Otel]:
    telemetry = Otel()
    yield telemetry
    telemetry.tracer_provider.shutdown()
    telemetry.meter_provider.shutdown()


def everything_recorded(otel: Otel) -> str:
    """Every name, attribute and event of every span and data point, as one text."""
    parts: list[str] = []
    for span in otel.spans():
        parts += [span.name, repr(dict(span.attributes or {})), repr([e.attributes for e in span.events])]
    parts += [repr(dict(point.attributes or {})) for point in otel.durations()]
    return "\n".join(parts)


async def test_one_request_is_a_tree_of_store_call_spans_with_database_conventions(
    otel: Otel, clock: ManualClock
) -> None:
    timeouts = TimeoutPolicy(idle_timeout_s=600, absolute_timeout_s=7200, renewal_interval_s=100)
    app, manager = make_app(MemoryStore(), clock=clock, policy=plain_http_policy(timeouts=timeouts))
    otel.instrument(manager)
    tracer = otel.tracer_provider.get_tracer("test")
    async with client_for(app) as client:
        await client.post("/login")
        clock.advance(100)
        with tracer.start_as_current_span("GET /whoami", kind=SpanKind.SERVER) as request:
            await client.get("/whoami")  # due for renewal: load, then the move to a new ID
    spans = otel.spans()
    login, renewal = spans[:1], spans[1:]
    assert [span.name for span in login] == ["establish"]
    assert [span.name for span in renewal] == ["load", "establish", "GET /whoami"]
    for span in login + renewal[:-1]:
        assert span.kind is SpanKind.CLIENT
        assert dict(span.attributes or {}) == {"db.system.name": "sessionward.memory", "db.operation.name": span.name}
        assert span.status.status_code is StatusCode.UNSET
    for span in renewal[:-1]:
        assert span.parent is not None
        assert span.parent.span_id == request.get_span_context().span_id
    points = {point.attributes["db.operation.name"]: point.count for point in otel.durations()}  # type: ignore[index]
    assert points == {"establish": 2, "load": 1}


async def test_no_span_attribute_or_metric_holds_a_session_id_or_key(otel: Otel, clock: ManualClock) -> None:
    app, manager = make_app(MemoryStore(), clock=clock)
    otel.instrument(manager)
    seen: list[str] = []
    async with client_for(app) as client:
        await client.post("/set", params={"a": "1"})
        seen.append(client.cookies["sid"])
        await client.post("/login")
        seen.append(client.cookies["sid"])
        await client.post("/logout")
        client.cookies.set("sid", seen[-1])
        await client.get("/api/whoami")
    recorded = everything_recorded(otel)
    assert len(otel.spans()) >= 5
    for raw_id in seen:
        assert raw_id not in recorded
        assert storage_key(raw_id) not in recorded
        assert storage_key(raw_id)[:16] not in recorded  # not even the handle


async def test_sqlite_store_calls_are_named_sqlite(otel: Otel, clock: ManualClock, tmp_path: Path) -> None:
    store = SqlStore.from_url(f"sqlite:///{tmp_path / 'sessions.db'}")
    await store.setup()
    try:
        app, manager = make_app(store, clock=clock)
        otel.instrument(manager)
        async with client_for(app) as client:
            await client.post("/login")
            await client.get("/whoami")
    finally:
        await store.close()
    assert [(s.name, (s.attributes or {})["db.system.name"]) for s in otel.spans()] == [
        ("establish", "sqlite"),
        ("load", "sqlite"),
    ]


def test_blocking_twin_store_calls_are_traced_through_wsgi(otel: Otel, clock: ManualClock) -> None:
    manager = SyncSessionManager(SyncMemoryStore(), plain_http_policy(), clock=clock)
    otel.instrument(manager)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["sessionward.session"]["seen"] = True
        start_response("200 OK", [("content-type", "text/plain")])
        return [b"ok"]

    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "REMOTE_ADDR": "192.0.2.1", "wsgi.input": io.BytesIO()}
    body = WsgiSessionMiddleware(app, manager)(environ, lambda status, headers, exc_info=None: None)  # type: ignore[arg-type]
    b"".join(body)
    assert [(s.name, s.kind) for s in otel.spans()] == [
        ("count_hit", SpanKind.CLIENT),  # the anonymous-session budget
        ("establish", SpanKind.CLIENT),
    ]


class HangingStore(MemoryStore):
    async def load(self, key: str, now: float) -> Entry | None:
        await asyncio.Event().wait()
        return None


async def test_a_call_cut_at_its_deadline_is_an_error_span_of_type_timeout(otel: Otel, clock: ManualClock) -> None:
    manager = SessionManager(HangingStore(), clock=clock, store_timeout_s=0.01)
    otel.instrument(manager)
    with pytest.raises(StoreUnavailableError):
        await manager.call_store(lambda: manager.store.load("k" * 64, clock()))
    (span,) = otel.spans()
    assert (span.name, span.status.status_code) == ("load", StatusCode.ERROR)
    assert (span.attributes or {})["error.type"] == "timeout"
    assert not span.events  # no exception event: its message could quote a key
    (point,) = otel.durations()
    assert dict(point.attributes or {})["error.type"] == "timeout"


async def test_a_method_calling_another_of_the_store_is_one_span(otel: Otel, clock: ManualClock) -> None:
    app, manager = make_app(MemoryStore(), clock=clock)
    otel.instrument(manager)
    async with client_for(app) as client:
        await client.post("/login")
        await client.post("/logout")  # end_following: find_moved and end inside
    # end_following ends the key with the store's own end: one span, one duration.
    assert [span.name for span in otel.spans()] == ["establish", "load", "end_following"]
    assert sum(point.count for point in otel.durations()) == 3


async def test_nothing_is_wrapped_until_instrumented_and_uninstrument_restores(otel: Otel, clock: ManualClock) -> None:
    store = MemoryStore()
    manager = SessionManager(store, clock=clock)
    assert not {"load", "save", "establish"} & set(vars(store))  # zero cost: the class's methods
    telemetry = otel.instrument(manager)
    assert {"load", "save", "establish", "end_following", "count_hit"} <= set(vars(store))
    telemetry.uninstrument()
    assert not {"load", "save", "establish"} & set(vars(store))
    await store.load("k" * 64, clock())
    assert otel.spans() == []
