"""Every store's calls are OpenTelemetry spans named by the database semantic conventions (F22)."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sessionward import ManualClock
from sessionward.io.manager import SessionManager
from sessionward.io.telemetry import instrument
from sessionward.stores.base import SessionStore

from .backends import Backend
from .builders import NOW, make_record

SYSTEMS = {
    "memory": "sessionward.memory",
    "file": "sessionward.file",
    "sqlite": "sqlite",
    "postgres": "postgresql",
    "mysql": "mariadb",  # the test server is MariaDB; its dialect says so once connected
    "redis": "redis",
    "redis_cluster": "redis",
}


async def test_store_calls_are_spans_with_db_system_and_operation_names(backend: Backend, store: SessionStore) -> None:
    if not type(store).__module__.startswith("sessionward.stores."):  # the sync twins, seen through a thread view
        pytest.skip("the blocking twins are traced through their own manager (tests/telemetry)")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    manager = SessionManager(store, clock=ManualClock(NOW))
    telemetry = instrument(manager, tracer_provider=provider)
    try:
        live = make_record(user="alice")
        await store.establish(live)
        await store.load(live.key, NOW)
        await store.list_user("alice", NOW)
    finally:
        telemetry.uninstrument()
    spans = exporter.get_finished_spans()
    assert [
        (span.name, (span.attributes or {})["db.system.name"], (span.attributes or {})["db.operation.name"])
        for span in spans
    ] == [(operation, SYSTEMS[backend.name], operation) for operation in ("establish", "load", "list_user")]
    for span in spans:
        assert live.key not in repr(dict(span.attributes or {}))
