"""The demo's sign-in (``POST /api/login`` and the HTML form) is throttled as SPEC §4 says.

``429 {"error": "throttled", "retry_after_s": n}`` with ``Retry-After`` on the API, the
wait shown on the form, and answers (and their timing) alike for known and unknown
user names. Real Argon2 checks, a ManualClock for the delays.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import time
from collections import Counter

import httpx
import orjson

from demo.support import BASE_URL, PASSWORDS, DemoUnderTest, MakeDemo, form_token, login
from sessionward import ManualClock
from sessionward.demo import create_app


async def test_demo_api_answers_429_with_retry_after_and_lets_the_right_password_in_after_the_wait(
    demo: DemoUnderTest,
) -> None:
    client = await demo.client()
    answers = [await login(client, "alice", f"guess-{i}") for i in range(30)]
    assert Counter(response.status_code for response in answers) == {401: 5, 429: 25}
    held = answers[-1]
    assert held.json() == {"error": "throttled", "retry_after_s": 1}
    assert held.headers["retry-after"] == "1"
    assert "set-cookie" not in held.headers
    refused = await login(client, "alice")  # the right password, inside the delay
    assert refused.status_code == 429
    demo.clock.advance(int(refused.headers["retry-after"]))
    assert (await login(client, "alice")).status_code == 200


async def test_demo_brute_force_from_50_forwarded_ips_is_throttled_per_account(make_demo: MakeDemo) -> None:
    demo = await make_demo({"SESSIONWARD_TRUSTED_PROXIES": "127.0.0.1"})
    statuses: Counter[int] = Counter()
    for i in range(50):
        client = await demo.client()
        client.headers["x-forwarded-for"] = f"203.0.113.{i + 1}"
        for j in range(4):
            statuses[(await login(client, "alice", f"guess-{i}-{j}")).status_code] += 1
    assert statuses == {401: 5, 429: 195}


async def test_demo_audit_log_shows_failed_throttled_and_authn_login_successafterfail_sign_ins(
    clock: ManualClock,
) -> None:
    audit = io.StringIO()
    app = create_app("memory://", environ={"SESSIONWARD_APP_ID": "demo"}, clock=clock, audit_stream=audit)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=app, client=("198.51.100.23", 51000))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers={"user-agent": "hydra/9.5"})
        )
        statuses = [(await login(client, "alice", f"guess-{i}")).status_code for i in range(8)]
        refused = await login(client, "alice")
        clock.advance(int(refused.headers["retry-after"]))
        signed_in = await login(client, "alice")
    assert [*statuses, refused.status_code, signed_in.status_code] == [401] * 5 + [429] * 4 + [200]
    lines = [orjson.loads(line) for line in audit.getvalue().splitlines()]
    assert [line["event"] for line in lines] == [
        *["authn_login_fail"] * 5,
        *["authn_login_lock"] * 4,
        "authn_login_successafterfail",
        "session_created",
        "authn_login_success",
    ]
    assert {(line["appid"], line["source_ip"], line["user_agent"]) for line in lines} == {
        ("demo", "198.51.100.23", "hydra/9.5")
    }
    assert {line["user"] for line in lines if line["event"].startswith("authn_")} == {"alice"}
    assert lines[9]["retries"] == 9
    assert all("retries" not in line for line in lines[:9] + lines[10:])


async def test_demo_login_form_shows_the_wait(demo: DemoUnderTest) -> None:
    client = await demo.client()
    token = form_token((await client.get("/login")).text)
    pages = [
        await client.post("/login", data={"csrf_token": token, "username": "alice", "password": f"guess-{i}"})
        for i in range(6)
    ]
    assert [page.status_code for page in pages] == [401] * 5 + [429]
    assert "Wrong user name or password." in pages[0].text
    held = pages[-1]
    assert held.headers["retry-after"] == "1"
    assert 'data-retry-after="1"' in held.text
    assert "Too many failed sign-ins. Wait 1 second before trying again." in held.text
    demo.clock.advance(1)
    token = form_token(held.text)
    signed_in = await client.post(
        "/login", data={"csrf_token": token, "username": "alice", "password": PASSWORDS["alice"]}
    )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/dashboard"


async def timed(client: httpx.AsyncClient, username: str, password: str) -> tuple[int, float]:
    started = time.perf_counter()
    response = await client.post("/api/login", json={"username": username, "password": password})
    return response.status_code, time.perf_counter() - started


async def medians(client: httpx.AsyncClient, rounds: int) -> tuple[set[int], float, float]:
    """Interleave wrong passwords for alice and for unknown names; their statuses and median times."""
    known: list[float] = []
    unknown: list[float] = []
    statuses: set[int] = set()
    for i in range(rounds):
        status, elapsed = await timed(client, "alice", f"wrong-{i}")
        statuses.add(status)
        known.append(elapsed)
        status, elapsed = await timed(client, "nobody", f"wrong-{i}")
        statuses.add(status)
        unknown.append(elapsed)
    return statuses, statistics.median(known), statistics.median(unknown)


async def test_known_and_unknown_user_names_take_as_long_to_refuse(make_demo: MakeDemo) -> None:
    # Password checked: a threshold high enough that nothing is held back yet.
    checking = await make_demo({"SESSIONWARD_LOGIN_MAX_FAILURES": "1000"})
    statuses, known_s, unknown_s = await medians(await checking.client(), 15)
    assert statuses == {401}
    print(f"\npassword checked: known {known_s * 1000:.1f} ms, unknown {unknown_s * 1000:.1f} ms (medians of 15)")
    assert 0.5 < known_s / unknown_s < 2.0

    # Held back (default settings, past the threshold): no password checked, alike for both.
    throttling = await make_demo()
    client = await throttling.client(user_agent="other-browser/1.0")
    await medians(client, 5)  # past the threshold of 5 for alice and for each unknown name
    statuses, known_s, unknown_s = await medians(client, 40)
    assert statuses == {429}
    print(f"throttled: known {known_s * 1000:.2f} ms, unknown {unknown_s * 1000:.2f} ms (medians of 40)")
    assert 0.5 < known_s / unknown_s < 2.0
