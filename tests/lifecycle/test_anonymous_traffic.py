"""Anonymous traffic costs the store nothing: no record before one is needed, on every store.

Session flooding (a record per anonymous request, kept for the idle timeout and more) is
a denial of service against server-side sessions. The demo's public pages, its login
form and a failed sign-in must leave the store exactly as it was; the login form still
works, its CSRF token riding in a pre-session cookie instead of a session.
"""

from __future__ import annotations

from demo.support import COOKIE, PASSWORDS, form_token, login, sid
from stores.backends import Backend

from .conftest import GatedDemo

SAME_ORIGIN = {"sec-fetch-site": "same-origin"}


async def test_session_flooding_through_anonymous_pages_writes_nothing(gated_demo: GatedDemo, backend: Backend) -> None:
    demo, _ = await gated_demo()
    before = await backend.dump()
    for _ in range(3):
        visitor = await demo.client()
        for path in ("/", "/login", "/api/session/status"):
            assert (await visitor.get(path)).status_code == 200
        assert sid(visitor) is None
    assert await backend.dump() == before, "anonymous requests wrote to the session store"


async def test_session_flooding_through_failed_logins_leaves_only_the_throttles_counters(
    gated_demo: GatedDemo, backend: Backend
) -> None:
    # A failed sign-in creates no session; login throttling counts it (per account, per
    # network, and a gate once throttled): a few expiring counters, however many attempts.
    demo, store = await gated_demo()
    before = await store.inner.stats(demo.clock())
    for _ in range(10):
        visitor = await demo.client()
        assert (await login(visitor, "alice", "not-alice-pass")).status_code in (401, 429)
        token = form_token((await visitor.get("/login")).text)
        refused = await visitor.post(
            "/login", data={"csrf_token": token, "username": "alice", "password": "wrong"}, headers=SAME_ORIGIN
        )
        assert refused.status_code in (200, 401, 429)
        assert sid(visitor) is None
    after = await store.inner.stats(demo.clock())
    sessions = ("live_sessions", "authenticated_sessions", "users", "tombstones")
    assert [getattr(after, name) for name in sessions] == [getattr(before, name) for name in sessions]
    assert after.counters - before.counters <= 3


async def test_the_login_form_signs_in_with_its_pre_session_token(gated_demo: GatedDemo) -> None:
    demo, store = await gated_demo()
    visitor = await demo.client()
    token = form_token((await visitor.get("/login")).text)
    assert visitor.cookies.get(f"{COOKIE}-csrf") == token
    assert sid(visitor) is None
    signed_in = await visitor.post(
        "/login", data={"csrf_token": token, "username": "alice", "password": PASSWORDS["alice"]}, headers=SAME_ORIGIN
    )
    assert signed_in.status_code in (200, 303), signed_in.text
    assert sid(visitor) is not None
    assert [s.meta.user for s in await store.inner.list_user("alice", demo.clock())] == ["alice"]


async def test_a_login_form_post_without_the_cookie_token_is_refused(gated_demo: GatedDemo) -> None:
    demo, _ = await gated_demo()
    visitor = await demo.client()
    token = form_token((await visitor.get("/login")).text)
    visitor.cookies.clear()  # a forged cross-site form: the attacker knows no visitor's cookie
    forged = await visitor.post("/login", data={"csrf_token": token, "username": "alice", "password": "x"})
    assert forged.status_code == 403
    assert forged.json() == {"error": "csrf_refused", "reason": "token_mismatch"}
