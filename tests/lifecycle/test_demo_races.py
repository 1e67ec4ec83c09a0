"""Racing requests on one session, through the demo's HTTP API, on every store.

Each test forces one dangerous order with a gate on the store (``interleave``): request A
is held after it loaded the session and decided what to do, request B runs to completion,
then A goes on. The lifecycle invariants must hold afterwards: ended means ended, one
renewal makes one successor, the limit counts every live ID, no spurious logouts.
"""

from __future__ import annotations

import asyncio

import httpx

from demo.support import COOKIE, PASSWORDS, DemoUnderTest, login, set_sid, sid
from sessionward.core.records import EndReason, SessionRecord
from support.interleave import GatedStore

from .conftest import GatedDemo

RENEWAL_S = 60
RENEWING = {"SESSIONWARD_RENEWAL_INTERVAL": str(RENEWAL_S)}
NEW_PASSWORD = "a-new-and-long-passphrase-42"


async def live(demo: DemoUnderTest, store: GatedStore, user: str = "alice") -> list[SessionRecord]:
    """The user's live sessions, read from the store itself."""
    return await store.inner.list_user(user, demo.clock())


async def tab(demo: DemoUnderTest, cookie: str | None) -> httpx.AsyncClient:
    """Another client (a second tab, or a thief) sending ``cookie``."""
    client = await demo.client()
    if cookie is not None:
        set_sid(client, cookie)
    return client


async def assert_dead(demo: DemoUnderTest, *cookies: str | None) -> None:
    """Every ID given is refused (401 on the API), whoever sends it."""
    for cookie in cookies:
        if cookie is None:
            continue
        response = await (await tab(demo, cookie)).get("/api/sessions")
        assert response.status_code == 401, f"an ID of the ended session still works: {response.text}"


async def test_renewal_racing_a_logout_does_not_sign_the_session_back_in(gated_demo: GatedDemo) -> None:
    demo, store = await gated_demo(RENEWING)
    alice = await demo.signed_in("alice")
    old = sid(alice)
    other_tab = await tab(demo, old)
    demo.clock.advance(RENEWAL_S + 1)
    hold = store.hold("establish")
    renewing = asyncio.create_task(alice.get("/api/sessions"))
    await hold.arrived()  # A loaded the session, found its renewal due, and is about to move it
    assert (await other_tab.post("/api/logout")).status_code == 200
    hold.release()
    response = await renewing
    assert await live(demo, store) == []
    assert COOKIE not in response.cookies or not response.cookies[COOKIE], "a dead session's successor handed out"
    await assert_dead(demo, old, sid(alice))


async def test_logout_decided_before_a_renewal_also_ends_the_successor(gated_demo: GatedDemo) -> None:
    demo, store = await gated_demo(RENEWING)
    alice = await demo.signed_in("alice")
    old = sid(alice)
    other_tab = await tab(demo, old)
    demo.clock.advance(RENEWAL_S + 1)
    hold = store.hold("end")
    logging_out = asyncio.create_task(other_tab.post("/api/logout"))
    await hold.arrived()  # the logout loaded the session and is about to end it
    renewed = await alice.get("/api/sessions")
    assert renewed.status_code == 200
    successor = sid(alice)
    assert successor not in (None, old), "the renewal did not hand out a new ID"
    hold.release()
    assert (await logging_out).status_code == 200
    assert await live(demo, store) == []
    await assert_dead(demo, old, successor)


async def test_password_change_on_another_device_signs_out_a_device_renewing_meanwhile(
    gated_demo: GatedDemo,
) -> None:
    demo, store = await gated_demo(RENEWING)
    laptop = await demo.signed_in("alice", user_agent="laptop/1.0")
    phone = await demo.signed_in("alice", user_agent="phone/1.0")
    phone_id = sid(phone)
    demo.clock.advance(RENEWAL_S + 1)
    hold = store.hold("establish")
    renewing = asyncio.create_task(phone.get("/api/sessions"))
    await hold.arrived()
    changed = await laptop.post(
        "/api/password", json={"current_password": PASSWORDS["alice"], "new_password": NEW_PASSWORD}
    )
    assert changed.status_code == 200, changed.text
    hold.release()
    await renewing
    sessions = await live(demo, store)
    assert [s.meta.user_agent for s in sessions] == ["laptop/1.0"]
    await assert_dead(demo, phone_id, sid(phone))


async def test_password_change_decided_before_a_renewal_on_another_device_ends_its_successor(
    gated_demo: GatedDemo,
) -> None:
    demo, store = await gated_demo(RENEWING)
    laptop = await demo.signed_in("alice", user_agent="laptop/1.0")
    phone = await demo.signed_in("alice", user_agent="phone/1.0")
    phone_id = sid(phone)
    demo.clock.advance(RENEWAL_S + 1)
    hold = store.hold("end_user")
    changing = asyncio.create_task(
        laptop.post("/api/password", json={"current_password": PASSWORDS["alice"], "new_password": NEW_PASSWORD})
    )
    await hold.arrived()
    assert (await phone.get("/api/sessions")).status_code == 200
    successor = sid(phone)
    assert successor not in (None, phone_id)
    hold.release()
    assert (await changing).status_code == 200
    assert [s.meta.user_agent for s in await live(demo, store)] == ["laptop/1.0"]
    await assert_dead(demo, phone_id, successor)


async def test_a_burst_of_renewals_forks_no_session(gated_demo: GatedDemo) -> None:
    demo, store = await gated_demo({**RENEWING, "SESSIONWARD_MAX_SESSIONS": "1", "SESSIONWARD_PREVENT_LOGIN": "true"})
    alice = await demo.signed_in("alice")
    old = sid(alice)
    tabs = [await tab(demo, old) for _ in range(10)]
    demo.clock.advance(RENEWAL_S + 1)
    hold = store.hold("establish", count=len(tabs))
    racing = [asyncio.create_task(t.get("/api/sessions")) for t in tabs]
    await hold.arrived()  # all ten loaded the session and decided to renew it
    hold.release()
    responses = await asyncio.gather(*racing)
    assert all(r.status_code == 200 for r in responses)
    handed_out = {r.cookies.get(COOKIE) for r in responses}
    assert len(handed_out) == 1, f"one renewal handed out {len(handed_out)} IDs"
    successor = handed_out.pop()
    assert successor not in (None, old)
    sessions = await live(demo, store)
    assert len(sessions) == 1
    # First wins with a limit of one: another device is refused while the one session lives…
    assert (await login(await demo.client(), "alice")).status_code == 409
    # …and admitted once it has logged out: no forked session is left to count.
    assert (await (await tab(demo, successor)).post("/api/logout")).status_code == 200
    assert await live(demo, store) == []
    assert (await login(await demo.client(), "alice")).status_code == 200


async def test_two_renewals_inside_one_grace_period_keep_the_first_id_working(gated_demo: GatedDemo) -> None:
    demo, store = await gated_demo({"SESSIONWARD_RENEWAL_INTERVAL": "1", "SESSIONWARD_ROTATION_GRACE": "5"})
    alice = await demo.signed_in("alice")
    first = sid(alice)
    demo.clock.advance(1.5)
    assert (await alice.get("/api/sessions")).status_code == 200
    second = sid(alice)
    demo.clock.advance(1.5)
    assert (await alice.get("/api/sessions")).status_code == 200
    third = sid(alice)
    assert len({first, second, third}) == 3
    late = await (await tab(demo, first)).get("/api/sessions")  # sent before the renewals, arriving now
    assert late.status_code == 200, late.text
    assert late.cookies.get(COOKIE) == third
    assert len(await live(demo, store)) == 1


async def test_a_login_under_the_limit_racing_a_renewal_displaces_the_successor(gated_demo: GatedDemo) -> None:
    demo, store = await gated_demo({**RENEWING, "SESSIONWARD_MAX_SESSIONS": "1", "SESSIONWARD_PREVENT_LOGIN": "false"})
    laptop = await demo.signed_in("alice", user_agent="laptop/1.0")
    laptop_id = sid(laptop)
    demo.clock.advance(RENEWAL_S + 1)
    hold = store.hold("establish")
    logging_in = asyncio.create_task(login(await demo.client("phone/1.0"), "alice"))
    await hold.arrived()  # the phone's login is decided and about to be written
    assert (await laptop.get("/api/sessions")).status_code == 200  # the laptop renews first
    successor = sid(laptop)
    hold.release()
    assert (await logging_in).status_code == 200
    assert [s.meta.user_agent for s in await live(demo, store)] == ["phone/1.0"]
    await assert_dead(demo, laptop_id, successor)


async def test_a_renewal_after_its_session_was_displaced_writes_nothing(gated_demo: GatedDemo) -> None:
    demo, store = await gated_demo({**RENEWING, "SESSIONWARD_MAX_SESSIONS": "1", "SESSIONWARD_PREVENT_LOGIN": "false"})
    laptop = await demo.signed_in("alice", user_agent="laptop/1.0")
    laptop_id = sid(laptop)
    demo.clock.advance(RENEWAL_S + 1)
    hold = store.hold("establish")
    renewing = asyncio.create_task(laptop.get("/api/sessions"))
    await hold.arrived()
    assert (await login(await demo.client("phone/1.0"), "alice")).status_code == 200
    hold.release()
    await renewing
    assert [s.meta.user_agent for s in await live(demo, store)] == ["phone/1.0"]
    await assert_dead(demo, laptop_id, sid(laptop))


async def test_elevation_racing_a_revocation_of_the_user_is_refused_not_granted(gated_demo: GatedDemo) -> None:
    demo, store = await gated_demo()
    alice = await demo.signed_in("alice")
    before = sid(alice)
    hold = store.hold("establish")
    elevating = asyncio.create_task(alice.post("/api/elevate", json={"password": PASSWORDS["alice"]}))
    await hold.arrived()  # password checked, the rotation to an elevated ID decided
    now = demo.clock()
    await store.inner.end_user("alice", EndReason.REVOKED, now, now + 3600)  # an administrator
    hold.release()
    response = await elevating
    assert response.status_code == 401, response.text
    assert response.json() == {"error": "session_invalid", "reason": "session_ended"}
    assert await live(demo, store) == []
    await assert_dead(demo, before, sid(alice))


async def test_revoking_a_device_listed_before_it_renewed_still_ends_it(gated_demo: GatedDemo) -> None:
    demo, store = await gated_demo(RENEWING)
    laptop = await demo.signed_in("alice", user_agent="laptop/1.0")
    phone = await demo.signed_in("alice", user_agent="phone/1.0")
    listed = (await laptop.get("/api/sessions")).json()["sessions"]
    phone_handle = next(s["handle"] for s in listed if not s["current"])
    demo.clock.advance(RENEWAL_S + 1)
    assert (await phone.get("/api/sessions")).status_code == 200  # the phone renews: a new handle
    renewed = sid(phone)
    revoked = await laptop.delete(f"/api/sessions/{phone_handle}")
    assert revoked.status_code == 204, "a session renewed often enough would dodge revocation"
    assert [s.meta.user_agent for s in await live(demo, store)] == ["laptop/1.0"]
    await assert_dead(demo, renewed)
