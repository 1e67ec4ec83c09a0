"""Handles name sessions without revealing IDs; refused, displaced, revoked and elevated logins are audited."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import orjson
import pytest
from multilogin_app import BASE_POLICY, COOKIE, build_app

from sessionward import EventBus, JsonAuditLogger, LoginPolicy, SessionPolicy
from sessionward.core.ids import storage_key
from sessionward.stores.memory import MemoryStore


@dataclass
class Site:
    client: httpx.AsyncClient
    log: io.StringIO
    store: MemoryStore

    async def call(self, method: str, path: str, sid: str | None = None, json: object = None) -> httpx.Response:
        headers = {"cookie": f"{COOKIE}={sid}"} if sid else {}
        answer = await self.client.request(method, path, headers=headers, json=json)
        self.client.cookies.clear()  # each call carries exactly the cookie it names
        return answer

    async def login(self, user: str) -> tuple[str, str]:
        answer = await self.call("POST", "/api/login", json={"user": user})
        assert answer.status_code == 200, answer.text
        return answer.cookies[COOKIE], answer.json()["handle"]

    def events(self) -> list[dict[str, object]]:
        return [orjson.loads(line) for line in self.log.getvalue().splitlines()]


@asynccontextmanager
async def open_site(policy: SessionPolicy) -> AsyncIterator[Site]:
    log = io.StringIO()
    events = EventBus()
    logger = JsonAuditLogger(log)
    events.subscribe(logger)
    store = MemoryStore()
    app = build_app(store, policy, events)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app.test") as client:
        yield Site(client, log, store)
    logger.close()


def limited(max_sessions: int, prevent_login: bool) -> SessionPolicy:
    return BASE_POLICY.with_(login=LoginPolicy(max_sessions=max_sessions, prevent_login=prevent_login))


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    async with open_site(BASE_POLICY) as opened:
        yield opened


@pytest.fixture
async def first_wins_site() -> AsyncIterator[Site]:
    async with open_site(limited(1, prevent_login=True)) as opened:
        yield opened


@pytest.fixture
async def last_wins_site() -> AsyncIterator[Site]:
    async with open_site(limited(1, prevent_login=False)) as opened:
        yield opened


# -- handles ----------------------------------------------------------------------------------------


async def test_revoking_another_users_session_by_handle_is_refused(site: Site) -> None:
    mallory, _ = await site.login("mallory")
    bob, bob_handle = await site.login("bob")

    assert (await site.call("DELETE", f"/api/sessions/{bob_handle}", mallory)).status_code == 404

    assert (await site.call("GET", "/api/me", bob)).json()["user"] == "bob"
    assert all(e["event"] != "session_expired:revoked" for e in site.events())


async def test_handles_reveal_nothing_of_the_id(site: Site) -> None:
    pairs = [await site.login("alice") for _ in range(40)]
    for sid, handle in pairs:
        assert handle == storage_key(sid)[:16]  # one-way: SHA-256 of the whole ID
        assert handle not in sid
        assert sid[:16] != handle
    # Every bit of the ID counts: IDs differing in their last character only have
    # unrelated handles (about half of the 64 bits differ), so no part of an ID can be
    # guessed from a handle, nor a handle from part of an ID.
    sid = pairs[0][0]
    twin = sid[:-1] + ("A" if sid[-1] != "A" else "B")
    differing = bin(int(storage_key(sid)[:16], 16) ^ int(storage_key(twin)[:16], 16)).count("1")
    assert 12 <= differing <= 52


@pytest.mark.parametrize("use", ["handle", "storage key"])
async def test_a_handle_or_a_dumped_key_is_no_usable_cookie(site: Site, use: str) -> None:
    sid, handle = await site.login("alice")
    forged = handle if use == "handle" else hashlib.sha256(sid.encode()).hexdigest()

    answer = await site.call("GET", "/api/me", forged)

    assert answer.status_code == 401
    assert answer.json()["error"] == "session_invalid"


# -- events in the audit log ----------------------------------------------------------------------------


async def test_a_refused_login_is_audited(first_wins_site: Site) -> None:
    await first_wins_site.login("alice")
    refused = await first_wins_site.call("POST", "/api/login", json={"user": "alice"})
    assert refused.status_code == 409
    assert refused.json() == {"error": "max_sessions"}
    (event,) = [e for e in first_wins_site.events() if e["event"] == "authn_login_fail"]
    assert (event["user"], event["reason"]) == ("alice", "max_sessions")


async def test_a_displaced_session_is_audited_and_told_why(last_wins_site: Site) -> None:
    first, first_handle = await last_wins_site.login("alice")
    second, _ = await last_wins_site.login("alice")

    answer = await last_wins_site.call("GET", "/api/me", first)

    assert answer.json() == {"error": "session_invalid", "reason": "displaced"}
    assert (await last_wins_site.call("GET", "/api/me", second)).json()["user"] == "alice"
    (event,) = [e for e in last_wins_site.events() if e["event"] == "session_expired:displaced"]
    assert (event["user"], event["session"], event["reason"]) == ("alice", first_handle, "displaced")


async def test_a_revocation_is_audited(site: Site) -> None:
    laptop, laptop_handle = await site.login("alice")
    phone, _ = await site.login("alice")

    assert (await site.call("DELETE", f"/api/sessions/{laptop_handle}", phone)).status_code == 204

    (event,) = [e for e in site.events() if e["event"] == "session_expired:revoked"]
    assert (event["user"], event["session"], event["reason"]) == ("alice", laptop_handle, "revoked")
    assert (await site.call("GET", "/api/me", laptop)).json()["reason"] == "revoked"


async def test_an_elevation_is_audited_and_rotates_the_id(site: Site) -> None:
    sid, handle = await site.login("alice")

    answer = await site.call("POST", "/api/elevate", sid)

    assert answer.json() == {"elevated": True}
    elevated_sid = answer.cookies[COOKIE]
    assert elevated_sid != sid
    (event,) = [e for e in site.events() if e["event"] == "session_elevated"]
    assert event["user"] == "alice"
    assert event["session"] == storage_key(elevated_sid)[:16] != handle
    # The less privileged ID died with the elevation.
    assert (await site.call("GET", "/api/me", sid)).status_code == 401


async def test_the_audit_log_never_holds_a_raw_id(site: Site) -> None:
    ids = [(await site.login(user))[0] for user in ("alice", "alice", "bob")]
    await site.call("POST", "/api/elevate", ids[0])
    await site.call("POST", "/api/logout", ids[2])
    log = site.log.getvalue()
    assert log.count("\n") >= 5
    assert not any(sid in log for sid in ids)
