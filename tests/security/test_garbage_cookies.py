"""Forged, oversized, duplicated or non-UTF-8 cookies never reach the store, never give a 500 (F4, §7)."""

from __future__ import annotations

import pytest

from sessionward import ManualClock
from sessionward.core.events import EventBus
from sessionward.core.ids import generate_id
from sessionward.core.records import Entry
from sessionward.stores.memory import MemoryStore
from support.helpers import Recorder, client_for, make_app


class CountingStore(MemoryStore):
    """A real memory store that counts loads, to prove garbage never reaches one."""

    def __init__(self) -> None:
        super().__init__()
        self.loads = 0

    async def load(self, key: str, now: float) -> Entry | None:
        self.loads += 1
        return await super().load(key, now)


GARBAGE = [
    pytest.param(b"sid=" + b"A" * 5000, id="too-long"),
    pytest.param(b"sid=" + b"a" * 10, id="too-short"),
    pytest.param(b"sid=" + "é".encode() * 30, id="non-ascii-utf8"),
    pytest.param(b"sid=\xff\xfe" + b"a" * 40, id="not-utf8"),
    pytest.param(b"sid=" + b"a" * 40 + b"!$", id="wrong-alphabet"),
    pytest.param(b"sid=../../etc/passwd" + b"a" * 30, id="path-characters"),
    pytest.param(b"sid=" + b"a" * 43 + b"\x00", id="nul"),
    pytest.param(b"sid=%41" + b"a" * 42, id="percent-encoded"),
]


@pytest.mark.parametrize("cookie", GARBAGE)
async def test_garbage_cookie_never_reaches_store_and_never_500(cookie: bytes, clock: ManualClock) -> None:
    store = CountingStore()
    recorder = Recorder()
    bus = EventBus()
    bus.subscribe(recorder)
    app, _ = make_app(store, clock=clock, events=bus)
    async with client_for(app) as client:
        response = await client.get("/api/whoami", headers=[(b"cookie", cookie)])
    assert response.status_code == 401
    assert response.json()["error"] == "session_invalid"
    assert response.json()["reason"] == "malformed"
    assert store.loads == 0
    assert recorder.names() == ["invalid_session"]


async def test_two_different_session_cookies_fail_closed(clock: ManualClock) -> None:
    store = CountingStore()
    app, _ = make_app(store, clock=clock)
    async with client_for(app) as victim:
        await victim.post("/login")
        real = victim.cookies["sid"]
    loads_before = store.loads
    async with client_for(app) as client:
        planted = generate_id()
        response = await client.get("/api/whoami", headers={"cookie": f"sid={planted}; sid={real}"})
        assert response.status_code == 401
        assert response.json()["reason"] == "conflicting_cookies"
        # Split over two Cookie headers: still one request, still refused.
        response = await client.get("/api/whoami", headers=[("cookie", f"sid={real}"), ("cookie", f"sid={planted}")])
        assert response.status_code == 401
    assert store.loads == loads_before


async def test_same_session_cookie_sent_twice_is_accepted(clock: ManualClock) -> None:
    app, _ = make_app(MemoryStore(), clock=clock)
    async with client_for(app) as client:
        await client.post("/login")
        value = client.cookies["sid"]
        client.cookies.clear()
        response = await client.get("/api/whoami", headers=[("cookie", f"sid={value}"), ("cookie", f"sid={value}")])
        assert response.json()["user"] == "alice"


@pytest.mark.parametrize("name", ["SID", "Sid", "%73id", " sid2", "sid\u00a0"])
async def test_lookalike_cookie_names_are_not_the_session_cookie(name: str, clock: ManualClock) -> None:
    store = CountingStore()
    app, _ = make_app(store, clock=clock)
    async with client_for(app) as victim:
        await victim.post("/login")
        real = victim.cookies["sid"]
    loads_before = store.loads
    async with client_for(app) as client:
        response = await client.get("/api/whoami", headers=[(b"cookie", f"{name}={real}".encode())])
        assert response.status_code == 200
        assert response.json()["user"] is None
    assert store.loads == loads_before


async def test_unknown_well_formed_id_is_invalid_not_adopted(clock: ManualClock) -> None:
    store = CountingStore()
    app, _ = make_app(store, clock=clock)
    async with client_for(app) as client:
        response = await client.get("/api/whoami", headers={"cookie": f"sid={generate_id()}"})
        assert response.status_code == 401
        assert response.json()["reason"] == "unknown"
    assert store.loads == 1


async def test_oversized_cookie_header_is_treated_as_no_session(clock: ManualClock) -> None:
    store = CountingStore()
    app, _ = make_app(store, clock=clock)
    async with client_for(app) as client:
        padding = "; ".join(f"c{i}={'x' * 100}" for i in range(200))
        response = await client.get("/api/whoami", headers={"cookie": f"{padding}; sid={generate_id()}"})
        assert response.status_code == 200
        assert response.json()["user"] is None
    assert store.loads == 0
