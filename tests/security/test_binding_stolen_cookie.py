"""Session hijacking with a stolen cookie: a replay from another client is refused (F13).

A victim logs in; the attacker replays the victim's cookie from another browser (User-Agent)
or another network. Under each binding mode the mismatching replay ends the session and
gets 401 ``binding_mismatch`` (or a redirect on pages); under ``report`` it is only logged.
"""

from __future__ import annotations

import httpx
import pytest

from sessionward import BindingMismatch, BindingPolicy, EventBus, InvalidSessionPolicy, ManualClock, SessionPolicy
from sessionward.asgi.middleware import SessionMiddleware
from sessionward.core.ids import storage_key
from sessionward.core.records import EndReason, SessionRecord, Tombstone
from sessionward.io.manager import SessionManager
from sessionward.stores.memory import MemoryStore
from support.helpers import Recorder, make_app, plain_http_policy

VICTIM_UA = "Mozilla/5.0 (Victim; Firefox)"
ATTACKER_UA = "curl/8.5.0"
VICTIM_IP = "203.0.113.7"
SAME_NETWORK_IP = "203.0.113.99"
OTHER_NETWORK_IP = "198.51.100.23"


def client_at(app: SessionMiddleware, ip: str, user_agent: str) -> httpx.AsyncClient:
    """A client calling ``app`` from ``ip`` with ``user_agent``."""
    transport = httpx.ASGITransport(app=app, client=(ip, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", headers={"user-agent": user_agent})


def bound_app(
    store: MemoryStore, clock: ManualClock, binding: BindingPolicy, **changes: object
) -> tuple[SessionMiddleware, SessionManager, Recorder]:
    recorder = Recorder()
    events = EventBus()
    events.subscribe(recorder)
    app, manager = make_app(store, clock=clock, policy=plain_http_policy(binding=binding, **changes), events=events)
    return app, manager, recorder


async def victim_login(app: SessionMiddleware) -> str:
    async with client_at(app, VICTIM_IP, VICTIM_UA) as victim:
        response = await victim.post("/login")
        assert response.status_code == 200
        return victim.cookies["sid"]


async def replay(
    app: SessionMiddleware, cookie: str, ip: str, user_agent: str, path: str = "/api/whoami"
) -> httpx.Response:
    async with client_at(app, ip, user_agent) as attacker:
        attacker.cookies.set("sid", cookie)
        return await attacker.get(path)


REFUSED_REPLAYS = [
    pytest.param(BindingPolicy(user_agent=True), VICTIM_IP, ATTACKER_UA, "user_agent", id="ua-other-browser"),
    pytest.param(BindingPolicy(ip=True), SAME_NETWORK_IP, VICTIM_UA, "ip", id="ip-other-address"),
    pytest.param(BindingPolicy(ip_prefix=True), OTHER_NETWORK_IP, VICTIM_UA, "ip_prefix", id="ip_prefix-other-network"),
    pytest.param(
        BindingPolicy.parse("ua+ip_prefix"), OTHER_NETWORK_IP, ATTACKER_UA, "user_agent+ip_prefix", id="ua+ip_prefix"
    ),
    pytest.param(BindingPolicy.parse("ua+ip"), VICTIM_IP, ATTACKER_UA, "user_agent", id="ua+ip-other-browser-only"),
]


@pytest.mark.parametrize(("binding", "ip", "user_agent", "attributes"), REFUSED_REPLAYS)
async def test_stolen_cookie_replayed_from_another_client_is_refused(
    clock: ManualClock, binding: BindingPolicy, ip: str, user_agent: str, attributes: str
) -> None:
    store = MemoryStore()
    app, _, recorder = bound_app(store, clock, binding)
    cookie = await victim_login(app)

    response = await replay(app, cookie, ip, user_agent)

    assert response.status_code == 401
    assert response.json() == {"error": "session_invalid", "reason": "binding_mismatch"}
    assert 'sid=""' in response.headers["set-cookie"] or "sid=;" in response.headers["set-cookie"]
    mismatch = next(e for e in recorder.events if e.name.value == "binding_mismatch")
    assert mismatch.reason == attributes
    assert mismatch.user == "alice"
    assert mismatch.ip == ip
    assert mismatch.user_agent == user_agent
    invalid = recorder.events[-1]
    assert (invalid.name.value, invalid.reason) == ("invalid_session", "binding_mismatch")
    # The session is over for everyone: thief and victim cannot be told apart.
    entry = await store.load(storage_key(cookie), clock())
    assert isinstance(entry, Tombstone)
    assert entry.reason is EndReason.BINDING_MISMATCH
    victim_again = await replay(app, cookie, VICTIM_IP, VICTIM_UA)
    assert victim_again.json() == {"error": "session_invalid", "reason": "binding_mismatch"}


ALLOWED_MOVES = [
    pytest.param(BindingPolicy(user_agent=True), OTHER_NETWORK_IP, VICTIM_UA, id="ua-ignores-network"),
    pytest.param(BindingPolicy(ip=True), VICTIM_IP, ATTACKER_UA, id="ip-ignores-browser"),
    pytest.param(BindingPolicy(ip_prefix=True), SAME_NETWORK_IP, VICTIM_UA, id="ip_prefix-same-/24"),
    pytest.param(BindingPolicy(), OTHER_NETWORK_IP, ATTACKER_UA, id="none"),
]


@pytest.mark.parametrize(("binding", "ip", "user_agent"), ALLOWED_MOVES)
async def test_binding_checks_only_the_attributes_it_names(
    clock: ManualClock, binding: BindingPolicy, ip: str, user_agent: str
) -> None:
    app, _, recorder = bound_app(MemoryStore(), clock, binding)
    cookie = await victim_login(app)
    response = await replay(app, cookie, ip, user_agent)
    assert response.status_code == 200
    assert response.json()["user"] == "alice"
    assert "binding_mismatch" not in recorder.names()


async def test_ipv6_client_moving_within_its_64_keeps_the_session(clock: ManualClock) -> None:
    app, _, _ = bound_app(MemoryStore(), clock, BindingPolicy(ip_prefix=True))
    async with client_at(app, "2001:db8:1:2::10", VICTIM_UA) as victim:
        await victim.post("/login")
        cookie = victim.cookies["sid"]
    assert (await replay(app, cookie, "2001:db8:1:2:ffff::1", VICTIM_UA)).status_code == 200
    refused = await replay(app, cookie, "2001:db8:1:3::10", VICTIM_UA)
    assert refused.json()["reason"] == "binding_mismatch"


@pytest.mark.parametrize(("ip", "user_agent"), [(OTHER_NETWORK_IP, VICTIM_UA), (VICTIM_IP, ATTACKER_UA)])
async def test_stolen_cookie_under_report_mode_is_only_reported(clock: ManualClock, ip: str, user_agent: str) -> None:
    binding = BindingPolicy(user_agent=True, ip_prefix=True, on_mismatch=BindingMismatch.REPORT)
    store = MemoryStore()
    app, _, recorder = bound_app(store, clock, binding)
    cookie = await victim_login(app)

    response = await replay(app, cookie, ip, user_agent)

    assert response.status_code == 200
    assert response.json()["user"] == "alice"
    assert recorder.names().count("binding_mismatch") == 1
    assert "invalid_session" not in recorder.names()
    assert isinstance(await store.load(storage_key(cookie), clock()), SessionRecord)


async def test_stolen_cookie_on_a_page_redirects_to_login_with_the_reason(clock: ManualClock) -> None:
    invalid = InvalidSessionPolicy(redirect_url="/login")
    app, _, _ = bound_app(MemoryStore(), clock, BindingPolicy(user_agent=True), invalid_session=invalid)
    cookie = await victim_login(app)
    response = await replay(app, cookie, VICTIM_IP, ATTACKER_UA, path="/whoami")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?reason=binding_mismatch"


async def test_binding_is_stored_hashed_not_as_the_client_attributes(clock: ManualClock) -> None:
    store = MemoryStore()
    app, _, _ = bound_app(store, clock, BindingPolicy.parse("ua+ip"))
    cookie = await victim_login(app)
    record = await store.load(storage_key(cookie), clock())
    assert isinstance(record, SessionRecord)
    binding = record.meta.binding
    assert binding is not None
    assert VICTIM_UA not in binding
    assert VICTIM_IP not in binding
    assert [part.split(":")[0] for part in binding.split(";")] == ["ua", "ip"]


async def test_session_made_before_binding_was_on_is_bound_at_its_next_request(clock: ManualClock) -> None:
    store = MemoryStore()
    unbound_app, _ = make_app(store, clock=clock)
    cookie = await victim_login(unbound_app)
    record = await store.load(storage_key(cookie), clock())
    assert isinstance(record, SessionRecord)
    assert record.meta.binding is None

    app, _, recorder = bound_app(store, clock, BindingPolicy(user_agent=True))
    assert (await replay(app, cookie, VICTIM_IP, VICTIM_UA)).status_code == 200  # binds now
    rebound = await store.load(storage_key(cookie), clock())
    assert isinstance(rebound, SessionRecord)
    assert rebound.meta.binding is not None
    refused = await replay(app, cookie, VICTIM_IP, ATTACKER_UA)
    assert refused.json()["reason"] == "binding_mismatch"
    assert recorder.names().count("binding_mismatch") == 1


async def test_login_binds_the_session_to_the_client_that_logs_in(clock: ManualClock) -> None:
    app, _, _ = bound_app(MemoryStore(), clock, BindingPolicy(user_agent=True))
    async with client_at(app, VICTIM_IP, "Old/1") as client:
        await client.post("/set", params={"cart": "book"})  # an anonymous session, bound to Old/1
        anonymous = client.cookies["sid"]
        client.headers["user-agent"] = VICTIM_UA
        # The anonymous session no longer fits and ends; the login starts a fresh one.
        assert (await client.post("/login")).status_code == 200
        assert client.cookies["sid"] != anonymous
        assert (await client.get("/api/whoami")).json()["user"] == "alice"
        logged_in = client.cookies["sid"]
    assert (await replay(app, logged_in, VICTIM_IP, "Old/1")).json()["reason"] == "binding_mismatch"


async def test_binding_survives_id_rotation(clock: ManualClock) -> None:
    app, _, _ = bound_app(MemoryStore(), clock, BindingPolicy(user_agent=True))
    async with client_at(app, VICTIM_IP, VICTIM_UA) as victim:
        await victim.post("/login")
        await victim.post("/rotate")
        cookie = victim.cookies["sid"]
        assert (await victim.get("/api/whoami")).json()["user"] == "alice"
    assert (await replay(app, cookie, VICTIM_IP, ATTACKER_UA)).json()["reason"] == "binding_mismatch"


def test_binding_policy_from_env_names_the_modes() -> None:
    policy = SessionPolicy.from_env({"SESSIONWARD_BINDING": "ua+ip_prefix", "SESSIONWARD_BINDING_ACTION": "report"})
    assert policy.binding.user_agent
    assert policy.binding.ip_prefix
    assert policy.binding.on_mismatch is BindingMismatch.REPORT
