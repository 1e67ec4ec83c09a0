"""Session flooding is capped: new anonymous sessions per client and minute, in the shared store.

Every anonymous session is a record the store keeps; one client sending requests that
write to a session (a cart, a form's draft) would make the store grow as fast as it can
send them. The budget counts each creation on the client's counter in the store (so it
holds across servers), per IPv4 address or IPv6 /64, through the trusted-proxy rules;
past it the request goes on without a session, or is answered 429. A login is never
refused: an attacker could spend the budget of a whole NAT or /64.

Each test runs the ASGI middleware over a small Starlette app (``/set`` writes to the
session, ``/login`` signs in) on every store kind of ``conftest.BUDGET_BACKENDS``, with a
ManualClock moved past the one-minute window; nothing sleeps.
"""

from __future__ import annotations

import ipaddress

import httpx

from sessionward import ManualClock
from sessionward.asgi.middleware import SessionMiddleware
from sessionward.core.config import BudgetAction, CreationBudget
from sessionward.core.engine import ClientInfo
from sessionward.core.events import EventBus
from sessionward.stores.base import SessionStore
from support.helpers import Recorder, make_app, plain_http_policy, set_cookie_value

BUDGET = 3
WINDOW_S = 60.0


def budgeted(
    store: SessionStore, clock: ManualClock, action: BudgetAction = BudgetAction.SKIP, **changes: object
) -> tuple[SessionMiddleware, Recorder]:
    """The test app with a budget of ``BUDGET`` new sessions a minute, and its event recorder."""
    policy = plain_http_policy(creation_budget=CreationBudget(per_minute=BUDGET, action=action), **changes)
    recorder = Recorder()
    events = EventBus()
    events.subscribe(recorder)
    app, _ = make_app(store, clock=clock, policy=policy, events=events)
    return app, recorder


def visitor(app: SessionMiddleware, ip: str, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    """A new browser (an empty cookie jar) connecting from ``ip``."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers)


async def new_visitors_writing(
    app: SessionMiddleware, ips: list[str], headers: dict[str, str] | None = None
) -> list[bool]:
    """Let a new visitor from each of ``ips`` write to a session; tell which got one."""
    made = []
    for ip in ips:
        async with visitor(app, ip, headers) as client:
            response = await client.post("/set", params={"cart": "1"})
            assert response.status_code == 200, response.text
            made.append(bool(set_cookie_value(response)))
    return made


async def live_sessions(store: SessionStore, clock: ManualClock) -> int:
    return (await store.stats(clock())).live_sessions


async def test_session_flooding_from_one_ip_is_capped_by_the_budget(
    budget_store: SessionStore, clock: ManualClock
) -> None:
    app, recorder = budgeted(budget_store, clock)
    async with visitor(app, "198.51.100.7") as returning:
        # Pages that need no session spend nothing: only creations are counted.
        for _ in range(20):
            assert (await returning.get("/plain")).status_code == 200
            assert (await returning.get("/whoami")).status_code == 200
        assert set_cookie_value(await returning.post("/set", params={"cart": "1"}))

        made = await new_visitors_writing(app, ["198.51.100.7"] * 10)
        assert made == [True] * (BUDGET - 1) + [False] * (11 - BUDGET)
        assert await live_sessions(budget_store, clock) == BUDGET
        assert recorder.names().count("session_budget_exceeded") == 11 - BUDGET
        assert {e.reason for e in recorder.events if e.name.value == "session_budget_exceeded"} == {"skip"}

        # Past the budget the store was written once; the rest of the flood was judged in process.
        name = app.manager.engine.creation_counter(ClientInfo(ip="198.51.100.7"))
        assert name is not None
        assert (await budget_store.count_hit(name, WINDOW_S, clock())).count == BUDGET + 2

        # A visitor who has a session keeps using it, budget or not.
        assert (await returning.post("/set", params={"more": "2"})).status_code == 200
        assert (await returning.get("/whoami")).json()["data"] == {"cart": "1", "more": "2"}

        clock.advance(WINDOW_S)
        assert await new_visitors_writing(app, ["198.51.100.7"] * 2) == [True, True]
        assert await live_sessions(budget_store, clock) == BUDGET + 2


async def test_rotating_ipv6_addresses_in_one_64_share_one_budget(
    budget_store: SessionStore, clock: ManualClock
) -> None:
    app, _ = budgeted(budget_store, clock)
    subscriber = ipaddress.ip_network("2001:db8:40:7::/64")
    rotating = [str(subscriber[i * 7919 + 1]) for i in range(10)]
    assert await new_visitors_writing(app, rotating) == [True] * BUDGET + [False] * (10 - BUDGET)
    # The next /64 and an IPv4 neighbour are other clients, with budgets of their own.
    assert await new_visitors_writing(app, ["2001:db8:40:8::1", "198.51.100.8", "198.51.100.9"]) == [True] * 3
    # An IPv4 address over IPv6 (a dual-stack socket) is the same client as over IPv4.
    assert await new_visitors_writing(app, ["198.51.100.8"] * (BUDGET - 1)) == [True] * (BUDGET - 1)
    assert await new_visitors_writing(app, ["::ffff:198.51.100.8"]) == [False]


async def test_login_is_never_refused_by_an_exhausted_budget(budget_store: SessionStore, clock: ManualClock) -> None:
    app, _ = budgeted(budget_store, clock, action=BudgetAction.REFUSE)
    neighbour = "203.0.113.44"  # an attacker behind the same NAT spends the budget
    async with visitor(app, neighbour) as attacker:
        for _ in range(BUDGET):
            assert set_cookie_value(await attacker.post("/set", params={"x": "1"}))
            attacker.cookies.clear()
        assert (await attacker.post("/set", params={"x": "1"})).status_code == 429
    async with visitor(app, neighbour) as user:
        signed_in = await user.post("/login", params={"user": "alice"})
        assert signed_in.status_code == 200, signed_in.text
        assert set_cookie_value(signed_in)
        assert (await user.get("/whoami")).json()["user"] == "alice"
        assert (await user.post("/set", params={"cart": "1"})).status_code == 200  # a session now: no budget
    # The login neither asked nor spent: the counter stands where the attacker left it.
    name = app.manager.engine.creation_counter(ClientInfo(ip=neighbour))
    assert name is not None
    assert (await budget_store.count_hit(name, WINDOW_S, clock())).count == BUDGET + 2


async def test_forwarded_ips_are_budgeted_only_through_trusted_proxies(
    budget_store: SessionStore, clock: ManualClock
) -> None:
    proxy = ipaddress.ip_network("10.0.0.5/32")
    trusting, _ = budgeted(budget_store, clock, trusted_proxies=(proxy,))
    # Behind the trusted proxy, each forwarded client has a budget of its own...
    for i in range(2 * BUDGET):
        assert await new_visitors_writing(trusting, ["10.0.0.5"], {"x-forwarded-for": f"192.0.2.{i}"}) == [True]
    # ...and one forwarded client is capped like any other.
    flood = await new_visitors_writing(trusting, ["10.0.0.5"] * 5, {"x-forwarded-for": "192.0.2.200"})
    assert flood == [True] * BUDGET + [False] * (5 - BUDGET)
    # A client that is no trusted proxy cannot spread its creations over forged addresses.
    made = []
    for i in range(2 * BUDGET):
        made += await new_visitors_writing(trusting, ["198.51.100.66"], {"x-forwarded-for": f"192.0.2.{100 + i}"})
    assert made == [True] * BUDGET + [False] * BUDGET


async def test_refused_creation_answers_429_with_retry_after(budget_store: SessionStore, clock: ManualClock) -> None:
    app, recorder = budgeted(budget_store, clock, action=BudgetAction.REFUSE)
    assert await new_visitors_writing(app, ["198.51.100.7"] * BUDGET) == [True] * BUDGET
    clock.advance(20)
    async with visitor(app, "198.51.100.7") as late:
        refused = await late.post("/set", params={"cart": "1"})
        assert refused.status_code == 429
        assert refused.json() == {"error": "session_budget_exceeded", "retry_after_s": 40}
        assert refused.headers["retry-after"] == "40"
        assert set_cookie_value(refused) is None
        # Refusing is for requests that wanted a session: pages that need none still answer.
        assert (await late.get("/plain")).status_code == 200
        assert (await late.get("/whoami")).status_code == 200
        clock.advance(40)
        assert set_cookie_value(await late.post("/set", params={"cart": "1"}))
    assert [e.reason for e in recorder.events if e.name.value == "session_budget_exceeded"] == ["refuse"]
    assert await live_sessions(budget_store, clock) == BUDGET + 1


async def test_a_budget_of_zero_turns_it_off(budget_store: SessionStore, clock: ManualClock) -> None:
    policy = plain_http_policy(creation_budget=CreationBudget(per_minute=0))
    app, _ = make_app(budget_store, clock=clock, policy=policy)
    assert await new_visitors_writing(app, ["198.51.100.7"] * 6) == [True] * 6
    assert (await budget_store.stats(clock())).counters == 0
