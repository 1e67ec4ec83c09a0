"""Attacks and faults on a Litestar app under the plugin, named after what they try."""

from __future__ import annotations

from litestar_support import DownAtEnd, DownAtLogin, client, cookie, make_app, sid_of

from sessionward import ManualClock
from sessionward.core.config import LoginThrottlePolicy
from sessionward.core.events import EventBus
from sessionward.core.ids import storage_key
from sessionward.core.records import SessionRecord
from sessionward.stores import open_store
from sessionward.stores.memory import MemoryStore
from support.helpers import Recorder, call_raw, plain_http_policy


async def test_session_fixation_the_planted_id_is_dead_after_login(clock: ManualClock) -> None:
    app, _ = make_app(clock=clock)
    async with client(app) as browser:
        planted = sid_of(await browser.post("/set", params={"lang": "en"}))  # the attacker's own session
        assert planted
        browser.cookies.clear()
        victim_login = await browser.post("/login", headers=cookie(planted))  # the victim signs in with it
        signed_in = sid_of(victim_login)
        assert signed_in
        assert signed_in != planted
        browser.cookies.clear()
        attacker = await browser.get("/whoami", headers=cookie(planted))
        victim = await browser.get("/whoami", headers=cookie(signed_in))
    assert attacker.json()["user"] is None
    assert victim.json() == {"user": "alice", "data": {"lang": "en"}}  # change_id keeps the data


async def test_cookie_replayed_after_clear_session_gets_no_user(clock: ManualClock) -> None:
    app, _ = make_app(clock=clock)
    async with client(app) as browser:
        sid = sid_of(await browser.post("/login"))
        assert (await browser.post("/clear", headers=cookie(sid))).status_code == 200
        browser.cookies.clear()
        replay = await browser.get("/whoami", headers=cookie(sid))
        guarded = await browser.get("/me", headers=cookie(sid))
    assert replay.json()["user"] is None
    assert guarded.status_code == 401


async def test_cookie_replayed_after_logout_gets_no_user(clock: ManualClock) -> None:
    app, _ = make_app(clock=clock)
    async with client(app) as browser:
        sid = sid_of(await browser.post("/login"))
        out = await browser.post("/logout", headers=cookie(sid))
        browser.cookies.clear()
        replay = await browser.get("/me", headers=cookie(sid))
    assert sid_of(out) == ""
    assert replay.status_code == 401


async def test_path_traversal_with_encoded_dots_is_refused_before_routing(clock: ManualClock) -> None:
    recorder = Recorder()
    bus = EventBus()
    bus.subscribe(recorder)
    store = MemoryStore()
    app, _ = make_app(store, clock=clock, events=bus)
    async with client(app) as browser:
        sid = sid_of(await browser.post("/login"))
        browser.cookies.clear()
        traversal = await browser.get("/x/%2e%2e/me", headers=cookie(sid))
        path_parameter = await browser.get("/me;jsessionid=abc", headers=cookie(sid))
        unknown = await browser.get("/nowhere", headers=cookie(sid))
    assert traversal.status_code == 400  # Litestar alone answers 404: its router never saw the firewall
    assert traversal.json()["error"] == "request_rejected"
    assert path_parameter.status_code == 400
    assert unknown.status_code == 404  # an ordinary miss is still Litestar's
    assert recorder.names().count("firewall_refused") == 2


async def test_trace_method_is_refused_before_routing(clock: ManualClock) -> None:
    app, _ = make_app(clock=clock)
    async with client(app):  # the lifespan wraps the app
        status, _, _ = await call_raw(app, "TRACE", b"/whoami")
    assert status == 405


async def test_cross_site_post_is_refused(clock: ManualClock) -> None:
    app, _ = make_app(clock=clock)
    async with client(app) as browser:
        sid = sid_of(await browser.post("/login"))
        browser.cookies.clear()
        forged = await browser.post(
            "/set", params={"email": "attacker@example.com"}, headers={**cookie(sid), "sec-fetch-site": "cross-site"}
        )
        own = await browser.post(
            "/set", params={"theme": "dark"}, headers={**cookie(sid), "sec-fetch-site": "same-origin"}
        )
        after = await browser.get("/whoami", headers=cookie(sid))
    assert forged.status_code == 403
    assert forged.json()["error"] == "csrf_refused"
    assert own.status_code == 200
    assert after.json()["data"] == {"theme": "dark"}


async def test_store_outage_while_loading_gives_503_not_a_logout(clock: ManualClock) -> None:
    app, _ = make_app(open_store("redis://127.0.0.1:1/0"), clock=clock)
    async with client(app) as browser:
        loading = await browser.get("/whoami", headers=cookie("A" * 43))
        creating = await browser.post("/set", params={"a": "1"})
    for response in (loading, creating):
        assert response.status_code == 503
        assert response.json()["error"] == "session_store_unavailable"
        assert response.headers["retry-after"] == "1"
        assert sid_of(response) is None  # the cookie is neither set nor cleared by an outage


async def test_store_outage_during_login_gives_503_and_nobody_is_logged_in(clock: ManualClock) -> None:
    recorder = Recorder()
    bus = EventBus()
    bus.subscribe(recorder)
    app, _ = make_app(DownAtLogin(), clock=clock, events=bus)
    async with client(app) as browser:
        anonymous = sid_of(await browser.post("/set", params={"a": "1"}))
        browser.cookies.clear()
        response = await browser.post("/login", headers=cookie(anonymous))
        after = await browser.get("/whoami", headers=cookie(anonymous))
    assert response.status_code == 503
    assert response.json()["error"] == "session_store_unavailable"
    assert response.headers["retry-after"] == "1"
    assert sid_of(response) is None
    assert after.json() == {"user": None, "data": {"a": "1"}}
    assert "store_unavailable" in recorder.names()


async def test_store_outage_during_clear_session_gives_503_and_the_session_lives(clock: ManualClock) -> None:
    recorder = Recorder()
    bus = EventBus()
    bus.subscribe(recorder)
    store = DownAtEnd()
    app, _ = make_app(store, clock=clock, events=bus)
    async with client(app) as browser:
        sid = sid_of(await browser.post("/login"))
        assert sid
        browser.cookies.clear()
        response = await browser.post("/clear", headers=cookie(sid))
        after = await browser.get("/whoami", headers=cookie(sid))
    assert response.status_code == 503
    assert response.json()["error"] == "session_store_unavailable"
    assert sid_of(response) is None  # not told it was logged out: it was not
    assert "store_unavailable" in recorder.names()
    assert after.json()["user"] == "alice"  # nobody was logged out by the outage, silently or not
    assert isinstance(await store.load(storage_key(sid), clock()), SessionRecord)


async def test_revocation_racing_a_rotation_gets_401_and_the_cookie_cleared(clock: ManualClock) -> None:
    app, _ = make_app(clock=clock)
    async with client(app) as browser:
        sid = sid_of(await browser.post("/login"))
        browser.cookies.clear()
        response = await browser.post("/rotate-after-revocation", headers=cookie(sid))
        after = await browser.get("/me", headers=cookie(sid))
    assert response.status_code == 401
    assert response.json() == {"error": "session_invalid", "reason": "session_ended"}
    assert sid_of(response) == ""
    assert after.status_code == 401


async def test_password_guessing_is_throttled_with_429_and_retry_after(clock: ManualClock) -> None:
    policy = plain_http_policy(login_throttle=LoginThrottlePolicy(max_failures=2))
    app, _ = make_app(clock=clock, policy=policy)
    async with client(app) as browser:
        answers = [await browser.post("/signin", params={"user": "alice"}) for _ in range(4)]
    assert [answer.status_code for answer in answers[:2]] == [200, 200]
    throttled = answers[-1]
    assert throttled.status_code == 429
    assert throttled.json()["error"] == "throttled"
    assert int(throttled.headers["retry-after"]) >= 1


async def test_guards_refuse_anonymous_and_stale_sign_ins(clock: ManualClock) -> None:
    app, _ = make_app(clock=clock)
    async with client(app) as browser:
        assert (await browser.get("/me")).status_code == 401
        assert (await browser.get("/account")).status_code == 401
        sid = sid_of(await browser.post("/login"))
        browser.cookies.clear()
        assert (await browser.get("/account", headers=cookie(sid))).status_code == 200
        clock.advance(901)  # past the default re-authentication window of 900 s
        stale = await browser.get("/account", headers=cookie(sid))
        still_signed_in = await browser.get("/me", headers=cookie(sid))
    assert stale.status_code == 403
    assert stale.json()["detail"] == "reauth_required"
    assert still_signed_in.status_code == 200
