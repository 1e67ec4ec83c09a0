"""Spoofed forwarding headers: believed from a trusted proxy only, never from anyone else.

An attacker who can set ``X-Forwarded-For`` / ``Forwarded`` / ``X-Forwarded-Proto`` on a
direct request could otherwise pick the IP a session is bound to and logged with, or
the scheme the CSRF origin check compares against.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from sessionward import BindingPolicy, ManualClock
from sessionward.asgi.csrf import CsrfMiddleware
from sessionward.asgi.middleware import SessionMiddleware
from sessionward.core.clientinfo import client_info, normalize_origin, request_origin
from sessionward.core.ids import storage_key
from sessionward.core.records import SessionRecord
from sessionward.io.manager import SessionManager
from sessionward.stores.memory import MemoryStore
from support.helpers import ROUTES, plain_http_policy

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))
PROXY = "10.0.0.5"
ATTACKER = "198.51.100.66"
VICTIM = "203.0.113.7"


def scope(peer: str, *headers: tuple[str, str], scheme: str = "http", host: str = "app.example") -> dict[str, Any]:
    raw = [(b"host", host.encode()), *((name.encode(), value.encode()) for name, value in headers)]
    return {"type": "http", "client": (peer, 40000), "scheme": scheme, "headers": raw}


SPOOFS = [
    pytest.param(("x-forwarded-for", VICTIM), id="x-forwarded-for"),
    pytest.param(("forwarded", f"for={VICTIM};proto=https;host=bank.example"), id="forwarded"),
    pytest.param(("x-forwarded-for", f"{VICTIM}, 10.0.0.9"), id="x-forwarded-for-via-fake-proxy"),
    pytest.param(("x-real-ip", VICTIM), id="x-real-ip"),
]


@pytest.mark.parametrize("header", SPOOFS)
def test_forwarding_headers_from_an_untrusted_peer_are_ignored(header: tuple[str, str]) -> None:
    for proxies in ((), PROXIES):
        seen = request_origin(
            scope(ATTACKER, header, ("x-forwarded-proto", "https"), ("x-forwarded-host", "bank.example")), proxies
        )
        assert seen.client.ip == ATTACKER
        assert seen.scheme == "http"
        assert seen.host == "app.example"


def test_client_prepended_hops_are_ignored_behind_a_trusted_proxy() -> None:
    # The client sent "X-Forwarded-For: 1.1.1.1"; the proxy appended the real peer.
    seen = client_info(scope(PROXY, ("x-forwarded-for", f"1.1.1.1, {ATTACKER}")), PROXIES)
    assert seen.ip == ATTACKER


def test_chain_of_trusted_proxies_is_walked_to_the_first_untrusted_hop() -> None:
    headers = ("x-forwarded-for", f"1.1.1.1, {VICTIM}, 10.0.0.7, 10.0.0.6")
    assert client_info(scope(PROXY, headers), PROXIES).ip == VICTIM


def test_several_x_forwarded_for_headers_read_as_one_list() -> None:
    seen = client_info(scope(PROXY, ("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", VICTIM)), PROXIES)
    assert seen.ip == VICTIM


def test_all_hops_trusted_means_the_leftmost_originated_it() -> None:
    assert client_info(scope(PROXY, ("x-forwarded-for", "10.1.1.1, 10.0.0.6")), PROXIES).ip == "10.1.1.1"


@pytest.mark.parametrize("garbled", ["unknown", "_hidden", "999.1.1.1", "evil.example"])
def test_garbled_hop_stops_the_walk_and_nothing_is_believed(garbled: str) -> None:
    seen = request_origin(
        scope(PROXY, ("x-forwarded-for", f"1.1.1.1, {garbled}, 10.0.0.7"), ("x-forwarded-proto", "https")), PROXIES
    )
    assert seen.client.ip == PROXY
    assert seen.scheme == "http"


@pytest.mark.parametrize(
    ("forwarded", "ip"),
    [
        (f"for={VICTIM}", VICTIM),
        (f'for="{VICTIM}:4711"', VICTIM),
        ('for="[2001:db8::17]:4711"', "2001:db8::17"),
        (f"For={VICTIM};Proto=https", VICTIM),
        (f"for=1.1.1.1, for={VICTIM};by=10.0.0.5", VICTIM),
        (f'for={VICTIM};host="a;b"', VICTIM),
    ],
)
def test_forwarded_header_from_a_trusted_proxy_is_parsed_per_rfc_7239(forwarded: str, ip: str) -> None:
    assert client_info(scope(PROXY, ("forwarded", forwarded)), PROXIES).ip == ip


def test_ipv6_proxy_and_ipv4_mapped_peer_are_recognised() -> None:
    assert client_info(scope("fd00::1", ("x-forwarded-for", VICTIM)), PROXIES).ip == VICTIM
    assert client_info(scope("::ffff:10.0.0.5", ("x-forwarded-for", VICTIM)), PROXIES).ip == VICTIM


def test_forwarded_and_x_forwarded_for_disagreeing_are_both_ignored() -> None:
    # A proxy that writes only X-Forwarded-For passes a client's Forwarded through untouched.
    seen = client_info(scope(PROXY, ("forwarded", "for=1.1.1.1"), ("x-forwarded-for", ATTACKER)), PROXIES)
    assert seen.ip == PROXY
    agreeing = client_info(scope(PROXY, ("forwarded", f"for={VICTIM}"), ("x-forwarded-for", VICTIM)), PROXIES)
    assert agreeing.ip == VICTIM


def test_scheme_and_host_come_from_the_trusted_proxy() -> None:
    seen = request_origin(
        scope(PROXY, ("x-forwarded-for", VICTIM), ("x-forwarded-proto", "https"), ("x-forwarded-host", "Bank.Example")),
        PROXIES,
    )
    assert (seen.scheme, seen.host, seen.origin) == ("https", "bank.example", "https://bank.example")
    forwarded = request_origin(scope(PROXY, ("forwarded", f"for={VICTIM};proto=https;host=bank.example:443")), PROXIES)
    assert forwarded.origin == "https://bank.example"


def test_x_forwarded_proto_without_an_address_header_is_honoured_from_a_trusted_proxy() -> None:
    seen = request_origin(scope(PROXY, ("x-forwarded-proto", "https")), PROXIES)
    assert (seen.client.ip, seen.scheme) == (PROXY, "https")


@pytest.mark.parametrize("proto", ["javascript", "ftp", "https\r\nx: y"])
def test_unknown_forwarded_scheme_is_ignored(proto: str) -> None:
    seen = request_origin(scope(PROXY, ("x-forwarded-for", VICTIM), ("x-forwarded-proto", proto)), PROXIES)
    assert seen.scheme == "http"


def test_malformed_or_duplicate_host_gives_no_origin() -> None:
    assert request_origin(scope(ATTACKER, host="evil.example/path"), ()).origin is None
    duplicate = {"type": "http", "client": (ATTACKER, 1), "headers": [(b"host", b"a.example"), (b"host", b"b.example")]}
    assert request_origin(duplicate, ()).origin is None


@pytest.mark.parametrize(
    ("text", "origin"),
    [
        ("https://Bank.Example", "https://bank.example"),
        ("https://bank.example:443", "https://bank.example"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://[::1]:80", "http://[::1]"),
        ("null", None),
        ("https://bank.example/path", None),
        ("file:///etc/passwd", None),
    ],
)
def test_normalize_origin(text: str, origin: str | None) -> None:
    assert normalize_origin(text) == origin


# -- end to end: binding and CSRF see through trusted proxies only ---------------------------


def build(clock: ManualClock, **changes: object) -> tuple[SessionMiddleware, MemoryStore]:
    store = MemoryStore()
    manager = SessionManager(store, plain_http_policy(**changes), clock=clock)
    app = SessionMiddleware(CsrfMiddleware(Starlette(routes=ROUTES), manager), manager)
    return app, store


def client_at(app: SessionMiddleware, peer: str, base_url: str = "http://app.example") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url=base_url)


async def test_spoofed_x_forwarded_for_cannot_borrow_an_ip_bound_session(clock: ManualClock) -> None:
    app, _ = build(clock, binding=BindingPolicy(ip=True), trusted_proxies=PROXIES)
    async with client_at(app, PROXY) as victim:
        await victim.post("/login", headers={"x-forwarded-for": VICTIM})
        cookie = victim.cookies["sid"]
        assert (await victim.get("/api/whoami", headers={"x-forwarded-for": VICTIM})).json()["user"] == "alice"
    async with client_at(app, ATTACKER) as attacker:
        attacker.cookies.set("sid", cookie)
        response = await attacker.get("/api/whoami", headers={"x-forwarded-for": VICTIM, "forwarded": f"for={VICTIM}"})
    assert response.status_code == 401
    assert response.json()["reason"] == "binding_mismatch"


async def test_device_list_records_the_ip_the_trusted_proxy_saw(clock: ManualClock) -> None:
    app, store = build(clock, trusted_proxies=PROXIES)
    async with client_at(app, PROXY) as client:
        await client.post("/login", headers={"x-forwarded-for": f"1.1.1.1, {VICTIM}"})
        record = await store.load(storage_key(client.cookies["sid"]), clock())
    assert isinstance(record, SessionRecord)
    assert record.meta.ip == VICTIM


async def test_spoofed_x_forwarded_proto_does_not_make_a_foreign_origin_match(clock: ManualClock) -> None:
    app, _ = build(clock, trusted_proxies=PROXIES)
    origin_headers = {"origin": "https://app.example", "x-forwarded-proto": "https"}
    async with client_at(app, PROXY) as via_proxy:
        assert (await via_proxy.post("/api/login", headers=origin_headers)).status_code == 200
    async with client_at(app, ATTACKER) as direct:
        refused = await direct.post("/api/login", headers=origin_headers)
    assert refused.status_code == 403
    assert refused.json() == {"error": "csrf_refused", "reason": "origin_mismatch"}
