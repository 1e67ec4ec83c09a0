"""request.session through the middleware with Django's test client: cookie, timeouts, faults, firewall."""

from __future__ import annotations

from typing import Any

import pytest
from django_support import (
    COOKIE,
    Client,
    Configure,
    attributes,
    configure,
    cookie_of,
    make_user,
    set_cookie_header,
    sign_in,
    store,
)
from django_testapp import REACHED

from sessionward import ManualClock, SessionPolicy, TimeoutPolicy
from sessionward.core import ids
from sessionward.core.config import CookiePolicy, InvalidSessionPolicy
from sessionward.core.errors import StoreUnavailableError
from sessionward.core.records import SessionRecord
from sessionward.sync import MemoryStore

__all__ = ["configure", "store"]  # fixtures


def test_a_view_writes_and_reads_request_session(configure: Configure) -> None:
    client = Client()

    written = client.post("/set?theme=dark")
    read = client.get("/whoami")

    assert written.status_code == 200
    assert cookie_of(written)
    assert read.json()["data"] == {"theme": "dark"}
    assert cookie_of(read) is None  # nothing changed: no new cookie


def test_the_id_is_stored_only_hashed(configure: Configure, store: MemoryStore, clock: ManualClock) -> None:
    sid = cookie_of(Client().post("/set?a=1"))
    assert sid

    assert store.load(sid, clock()) is None
    assert isinstance(store.load(ids.storage_key(sid), clock()), SessionRecord)


def test_a_page_that_does_not_touch_the_session_creates_none(configure: Configure, store: MemoryStore) -> None:
    response = Client().get("/x/page")

    assert cookie_of(response) is None
    assert "Cookie" not in response.get("Vary", "")


def test_the_cookie_has_the_policy_attributes(configure: Configure) -> None:
    header = set_cookie_header(Client().post("/set?a=1"))

    assert header is not None
    assert attributes(header) == {"path=/", "httponly", "samesite=lax"}


def test_the_production_cookie_is_host_prefixed_and_secure(configure: Configure) -> None:
    configure(SESSIONWARD_POLICY=SessionPolicy())  # not made plain-HTTP: the default cookie
    client = Client()

    response = client.post("/set?a=1", secure=True)
    header = set_cookie_header(response, "__Host-sid")

    assert header is not None
    assert {"secure", "httponly", "path=/", "samesite=lax"} <= attributes(header)
    assert "domain" not in header.lower()
    assert client.get("/whoami", secure=True).json()["data"] == {"a": "1"}


def test_a_response_that_sets_the_cookie_varies_on_it_and_is_not_cached(configure: Configure) -> None:
    response = Client().post("/set?a=1")

    assert "Cookie" in response["Vary"]
    assert response["Cache-Control"] == "no-store"


def test_reading_the_session_adds_vary_cookie(configure: Configure) -> None:
    client = Client()
    client.post("/set?a=1")

    response = client.get("/whoami")

    assert "Cookie" in response["Vary"]


def test_idle_timeout_ends_the_session(configure: Configure, clock: ManualClock) -> None:
    configure(SessionPolicy(timeouts=TimeoutPolicy(idle_timeout_s=600, absolute_timeout_s=3600)))
    make_user()
    client = Client()
    sign_in(client)
    clock.advance(599)
    assert client.get("/whoami").json()["user"] == "alice"

    clock.advance(601)
    api = client.get("/api/me")

    assert api.status_code == 401
    assert api.json() == {"error": "session_invalid", "reason": "idle_timeout"}
    assert cookie_of(api) == ""


def test_absolute_timeout_ends_an_active_session(configure: Configure, clock: ManualClock) -> None:
    configure(SessionPolicy(timeouts=TimeoutPolicy(idle_timeout_s=600, absolute_timeout_s=1500)))
    make_user()
    client = Client()
    sign_in(client)
    for _ in range(2):
        clock.advance(500)
        assert client.get("/api/me").status_code == 200

    clock.advance(500)
    response = client.get("/api/me")

    assert response.json() == {"error": "session_invalid", "reason": "absolute_timeout"}


def test_an_anonymous_session_past_its_idle_timeout_is_forgotten(configure: Configure, clock: ManualClock) -> None:
    client = Client()
    client.post("/set?a=1")
    clock.advance(601)  # the idle timeout of a session nobody signed in to: at most 600 s

    response = client.get("/api/me")

    assert response.json() == {"error": "session_invalid", "reason": "unknown"}


def test_an_html_request_with_a_dead_session_goes_on_anonymous_with_the_cookie_cleared(
    configure: Configure, clock: ManualClock
) -> None:
    client = Client()
    client.post("/set?a=1")
    clock.advance(3600)

    response = client.get("/whoami")

    assert response.status_code == 200
    assert response.json()["data"] == {}
    assert cookie_of(response) == ""


def test_invalid_session_redirects_where_the_policy_says(configure: Configure, clock: ManualClock) -> None:
    configure(SessionPolicy(invalid_session=InvalidSessionPolicy(redirect_url="/x/signin")))
    make_user()
    client = Client()
    sign_in(client)
    clock.advance(3600)

    response = client.get("/whoami")

    assert response.status_code == 303
    assert response["Location"] == "/x/signin?reason=idle_timeout"


def test_renewal_gives_a_new_id_and_the_old_one_dies_after_its_grace(configure: Configure, clock: ManualClock) -> None:
    configure(SessionPolicy(timeouts=TimeoutPolicy(renewal_interval_s=300, rotation_grace_s=5)))
    client = Client()
    old = cookie_of(client.post("/set?a=1"))
    clock.advance(301)

    renewed = client.get("/whoami")
    new = cookie_of(renewed)

    assert new
    assert new != old
    assert renewed.json()["data"] == {"a": "1"}
    replay = Client()
    replay.cookies[COOKIE] = old
    clock.advance(6)
    assert replay.get("/api/me").json() == {"error": "session_invalid", "reason": "renewed"}
    assert client.get("/api/me").json()["data"] == {"a": "1"}


def test_a_server_error_saves_nothing_the_request_changed(configure: Configure) -> None:
    client = Client()
    client.post("/set?a=1")

    failed = client.post("/error")

    assert failed.status_code == 500
    assert client.get("/whoami").json()["data"] == {"a": "1"}


class _DownStore(MemoryStore):
    def load(self, key: str, now: float) -> Any:
        raise StoreUnavailableError("down for the test")


def test_a_store_outage_is_answered_503_and_keeps_the_cookie(configure: Configure, store: MemoryStore) -> None:
    client = Client()
    sid = cookie_of(client.post("/set?a=1"))
    configure(SESSIONWARD_STORE=_DownStore())

    response = client.get("/whoami")

    assert response.status_code == 503
    assert response.json()["error"] == "session_store_unavailable"
    assert response["Retry-After"] == "1"
    assert cookie_of(response) is None
    configure(SESSIONWARD_STORE=store)  # back: the session is still there
    assert client.get("/whoami").json()["data"] == {"a": "1"}
    assert sid


class _DownAtSave(MemoryStore):
    def establish(self, *args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailableError("down for the test")


def test_a_store_outage_at_commit_is_a_503_not_a_success(configure: Configure) -> None:
    configure(SESSIONWARD_STORE=_DownAtSave())

    response = Client().post("/set?a=1")

    assert response.status_code == 503
    assert cookie_of(response) is None


class _ExplodingStore(MemoryStore):
    def load(self, key: str, now: float) -> Any:
        raise AssertionError("a malformed or refused request must never reach the store")


@pytest.mark.parametrize("value", ["short", "a" * 44 + "!", "'; DROP TABLE sessions; --", "é" * 43])
def test_a_malformed_session_cookie_never_reaches_the_store(configure: Configure, value: str) -> None:
    configure(SESSIONWARD_STORE=_ExplodingStore())
    client = Client()
    client.cookies[COOKIE] = value

    response = client.get("/api/me")

    assert response.status_code == 401
    assert response.json()["reason"] == "malformed"


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("/x/%2e%2e/admin", "encoded_period"),
        ("/x/..%2fadmin", "encoded_slash"),
        ("/x/page;jsessionid=abc", "semicolon"),
        ("/x/a%5c..%5cadmin", "backslash"),
    ],
)
def test_the_firewall_answers_path_traversal_before_url_routing(configure: Configure, target: str, reason: str) -> None:
    configure(SESSIONWARD_STORE=_ExplodingStore())
    REACHED.clear()
    client = Client()
    client.cookies[COOKIE] = "a" * 43

    response = client.get(target, REQUEST_URI=target)

    assert response.status_code == 400
    assert response.json() == {"error": "request_rejected", "reason": reason}
    assert REACHED == []


def test_the_firewall_sees_a_decoded_dot_segment_without_the_raw_target(configure: Configure) -> None:
    REACHED.clear()

    response = Client().get("/x/%2e%2e/admin")  # the test client decodes it; no REQUEST_URI

    assert response.status_code == 400
    assert response.json()["reason"] == "dot_segment"
    assert REACHED == []


def test_a_trace_request_is_refused(configure: Configure) -> None:
    response = Client().generic("TRACE", "/x/page")

    assert response.status_code == 405


def test_a_session_over_its_size_limit_is_not_saved(configure: Configure) -> None:
    configure(SessionPolicy(max_data_bytes=1024))
    client = Client()
    client.get("/grow?item=first")

    for _ in range(12):
        response = client.get("/grow")

    assert response.status_code == 500
    assert response.json()["error"] == "session_too_large"
    assert len(str(client.get("/whoami").json()["data"]["cart"])) < 1024


def test_an_async_view_uses_the_a_prefixed_twins(configure: Configure) -> None:
    import asyncio

    from django.test import AsyncClient  # type: ignore[import-untyped]

    async def run() -> list[Any]:
        client = AsyncClient()
        first = await client.get("/async")
        second = await client.get("/async")
        return [first.json(), second.json()]

    assert asyncio.run(run()) == [{"counter": 1, "has": True}, {"counter": 2, "has": True}]


def test_cookie_max_age_of_the_policy_is_sent(configure: Configure) -> None:
    configure(SessionPolicy(cookie=CookiePolicy(secure=False, max_age_s=900)))

    header = set_cookie_header(Client().post("/set?a=1"))

    assert header is not None
    assert "max-age=900" in attributes(header)
