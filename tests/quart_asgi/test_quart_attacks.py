"""Attacks and faults on a Quart app under the extension, named after what they try."""

from __future__ import annotations

from quart_support import DownAtEnd, DownAtLogin, client, cookie, make_app, sid_of

from sessionward import ManualClock
from sessionward.core.config import LoginThrottlePolicy
from sessionward.core.events import EventBus
from sessionward.core.ids import storage_key
from sessionward.core.records import SessionRecord
from sessionward.stores import open_store
from support.helpers import Recorder, plain_http_policy


def recording() -> tuple[EventBus, Recorder]:
    """An event bus with a recorder subscribed."""
    recorder = Recorder()
    bus = EventBus()
    bus.subscribe(recorder)
    return bus, recorder


async def test_session_fixation_the_planted_id_is_dead_after_login(clock: ManualClock) -> None:
    browser = client(make_app(clock=clock))
    planted = sid_of(await browser.post("/set", query_string={"lang": "en"}))  # the attacker's own session
    assert planted
    signed_in = sid_of(await browser.post("/login", headers=cookie(planted)))  # the victim signs in with it
    assert signed_in
    assert signed_in != planted
    attacker = await browser.get("/whoami", headers=cookie(planted))
    victim = await browser.get("/whoami", headers=cookie(signed_in))
    assert (await attacker.get_json())["user"] is None
    assert await victim.get_json() == {"user": "alice", "data": {"lang": "en"}}


async def test_cookie_replayed_after_clear_gets_no_user(clock: ManualClock) -> None:
    browser = client(make_app(clock=clock))
    sid = sid_of(await browser.post("/login"))
    assert (await browser.post("/clear", headers=cookie(sid))).status_code == 200
    replay = await browser.get("/whoami", headers=cookie(sid))
    assert (await replay.get_json())["user"] is None


async def test_path_traversal_with_encoded_dots_is_refused_before_routing(clock: ManualClock) -> None:
    bus, recorder = recording()
    browser = client(make_app(clock=clock, events=bus))
    traversal = await browser.get("/x/%2e%2e/whoami")
    path_parameter = await browser.get("/whoami;jsessionid=abc")
    unknown = await browser.get("/nowhere")
    assert traversal.status_code == 400
    assert (await traversal.get_json())["error"] == "request_rejected"
    assert path_parameter.status_code == 400
    assert unknown.status_code == 404
    assert recorder.names().count("firewall_refused") == 2


async def test_cross_site_post_is_refused(clock: ManualClock) -> None:
    browser = client(make_app(clock=clock))
    sid = sid_of(await browser.post("/login"))
    forged = await browser.post(
        "/set", query_string={"email": "attacker@example.com"}, headers={**cookie(sid), "sec-fetch-site": "cross-site"}
    )
    own = await browser.post(
        "/set", query_string={"theme": "dark"}, headers={**cookie(sid), "sec-fetch-site": "same-origin"}
    )
    after = await browser.get("/whoami", headers=cookie(sid))
    assert forged.status_code == 403
    assert (await forged.get_json())["error"] == "csrf_refused"
    assert own.status_code == 200
    assert (await after.get_json())["data"] == {"theme": "dark"}


async def test_store_outage_while_loading_gives_503_not_a_logout(clock: ManualClock) -> None:
    browser = client(make_app(open_store("redis://127.0.0.1:1/0"), clock=clock))
    loading = await browser.get("/whoami", headers=cookie("A" * 43))
    creating = await browser.post("/set", query_string={"a": "1"})
    for response in (loading, creating):
        assert response.status_code == 503
        assert (await response.get_json())["error"] == "session_store_unavailable"
        assert response.headers["retry-after"] == "1"
        assert sid_of(response) is None  # the cookie is neither set nor cleared by an outage


async def test_store_outage_during_login_gives_503_and_nobody_is_logged_in(clock: ManualClock) -> None:
    bus, recorder = recording()
    browser = client(make_app(DownAtLogin(), clock=clock, events=bus))
    anonymous = sid_of(await browser.post("/set", query_string={"a": "1"}))
    response = await browser.post("/login", headers=cookie(anonymous))
    after = await browser.get("/whoami", headers=cookie(anonymous))
    assert response.status_code == 503
    assert (await response.get_json())["error"] == "session_store_unavailable"
    assert response.headers["retry-after"] == "1"
    assert sid_of(response) is None
    assert await after.get_json() == {"user": None, "data": {"a": "1"}}
    assert "store_unavailable" in recorder.names()


async def test_store_outage_during_clear_gives_503_and_the_session_lives(clock: ManualClock) -> None:
    bus, recorder = recording()
    store = DownAtEnd()
    browser = client(make_app(store, clock=clock, events=bus))
    sid = sid_of(await browser.post("/login"))
    assert sid
    response = await browser.post("/clear", headers=cookie(sid))
    after = await browser.get("/whoami", headers=cookie(sid))
    assert response.status_code == 503
    assert (await response.get_json())["error"] == "session_store_unavailable"
    assert response.headers["retry-after"] == "1"
    assert sid_of(response) is None  # not told it was logged out: it was not
    assert "store_unavailable" in recorder.names()
    assert (await after.get_json())["user"] == "alice"  # nobody was logged out by the outage
    assert isinstance(await store.load(storage_key(sid), clock()), SessionRecord)


async def test_revocation_racing_a_rotation_gets_401_and_the_cookie_cleared(clock: ManualClock) -> None:
    browser = client(make_app(clock=clock))
    sid = sid_of(await browser.post("/login"))
    response = await browser.post("/rotate-after-revocation", headers=cookie(sid))
    assert response.status_code == 401
    assert await response.get_json() == {"error": "session_invalid", "reason": "session_ended"}
    assert sid_of(response) == ""


async def test_password_guessing_is_throttled_with_429_and_retry_after(clock: ManualClock) -> None:
    policy = plain_http_policy(login_throttle=LoginThrottlePolicy(max_failures=2))
    browser = client(make_app(clock=clock, policy=policy))
    answers = [await browser.post("/signin", query_string={"user": "alice"}) for _ in range(4)]
    assert [answer.status_code for answer in answers[:2]] == [200, 200]
    throttled = answers[-1]
    assert throttled.status_code == 429
    assert (await throttled.get_json())["error"] == "throttled"
    assert int(throttled.headers["retry-after"]) >= 1
