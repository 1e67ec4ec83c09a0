"""Forged HTML form posts: a missing or wrong synchronizer token is refused (F15).

The token is the second layer: it holds when the browser sends no ``Origin`` or Fetch
Metadata (old browsers, stripping proxies), so these attacks carry neither header.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
from test_csrf_cross_site import SAME_ORIGIN, Bank, logged_in

from sessionward import Creation, ManualClock, SessionNotAvailableError, SessionPolicy
from sessionward.asgi.csrf import CsrfMiddleware
from sessionward.core.csrf import csrf_token
from sessionward.core.engine import ClientInfo
from sessionward.io.exchange import Exchange
from sessionward.io.manager import SessionManager
from sessionward.stores.memory import MemoryStore


async def test_form_post_without_token_is_refused(clock: ManualClock) -> None:
    bank = Bank(clock)
    async with bank.client() as victim:
        await logged_in(bank, victim)
        response = await victim.post("/transfer", data={"to": "mallory", "amount": "1000"})
    assert response.status_code == 403
    assert response.json() == {"error": "csrf_refused", "reason": "token_missing"}
    assert bank.reached == []


@pytest.mark.parametrize("forged", ["guess", "", "A" * 43, "x" * 5000])
async def test_form_post_with_wrong_token_is_refused(clock: ManualClock, forged: str) -> None:
    bank = Bank(clock)
    async with bank.client() as victim:
        await logged_in(bank, victim)
        response = await victim.post("/transfer", data={"to": "mallory", "csrf_token": forged})
    assert response.status_code == 403
    assert response.json()["reason"] == "token_mismatch"
    assert bank.reached == []


async def test_token_of_the_attackers_own_session_is_refused(clock: ManualClock) -> None:
    bank = Bank(clock)
    async with bank.client() as attacker:
        attackers_token = await logged_in(bank, attacker)
    async with bank.client() as victim:
        await logged_in(bank, victim)
        response = await victim.post("/transfer", data={"csrf_token": attackers_token})
    assert response.json()["reason"] == "token_mismatch"


async def test_form_post_without_a_session_is_refused(clock: ManualClock) -> None:
    bank = Bank(clock)
    async with bank.client() as client:
        response = await client.post("/transfer", data={"csrf_token": "anything"})
    assert response.json()["reason"] == "token_mismatch"


async def test_right_token_passes_and_the_app_reads_the_replayed_form(clock: ManualClock) -> None:
    bank = Bank(clock)
    async with bank.client() as client:
        token = await logged_in(bank, client)
        response = await client.post(
            "/transfer", data={"to": "bob", "csrf_token": token, "amount": "5"}, headers=SAME_ORIGIN
        )
    assert response.status_code == 200
    assert response.json() == {"to": "bob", "csrf_token": token, "amount": "5"}


async def test_token_in_multipart_form_and_text_plain_form(clock: ManualClock) -> None:
    bank = Bank(clock)
    async with bank.client() as client:
        token = await logged_in(bank, client)
        multipart = await client.post(
            "/transfer", data={"csrf_token": token, "note": "hi"}, files={"receipt": ("r.txt", b"csrf_token=nope\r\n")}
        )
        assert multipart.status_code == 200
        assert multipart.json()["note"] == "hi"
        plain = await client.post("/api/transfer", content=b"to=mallory\r\n", headers={"content-type": "text/plain"})
        assert (plain.status_code, plain.json()["reason"]) == (403, "token_missing")
        wrong_part = await client.post("/transfer", files={"csrf_token_x": ("f", token.encode())})
        assert wrong_part.json()["reason"] == "token_missing"


async def test_token_in_header_passes_without_reading_the_body(clock: ManualClock) -> None:
    bank = Bank(clock, max_body_bytes=1024)
    async with bank.client() as client:
        token = await logged_in(bank, client)
        big = {"blob": "x" * 5000}
        assert (await client.post("/transfer", data=big, headers={"x-csrf-token": token})).status_code == 200
        wrong = await client.post("/api/transfer", json={}, headers={"x-csrf-token": "forged"})
        assert (wrong.status_code, wrong.json()["reason"]) == (403, "token_mismatch")
        # Two token headers are never believed: the body is read instead.
        doubled = await client.post(
            "/transfer", data={"a": "b"}, headers=[("x-csrf-token", token), ("x-csrf-token", token)]
        )
        assert doubled.json()["reason"] == "token_missing"


async def test_oversized_form_is_refused_before_it_reaches_the_app(clock: ManualClock) -> None:
    bank = Bank(clock, max_body_bytes=1024)
    async with bank.client() as client:
        token = await logged_in(bank, client)
        response = await client.post("/transfer", data={"csrf_token": token, "blob": "x" * 5000})
    assert response.status_code == 413
    assert response.json() == {"error": "csrf_refused", "reason": "form_too_large"}
    assert bank.reached == []


async def test_token_learned_before_login_is_dead_after_login(clock: ManualClock) -> None:
    bank = Bank(clock)
    async with bank.client() as client:
        before = (await client.get("/token")).text  # a visitor's token, e.g. on the login form
        assert client.cookies.get("sid") is None  # no session: it lives in the pre-session cookie
        assert client.cookies.get("sid-csrf") == before
        ok = await client.post("/transfer", data={"csrf_token": before})
        assert ok.status_code == 200  # the login form itself can be posted
        after = await logged_in(bank, client)
        assert after != before
        stale = await client.post("/transfer", data={"csrf_token": before})
        assert stale.json()["reason"] == "token_mismatch"
        assert (await client.post("/transfer", data={"csrf_token": after})).status_code == 200


async def test_session_made_without_a_token_gets_one_when_a_form_needs_it(clock: ManualClock) -> None:
    bank = Bank(clock)
    async with bank.client() as client:
        await client.post("/cart", headers=SAME_ORIGIN)  # an anonymous session, no token yet
        token = (await client.get("/token")).text
        assert (await client.get("/token")).text == token  # it was saved with the session
        assert (await client.post("/transfer", data={"csrf_token": token})).status_code == 200


async def test_token_is_stable_across_requests_of_one_session(clock: ManualClock) -> None:
    bank = Bank(clock)
    async with bank.client() as client:
        first = await logged_in(bank, client)
        assert (await client.get("/token")).text == first


async def test_client_disconnecting_mid_form_never_reaches_the_app(clock: ManualClock) -> None:
    bank = Bank(clock)
    messages: Iterator[dict[str, Any]] = iter(
        [{"type": "http.request", "body": b"to=mallory&amount=", "more_body": True}, {"type": "http.disconnect"}]
    )
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/transfer",
        "headers": [(b"content-type", b"application/x-www-form-urlencoded"), (b"host", b"bank.example")],
        "client": ("192.0.2.1", 1),
        "scheme": "http",
    }
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return next(messages)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await CsrfMiddleware(bank.app.app, bank.manager)(scope, receive, send)
    assert bank.reached == []
    assert sent == []


def test_csrf_token_needs_no_session_under_creation_never(clock: ManualClock) -> None:
    manager = SessionManager(MemoryStore(), SessionPolicy(creation=Creation.NEVER), clock=clock)
    exchange = Exchange(manager, path="/login", client=ClientInfo(ip="192.0.2.1", user_agent="t"))
    token = csrf_token(exchange.session)
    assert exchange.record is None
    name = manager.engine.csrf_cookie.cookie_name
    assert any(value.startswith(f"{name}={token};".encode()) for _, value in exchange.response_headers())


def test_csrf_token_refuses_when_no_cookie_may_be_set(clock: ManualClock) -> None:
    manager = SessionManager(MemoryStore(), SessionPolicy(creation=Creation.STATELESS), clock=clock)
    exchange = Exchange(manager, path="/login", client=ClientInfo(ip="192.0.2.1", user_agent="t"))
    with pytest.raises(SessionNotAvailableError, match="stateless"):
        csrf_token(exchange.session)
