"""Session fixation: an ID planted in, or issued to, the victim before login dies at login (F6)."""

from __future__ import annotations

import pytest

from sessionward import Fixation, LoginPolicy, ManualClock
from sessionward.core.ids import generate_id, storage_key
from sessionward.stores.base import SessionStore
from support.helpers import client_for, make_app, plain_http_policy, set_cookie_value


async def test_pre_login_id_dies_at_login(local_store: SessionStore, clock: ManualClock) -> None:
    app, _ = make_app(local_store, clock=clock)
    async with client_for(app) as client:
        await client.post("/set", params={"cart": "book"})
        pre_login = client.cookies["sid"]
        response = await client.post("/login")
        post_login = set_cookie_value(response)
        assert post_login is not None
        assert post_login != pre_login
        assert (await client.get("/whoami")).json()["user"] == "alice"
    async with client_for(app) as attacker:
        attacker.cookies.set("sid", pre_login)
        response = await attacker.get("/whoami")
        assert response.json()["user"] is None
        assert set_cookie_value(response) == ""  # the dead cookie is cleared


async def test_planted_unknown_id_is_never_adopted(local_store: SessionStore, clock: ManualClock) -> None:
    planted = generate_id()
    app, _ = make_app(local_store, clock=clock)
    async with client_for(app) as victim:
        victim.cookies.set("sid", planted)
        response = await victim.post("/login")
        issued = set_cookie_value(response)
        assert issued is not None
        assert issued != planted
    assert await local_store.load(storage_key(planted), clock()) is None  # nothing was filed under it
    async with client_for(app) as attacker:
        attacker.cookies.set("sid", planted)
        assert (await attacker.get("/whoami")).json()["user"] is None


@pytest.mark.parametrize("fixation", [Fixation.CHANGE_ID, Fixation.MIGRATE, Fixation.NEW_SESSION])
async def test_every_fixation_strategy_changes_the_id(
    local_store: SessionStore, clock: ManualClock, fixation: Fixation
) -> None:
    policy = plain_http_policy(login=LoginPolicy(fixation=fixation))
    app, _ = make_app(local_store, clock=clock, policy=policy)
    async with client_for(app) as client:
        await client.post("/set", params={"cart": "book"})
        pre_login = client.cookies["sid"]
        await client.post("/login")
        assert client.cookies["sid"] != pre_login
        data = (await client.get("/whoami")).json()["data"]
        assert data == ({} if fixation is Fixation.NEW_SESSION else {"cart": "book"})
    async with client_for(app) as attacker:
        attacker.cookies.set("sid", pre_login)
        assert (await attacker.get("/whoami")).json()["user"] is None


async def test_privilege_change_kills_the_lower_privileged_id(local_store: SessionStore, clock: ManualClock) -> None:
    app, _ = make_app(local_store, clock=clock)
    async with client_for(app) as client:
        await client.post("/login")
        before = client.cookies["sid"]
        await client.post("/elevate")
        after = client.cookies["sid"]
        assert after != before
        assert (await client.get("/whoami")).json()["status"]["elevated"] is True
    async with client_for(app) as thief:
        thief.cookies.set("sid", before)
        assert (await thief.get("/whoami")).json()["user"] is None


@pytest.mark.parametrize("layer", ["async", "sync"])
def test_turning_fixation_protection_off_is_warned_at_start_up(layer: str, caplog: pytest.LogCaptureFixture) -> None:
    # Fixation 'none' keeps a planted ID valid across login: allowed, never silent.
    from sessionward import SessionPolicy

    manager_type = _manager_types()[layer]
    with caplog.at_level("WARNING", logger="sessionward"):
        manager_type(_memory_store(layer), SessionPolicy(login=LoginPolicy(fixation=Fixation.NONE)))
    assert any("fixation protection is off" in record.getMessage() for record in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING", logger="sessionward"):
        manager_type(_memory_store(layer), SessionPolicy())
    assert not any("fixation" in record.getMessage() for record in caplog.records)


def _manager_types() -> dict[str, type]:
    from sessionward import SessionManager
    from sessionward.sync import SessionManager as SyncSessionManager

    return {"async": SessionManager, "sync": SyncSessionManager}


def _memory_store(layer: str) -> object:
    from sessionward import MemoryStore
    from sessionward.sync import MemoryStore as SyncMemoryStore

    return MemoryStore() if layer == "async" else SyncMemoryStore()
