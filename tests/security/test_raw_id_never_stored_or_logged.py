"""A dump of the store or of the logs yields no usable cookie: only hashes and handles are kept (F2, F16)."""

from __future__ import annotations

import io
import logging
import sqlite3
from pathlib import Path

import pytest

from sessionward import JsonAuditLogger, ManualClock, TimeoutPolicy
from sessionward.core.events import EventBus
from sessionward.stores.sql import SqlStore
from support.helpers import client_for, make_app, plain_http_policy


async def test_sqlite_dump_and_audit_log_hold_no_raw_id(
    tmp_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    database = tmp_path / "sessions.db"
    store = SqlStore.from_url(f"sqlite:///{database}")
    await store.setup()
    log = io.StringIO()
    bus = EventBus()
    bus.subscribe(JsonAuditLogger(log))
    timeouts = TimeoutPolicy(idle_timeout_s=600, absolute_timeout_s=7200, renewal_interval_s=100)
    app, _ = make_app(store, clock=clock, policy=plain_http_policy(timeouts=timeouts), events=bus)
    seen: list[str] = []
    async with client_for(app) as client:
        await client.post("/set", params={"a": "1"})
        seen.append(client.cookies["sid"])
        await client.post("/login")
        seen.append(client.cookies["sid"])
        clock.advance(100)
        await client.get("/whoami")  # renewal
        seen.append(client.cookies["sid"])
        await client.post("/elevate")
        seen.append(client.cookies["sid"])
        await client.post("/logout")
    await store.close()
    assert len(set(seen)) == 4

    connection = sqlite3.connect(database)
    dump = "\n".join(connection.iterdump())
    connection.close()
    raw_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("sessions.db*"))  # noqa: ASYNC240 - test teardown
    audit = log.getvalue()
    assert audit.count("\n") >= 5
    for raw_id in seen:
        assert raw_id not in dump
        assert raw_id.encode() not in raw_bytes
        assert raw_id not in audit
        assert raw_id not in caplog.text
