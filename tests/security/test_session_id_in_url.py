"""URL-borne IDs (``?sid=``, ``;jsessionid=``, form bodies) are never accepted (F4, F5)."""

from __future__ import annotations

from sessionward import ManualClock
from sessionward.stores.base import SessionStore
from support.helpers import client_for, make_app


async def test_id_in_query_string_is_ignored(local_store: SessionStore, clock: ManualClock) -> None:
    app, _ = make_app(local_store, clock=clock)
    async with client_for(app) as victim:
        await victim.post("/login")
        stolen = victim.cookies["sid"]
    async with client_for(app) as attacker:
        response = await attacker.get("/whoami", params={"sid": stolen, "__Host-sid": stolen})
        assert response.json()["user"] is None


async def test_url_rewritten_jsessionid_path_parameter_is_rejected(
    local_store: SessionStore, clock: ManualClock
) -> None:
    app, _ = make_app(local_store, clock=clock)
    async with client_for(app) as victim:
        await victim.post("/login")
        stolen = victim.cookies["sid"]
    async with client_for(app) as attacker:
        for path in (f"/whoami;sid={stolen}", f"/whoami;jsessionid={stolen}", f"/whoami%3Bsid={stolen}"):
            response = await attacker.get(path)
            assert response.status_code == 400, path


async def test_id_in_form_body_is_ignored(local_store: SessionStore, clock: ManualClock) -> None:
    app, _ = make_app(local_store, clock=clock)
    async with client_for(app) as victim:
        await victim.post("/login")
        stolen = victim.cookies["sid"]
    async with client_for(app) as attacker:
        response = await attacker.post("/incr", data={"sid": stolen})
        assert response.json() == {"n": 1}  # a fresh anonymous session, not the victim's
        assert attacker.cookies["sid"] != stolen
