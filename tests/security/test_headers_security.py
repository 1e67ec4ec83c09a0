"""Security headers (F14): clickjacking, MIME sniffing, script injection, SSL stripping and
shared caches serving one user's session page to another are each met by a header."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from sessionward import ConfigError, ManualClock
from sessionward.asgi.headers import SecurityHeadersMiddleware
from sessionward.asgi.middleware import SessionMiddleware
from sessionward.core.headers import DEFAULT_CSP, SecurityHeadersPolicy
from sessionward.io.manager import SessionManager
from sessionward.starlette import get_session
from sessionward.stores.memory import MemoryStore
from support.helpers import plain_http_policy


async def cached_page(request: Request) -> Response:
    get_session(request).get("theme")  # reads the session
    return PlainTextResponse("your account", headers={"cache-control": "public, max-age=3600"})


async def public_page(request: Request) -> Response:
    return PlainTextResponse("hello", headers={"cache-control": "public, max-age=60"})


async def own_csp(request: Request) -> Response:
    return HTMLResponse("<p>x</p>", headers={"content-security-policy": "default-src 'none'"})


async def login(request: Request) -> Response:
    await get_session(request).login("alice")
    return PlainTextResponse("ok")


ROUTES = [
    Route("/account", cached_page),
    Route("/public", public_page),
    Route("/own-csp", own_csp),
    Route("/login", login, methods=["POST"]),
]


def build(clock: ManualClock, *, inside: bool = False, policy: SecurityHeadersPolicy | None = None) -> Any:
    manager = SessionManager(MemoryStore(), plain_http_policy(), clock=clock)
    starlette = Starlette(routes=ROUTES)
    if inside:
        return SessionMiddleware(SecurityHeadersMiddleware(starlette, policy), manager)
    return SecurityHeadersMiddleware(SessionMiddleware(starlette, manager), policy)


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app.example")


async def test_every_response_carries_the_default_header_set(clock: ManualClock) -> None:
    async with client_for(build(clock)) as client:
        response = await client.get("/public")
    headers = response.headers
    assert headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert headers["content-security-policy"] == DEFAULT_CSP
    assert "'unsafe-inline'" not in DEFAULT_CSP
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["x-frame-options"] == "DENY"
    assert headers["cross-origin-opener-policy"] == "same-origin"


async def test_clickjacking_is_refused_by_frame_ancestors_and_x_frame_options(clock: ManualClock) -> None:
    async with client_for(build(clock)) as client:
        response = await client.get("/public")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"


async def test_page_with_its_own_csp_keeps_it(clock: ManualClock) -> None:
    async with client_for(build(clock)) as client:
        response = await client.get("/own-csp")
    assert response.headers.get_list("content-security-policy") == ["default-src 'none'"]


@pytest.mark.parametrize("inside", [False, True], ids=["outermost", "inside-session-middleware"])
async def test_shared_cache_cannot_keep_a_response_that_carries_or_reads_a_session(
    clock: ManualClock, inside: bool
) -> None:
    async with client_for(build(clock, inside=inside)) as client:
        issued = await client.post("/login")
        assert issued.headers.get_list("cache-control") == ["no-store"]
        read = await client.get("/account")  # the app asked for public caching
        assert read.headers.get_list("cache-control") == ["no-store"]


async def test_response_without_a_session_keeps_its_own_caching(clock: ManualClock) -> None:
    async with client_for(build(clock)) as client:
        response = await client.get("/public")
    assert response.headers["cache-control"] == "public, max-age=60"


async def test_session_middlewares_own_answers_get_the_headers_too(clock: ManualClock) -> None:
    async with client_for(build(clock)) as client:
        client.cookies.set("sid", "A" * 43)  # well-formed, unknown: 401 on /api/, else anonymous
        refused = await client.get("/api/anything")
        firewall = await client.request("TRACE", "/public")
    assert refused.status_code == 401
    assert refused.headers["x-frame-options"] == "DENY"
    assert refused.headers.get_list("cache-control") == ["no-store"]
    assert firewall.status_code == 405
    assert firewall.headers["x-content-type-options"] == "nosniff"


async def test_options_change_the_headers(clock: ManualClock) -> None:
    policy = SecurityHeadersPolicy(
        hsts_max_age_s=63_072_000,
        hsts_preload=True,
        content_security_policy=None,
        referrer_policy="no-referrer",
        frame_options="SAMEORIGIN",
        cross_origin_opener_policy=None,
    )
    async with client_for(build(clock, policy=policy)) as client:
        response = await client.get("/public")
    assert response.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains; preload"
    assert "content-security-policy" not in response.headers
    assert "cross-origin-opener-policy" not in response.headers
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    off = SecurityHeadersPolicy(hsts_max_age_s=0, hsts_include_subdomains=False)
    async with client_for(build(clock, policy=off)) as client:
        assert "strict-transport-security" not in (await client.get("/public")).headers


async def test_non_http_scopes_pass_through_untouched() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await SecurityHeadersMiddleware(app)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"hsts_preload": True, "hsts_include_subdomains": False}, "hsts_preload"),
        ({"hsts_preload": True, "hsts_max_age_s": 86400}, "hsts_preload"),
        ({"hsts_max_age_s": -1}, "hsts_max_age_s"),
        ({"hsts_max_age_s": 1.5}, "hsts_max_age_s"),
        ({"referrer_policy": "sometimes"}, "referrer_policy"),
        ({"frame_options": "ALLOW-FROM https://x.example"}, "frame_options"),
        ({"content_security_policy": "default-src 'self'\r\nSet-Cookie: sid=evil"}, "content_security_policy"),
        ({"content_security_policy": "  "}, "content_security_policy"),
        ({"cross_origin_opener_policy": "same-origin\n"}, "cross_origin_opener_policy"),
    ],
)
def test_insecure_or_malformed_header_settings_are_refused(changes: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigError, match=f"headers.{setting}"):
        SecurityHeadersPolicy(**changes)
