"""Password guessing is slowed down, per account and per client network, in the shared store.

Each attempt is counted before its password is checked; past the threshold the attempts
are spaced by a doubling delay, and one inside the delay is answered 429 with
``Retry-After`` without its password being checked. Never for longer than the maximum
delay, and a success resets the account's count.

The app of :mod:`throttle.support` does what the demo's login does; every test runs on
each store kind of ``conftest.THROTTLE_BACKENDS`` with a ManualClock (nothing sleeps), and
counts the passwords actually checked.
"""

from __future__ import annotations

import ipaddress
import random
from collections import Counter

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionward import ManualClock
from sessionward.core.config import LoginThrottlePolicy
from sessionward.starlette import get_session
from sessionward.stores.base import SessionStore
from sessionward.stores.memory import MemoryStore
from support.helpers import make_app
from throttle.support import PASSWORDS, attempt, browser, throttled_app

RIGHT = PASSWORDS["alice"]


async def test_brute_force_of_one_account_from_one_ip_is_throttled(
    throttle_store: SessionStore, clock: ManualClock
) -> None:
    app, book, recorder = throttled_app(throttle_store, clock)
    async with browser(app) as attacker:
        answers = [await attempt(attacker, "alice", f"guess-{i}") for i in range(200)]
        statuses = Counter(response.status_code for response in answers)
        print(f"200 wrong passwords: {dict(statuses)}, passwords checked: {book.checked}")
        # The default threshold is 5 failures: five passwords checked, the rest held back.
        assert [response.status_code for response in answers[:5]] == [401] * 5
        assert statuses == {401: 5, 429: 195}
        assert book.checked == 5
        held = answers[-1]
        assert held.json() == {"error": "throttled", "retry_after_s": 1}
        assert held.headers["retry-after"] == "1"

        # The right password is refused while the delay runs, without being checked...
        refused = await attempt(attacker, "alice", RIGHT)
        assert refused.status_code == 429
        assert book.checked == 5
        # ...and accepted once it has passed.
        clock.advance(int(refused.headers["retry-after"]))
        assert (await attempt(attacker, "alice", RIGHT)).status_code == 200
    names = Counter(recorder.names())
    assert names["login_failed"] == 5
    assert names["login_throttled"] == 196
    assert names["login"] == 1
    throttled = [event for event in recorder.events if event.name.value == "login_throttled"]
    assert {(event.user, event.ip) for event in throttled} == {("alice", "198.51.100.7")}
    reasons = Counter(event.reason for event in throttled)
    # Held back for the account until the network's allowance of 100 attempts is spent; from
    # then on the network's own delay answers first, and the account is not counted further.
    assert reasons == {"account": 95, "network": 101}, reasons


async def test_brute_force_from_50_forwarded_ips_is_throttled_per_account(
    throttle_store: SessionStore, clock: ManualClock
) -> None:
    app, book, _ = throttled_app(throttle_store, clock, trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),))
    statuses: Counter[int] = Counter()
    for i in range(50):
        # Each attacker address tries 4 passwords: under any per-IP limit, over the account's.
        async with browser(app, "10.0.0.5", {"x-forwarded-for": f"203.0.113.{i + 1}"}) as attacker:
            for j in range(4):
                statuses[(await attempt(attacker, "alice", f"guess-{i}-{j}")).status_code] += 1
    print(f"200 wrong passwords from 50 forwarded IPs: {dict(statuses)}, passwords checked: {book.checked}")
    assert statuses == {401: 5, 429: 195}
    assert book.checked == 5
    # The account is held back, not the proxy: another account behind it signs in.
    async with browser(app, "10.0.0.5", {"x-forwarded-for": "203.0.113.200"}) as user:
        assert (await attempt(user, "bob", PASSWORDS["bob"])).status_code == 200


async def test_password_spraying_from_one_ip_is_throttled_per_network(
    throttle_store: SessionStore, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    policy = LoginThrottlePolicy(max_attempts_per_ip=20)
    app, book, recorder = throttled_app(throttle_store, clock, policy)
    async with browser(app, "2001:db8:7::1") as attacker:
        # One guess for each of 100 accounts (unknown names count like known ones)...
        statuses = Counter([(await attempt(attacker, f"user{i}", "Spring2026!")).status_code for i in range(100)])
    print(f"password spraying, 100 accounts from one /64: {dict(statuses)}, passwords checked: {book.checked}")
    assert statuses == {401: 20, 429: 80}
    assert book.checked == 20
    assert {e.reason for e in recorder.events if e.name.value == "login_throttled"} == {"network"}
    # The operator is told once (a site behind an untrusted proxy would be one network).
    warnings = [r.getMessage() for r in caplog.records if "sign-in attempts" in r.getMessage()]
    assert len(warnings) == 1
    assert "2001:db8:7::1 made 20 sign-in attempts" in warnings[0]
    assert "SESSIONWARD_TRUSTED_PROXIES" in warnings[0]
    # ...from anywhere in the same IPv6 /64; another network is not affected.
    async with browser(app, "2001:db8:7::9999") as same_subscriber:
        assert (await attempt(same_subscriber, "alice", RIGHT)).status_code == 429
    async with browser(app, "2001:db8:8::1") as neighbour:
        assert (await attempt(neighbour, "alice", RIGHT)).status_code == 200


async def test_counter_flooding_with_a_new_user_name_per_attempt_is_bounded_by_the_network_allowance(
    throttle_store: SessionStore, clock: ManualClock
) -> None:
    # Each attempt under a new name would be a new account counter in the shared store:
    # once the client's network must wait, its attempts are refused before that.
    policy = LoginThrottlePolicy(max_attempts_per_ip=20)
    app, book, _ = throttled_app(throttle_store, clock, policy)
    before = (await throttle_store.stats(clock())).counters
    async with browser(app, "203.0.113.50") as attacker:
        statuses = Counter([(await attempt(attacker, f"name{i}", "x")).status_code for i in range(200)])
    added = (await throttle_store.stats(clock())).counters - before
    print(f"200 new user names from one IP: {dict(statuses)}, counters added: {added}")
    assert statuses == {401: 20, 429: 180}
    assert book.checked == 20
    # 20 account counters, the network's counter and its gate: not one per attempt.
    assert added <= 20 + 2, added


async def test_an_attacker_cannot_lock_a_user_out_longer_than_the_maximum_delay(
    throttle_store: SessionStore, clock: ManualClock
) -> None:
    policy = LoginThrottlePolicy(max_delay_s=60.0, window_s=3600.0)
    app, book, _ = throttled_app(throttle_store, clock, policy)
    rng = random.Random(17)
    longest = 0
    started = clock()
    async with browser(app) as attacker:
        # Guessing for most of an hour: bursts, pauses, and retries exactly when told to.
        for _ in range(300):
            response = await attempt(attacker, "alice", "wrong")
            if response.status_code == 429:
                wait = int(response.headers["retry-after"])
                longest = max(longest, wait)
                assert response.json()["retry_after_s"] == wait
            clock.advance(rng.choice([0.0, 0.0, 0.5, 3.0, wait if response.status_code == 429 else 0.0]))
        print(f"300 attempts over {clock() - started:.0f} s: {book.checked} checked, longest wait {longest} s")
        assert longest <= 60
        # However hard the attacker tried, the user waits at most the maximum delay.
        clock.advance(60.0)
    async with browser(app, "192.0.2.55") as user:
        assert (await attempt(user, "alice", RIGHT)).status_code == 200


async def test_success_resets_the_account_counter(throttle_store: SessionStore, clock: ManualClock) -> None:
    app, book, _ = throttled_app(throttle_store, clock)
    async with browser(app) as user:
        for round_ in range(3):
            # Four typos, then the right password: never held back, however often.
            for i in range(4):
                assert (await attempt(user, "alice", f"typo-{round_}-{i}")).status_code == 401
            assert (await attempt(user, "alice", RIGHT)).status_code == 200
        assert book.checked == 15
        # Without a success the threshold still holds.
        statuses = [(await attempt(user, "alice", "typo")).status_code for _ in range(7)]
        assert statuses == [401] * 5 + [429] * 2


async def test_a_patient_attacker_waits_twice_as_long_after_each_guess(
    throttle_store: SessionStore, clock: ManualClock
) -> None:
    # A window of an hour: with the default 15 minutes, the counts would start again
    # before the delay reached its maximum.
    app, book, _ = throttled_app(throttle_store, clock, LoginThrottlePolicy(window_s=3600.0))
    waits = []
    async with browser(app) as attacker:
        for _ in range(5):
            assert (await attempt(attacker, "alice", "wrong")).status_code == 401
        for _ in range(8):
            held = await attempt(attacker, "alice", "wrong")
            assert held.status_code == 429
            waits.append(int(held.headers["retry-after"]))
            clock.advance(waits[-1])
            assert (await attempt(attacker, "alice", "wrong")).status_code == 401
    print(f"waits after each guess past the threshold: {waits}")
    # Each refused attempt counts too, so the delay doubles twice per guess and refusal.
    assert waits == [1, 4, 16, 64, 256, 900, 900, 900]
    assert book.checked == 13


async def test_a_throttled_sign_in_the_application_does_not_catch_is_answered_429(clock: ManualClock) -> None:
    async def careless_login(request: Request) -> Response:
        body = await request.json()
        await get_session(request).throttle.check(body["username"])  # LoginThrottledError not caught
        await get_session(request).throttle.failed(body["username"])
        return JSONResponse({"error": "invalid_credentials"}, status_code=401)

    app, _ = make_app(MemoryStore(), clock=clock, routes=[Route("/login", careless_login, methods=["POST"])])
    async with browser(app) as attacker:
        statuses = [(await attempt(attacker, "alice", "wrong")).status_code for _ in range(6)]
        held = await attempt(attacker, "alice", "wrong")
    assert statuses == [401] * 5 + [429]
    assert held.json() == {"error": "throttled", "retry_after_s": 1}
    assert held.headers["retry-after"] == "1"
