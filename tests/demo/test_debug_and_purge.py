"""The ``--debug`` endpoint (seed 000) and the background purge of expired sessions."""

from __future__ import annotations

from demo.support import DemoUnderTest, MakeDemo, sid
from sessionward.demo.app import purge_once


async def test_debug_endpoint_is_absent_without_debug(demo: DemoUnderTest) -> None:
    client = await demo.signed_in()
    response = await client.get("/api/session/debug")
    assert response.status_code == 404


async def test_debug_endpoint_leaks_no_session_id(make_demo: MakeDemo) -> None:
    demo = await make_demo(debug=True)
    client = await demo.signed_in()
    raw_id = sid(client)
    assert raw_id is not None
    response = await client.get("/api/session/debug")
    assert response.status_code == 200
    body = response.json()
    assert body["authenticated"] is True
    assert body["user"] == "alice"
    assert body["cookie"] == {
        "name": "__Host-sid",
        "http_only": True,
        "secure": True,
        "same_site": "lax",
        "max_age_s": None,
    }
    (item,) = (await client.get("/api/sessions")).json()["sessions"]
    assert body["handle_prefix"] == item["handle"][:8] + "…"
    assert raw_id not in response.text
    assert raw_id[:6] not in response.text


async def test_purge_removes_expired_sessions_and_keeps_live_ones(make_demo: MakeDemo) -> None:
    demo = await make_demo({"SESSIONWARD_IDLE_TIMEOUT": "60"})
    for _ in range(3):
        await demo.signed_in()
    manager = demo.app.state.demo.manager
    assert (await manager.store.stats(demo.clock())).live_sessions == 3
    assert await purge_once(manager) == 0
    demo.clock.advance(61)
    assert (await manager.store.stats(demo.clock())).live_sessions == 0
    # Expired records are kept a while so a returning user is told why; then they go.
    demo.clock.advance(3 * 86400)
    survivor = await demo.signed_in("bob")
    assert await purge_once(manager, batch_size=2) == 3
    stats = await manager.store.stats(demo.clock())
    assert stats.live_sessions == 1
    assert (await survivor.get("/api/session/status")).json()["authenticated"] is True
