"""quart.session is the sessionward session: the mapping, the verbs, clear(), the registry, per-app state."""

from __future__ import annotations

import pytest
from quart import Quart, session
from quart_support import client, cookie, make_app, sid_of

from sessionward import ManualClock
from sessionward.core.errors import ConfigError, SessionNotAvailableError
from sessionward.core.ids import storage_key
from sessionward.core.records import SessionRecord, Tombstone
from sessionward.quart import AppState, QuartSession, SessionWard, current_session
from sessionward.stores.memory import MemoryStore


async def test_quart_session_works_without_a_secret_key(clock: ManualClock) -> None:
    store = MemoryStore()
    app = make_app(store, clock=clock)
    assert app.secret_key is None
    browser = client(app)
    written = await browser.post("/set", query_string={"theme": "dark"})
    sid = sid_of(written)
    assert sid
    assert "HttpOnly" in written.headers["set-cookie"]
    again = await browser.get("/whoami", headers=cookie(sid))
    assert await again.get_json() == {"user": None, "data": {"theme": "dark"}}
    record = await store.load(storage_key(sid), clock())
    assert isinstance(record, SessionRecord)
    assert record.data == {"theme": "dark"}  # the data is on the server, not in a signed cookie


async def test_a_request_that_does_not_touch_the_session_sets_no_cookie(clock: ManualClock) -> None:
    browser = client(make_app(clock=clock))
    response = await browser.get("/whoami")
    assert response.status_code == 200
    assert "set-cookie" not in response.headers


async def test_logout_ends_the_session_and_clears_the_cookie(clock: ManualClock) -> None:
    store = MemoryStore()
    browser = client(make_app(store, clock=clock))
    sid = sid_of(await browser.post("/login"))
    assert sid
    out = await browser.post("/logout", headers=cookie(sid))
    assert sid_of(out) == ""
    assert isinstance(await store.load(storage_key(sid), clock()), Tombstone)


async def test_clear_ends_the_session_like_logout(clock: ManualClock) -> None:
    store = MemoryStore()
    browser = client(make_app(store, clock=clock))
    sid = sid_of(await browser.post("/login"))
    assert sid
    await browser.post("/set", query_string={"secret": "s"}, headers=cookie(sid))
    cleared = await browser.post("/clear", headers=cookie(sid))
    assert await cleared.get_json() == {"data": {}}
    assert sid_of(cleared) == ""
    assert isinstance(await store.load(storage_key(sid), clock()), Tombstone)


async def test_values_written_after_clear_start_a_new_anonymous_session(clock: ManualClock) -> None:
    browser = client(make_app(clock=clock))
    old = sid_of(await browser.post("/login"))
    await browser.post("/set", query_string={"secret": "s"}, headers=cookie(old))
    new = sid_of(await browser.post("/clear-then-write", headers=cookie(old)))
    assert new
    assert new != old
    fresh = await browser.get("/whoami", headers=cookie(new))
    stale = await browser.get("/whoami", headers=cookie(old))
    assert await fresh.get_json() == {"user": None, "data": {"cart": ["pen"]}}
    assert await stale.get_json() == {"user": None, "data": {}}


async def test_a_login_after_clear_takes_over_without_the_cleared_data(clock: ManualClock) -> None:
    browser = client(make_app(clock=clock))
    old = sid_of(await browser.post("/login"))
    await browser.post("/set", query_string={"secret": "s"}, headers=cookie(old))
    new = sid_of(await browser.post("/clear-then-login", headers=cookie(old)))
    assert new
    assert new != old
    after = await browser.get("/whoami", headers=cookie(new))
    assert await after.get_json() == {"user": "bob", "data": {}}


async def test_the_registry_is_reachable_from_quart_session(clock: ManualClock) -> None:
    browser = client(make_app(clock=clock))
    laptop = sid_of(await browser.post("/login"))
    phone = sid_of(await browser.post("/login"))
    tablet = sid_of(await browser.post("/login"))
    listed = await (await browser.get("/sessions", headers=cookie(laptop))).get_json()
    assert len(listed) == 3
    assert [entry["current"] for entry in listed].count(True) == 1
    phone_handle = next(
        entry["handle"]
        for entry in await (await browser.get("/sessions", headers=cookie(phone))).get_json()
        if entry["current"]
    )
    revoked = await browser.post(f"/revoke/{phone_handle}", headers=cookie(laptop))
    assert await revoked.get_json() == {"revoked": True}
    assert (await (await browser.get("/whoami", headers=cookie(phone))).get_json())["user"] is None
    others = await browser.post("/revoke-others", headers=cookie(laptop))
    assert await others.get_json() == {"ended": 1}
    assert (await (await browser.get("/whoami", headers=cookie(tablet))).get_json())["user"] is None
    assert (await (await browser.get("/whoami", headers=cookie(laptop))).get_json())["user"] == "alice"


async def test_status_reports_the_timeouts(clock: ManualClock) -> None:
    browser = client(make_app(clock=clock))
    sid = sid_of(await browser.post("/login"))
    clock.advance(60)
    status = await (await browser.get("/status", headers=cookie(sid))).get_json()
    assert status["authenticated"] is True
    assert status["idle_s"] == 60


async def test_templates_get_a_csrf_token(clock: ManualClock) -> None:
    browser = client(make_app(clock=clock))
    page = await browser.get("/form")
    token = sid_of(page, "sid-csrf")  # a visitor's token rides in the pre-session cookie
    assert token
    assert f'value="{token}"' in await page.get_data(as_text=True)


async def test_each_app_keeps_its_own_store_and_policy(clock: ManualClock) -> None:
    ward = SessionWard(clock=clock)
    first, second = Quart("first"), Quart("second")
    for app in (first, second):
        app.config["SESSIONWARD_COOKIE_SECURE"] = False
    second.config["SESSIONWARD_IDLE_TIMEOUT"] = "120"
    ward.init_app(first)
    ward.init_app(second)
    one, two = SessionWard.state(first), SessionWard.state(second)
    assert isinstance(first.extensions["sessionward"], AppState)
    assert one.store is not two.store
    assert one.policy.timeouts.idle_timeout_s != 120
    assert two.policy.timeouts.idle_timeout_s == 120

    @first.post("/set")
    async def set_value() -> dict[str, bool]:
        session["a"] = 1
        return {"ok": True}

    @second.get("/whoami")
    async def whoami() -> dict[str, object]:
        return {"data": dict(session)}

    sid = sid_of(await client(first).post("/set"))
    elsewhere = await client(second).get("/whoami", headers=cookie(sid))
    assert await elsewhere.get_json() == {"data": {}}  # an ID of one app means nothing to the other


def test_a_malformed_setting_stops_start_up_naming_it(clock: ManualClock) -> None:
    with pytest.raises(ConfigError) as raised:
        make_app(clock=clock, config={"SESSIONWARD_IDLE_TIMEOUT": "soon"})
    assert raised.value.setting == "SESSIONWARD_IDLE_TIMEOUT"


def test_the_store_url_comes_from_the_config() -> None:
    app = Quart(__name__)
    app.config["SESSIONWARD_STORE"] = "nowhere://x"
    with pytest.raises(ConfigError) as raised:
        SessionWard(app)
    assert raised.value.setting == "SESSIONWARD_STORE"


async def test_outside_the_middleware_there_is_no_sessionward_session(clock: ManualClock) -> None:
    app = make_app(clock=clock)
    async with app.test_request_context("/"):
        assert not isinstance(session._get_current_object(), QuartSession)  # type: ignore[attr-defined]
        with pytest.raises(SessionNotAvailableError):
            current_session()


def test_installing_twice_on_one_app_is_refused(clock: ManualClock) -> None:
    app = make_app(clock=clock)
    with pytest.raises(RuntimeError, match="already"):
        SessionWard(app)
