"""The CSRF rules on plain values: a forged cross-site request is refused before any edge sees it.

Each row names the attack (or the honest request) it stands for; the middlewares of
every framework apply these same functions.
"""

from __future__ import annotations

import pytest

from sessionward import ConfigError, ManualClock, SessionPolicy
from sessionward.core.config import CsrfPolicy
from sessionward.core.csrf import (
    HeaderMap,
    TokenSource,
    csrf_token,
    declared_too_large,
    expected_token,
    form_token,
    header_map,
    must_check,
    origin_refusal,
    refusal_body,
    refusal_status,
    single,
    token_refusal,
    token_source,
)
from sessionward.core.engine import ClientInfo

SITE = "https://app.example"
EVIL = "https://evil.example"
PARTNER = "https://partner.example"
TOKEN = "s3cr3t-token_value"


def headers(*pairs: tuple[str, str]) -> HeaderMap:
    return header_map((name.encode(), value.encode()) for name, value in pairs)


# -- layer 1: where the request comes from ------------------------------------------------------

ORIGIN_CASES = [
    pytest.param((("sec-fetch-site", "cross-site"), ("origin", EVIL)), SITE, "cross_site", id="cross-site-form-post"),
    pytest.param(
        (("sec-fetch-site", "same-site"), ("origin", "https://blog.app.example")),
        SITE,
        "same_site",
        id="sibling-subdomain-post",
    ),
    pytest.param((("sec-fetch-site", "cross-site"),), SITE, "cross_site", id="cross-site-without-origin"),
    pytest.param((("sec-fetch-site", "CROSS-SITE "),), SITE, "cross_site", id="cross-site-in-odd-case"),
    pytest.param((("sec-fetch-site", "sideways"),), SITE, "fetch_metadata_invalid", id="unknown-fetch-site"),
    pytest.param((("sec-fetch-site", "same-origin"), ("origin", SITE)), SITE, None, id="same-origin-post"),
    pytest.param((("sec-fetch-site", "none"),), SITE, None, id="user-typed-the-address"),
    pytest.param((("sec-fetch-site", "cross-site"), ("origin", PARTNER)), SITE, None, id="trusted-front-end"),
    pytest.param((), SITE, None, id="non-browser-client-without-either-header"),
    pytest.param((("origin", SITE),), SITE, None, id="old-browser-same-origin"),
    pytest.param((("origin", "HTTPS://APP.EXAMPLE:443"),), SITE, None, id="old-browser-same-origin-default-port"),
    pytest.param((("origin", EVIL),), SITE, "origin_mismatch", id="old-browser-cross-site-post"),
    pytest.param((("origin", "http://app.example"),), SITE, "origin_mismatch", id="downgraded-scheme"),
    pytest.param((("origin", "null"),), SITE, "origin_mismatch", id="null-origin-from-sandboxed-frame"),
    pytest.param((("origin", SITE),), None, "origin_mismatch", id="own-origin-unknown"),
    pytest.param((("origin", SITE), ("origin", EVIL)), SITE, "origin_mismatch", id="two-origin-headers"),
    pytest.param((("origin", EVIL), ("origin", EVIL)), SITE, "origin_mismatch", id="origin-header-repeated"),
    pytest.param(
        (("sec-fetch-site", "same-origin"), ("sec-fetch-site", "same-origin"), ("origin", EVIL)),
        SITE,
        "origin_mismatch",
        id="repeated-fetch-site-is-not-believed",
    ),
]


@pytest.mark.parametrize(("sent", "own", "reason"), ORIGIN_CASES)
def test_origin_rule(sent: tuple[tuple[str, str], ...], own: str | None, reason: str | None) -> None:
    trusted = CsrfPolicy(trusted_origins=frozenset({PARTNER})).trusted_origins
    assert origin_refusal(headers(*sent), own_origin=own, trusted_origins=trusted) == reason


@pytest.mark.parametrize(
    ("method", "path", "websocket", "checked"),
    [
        ("POST", "/transfer", False, True),
        ("DELETE", "/account", False, True),
        ("patch", "/account", False, True),
        ("GET", "/transfer", False, False),
        ("HEAD", "/", False, False),
        ("OPTIONS", "/", False, False),
        ("TRACE", "/", False, False),
        ("GET", "/ws", True, True),  # cross-site WebSocket hijacking: the handshake is a GET
        ("POST", "/hooks/stripe", False, False),
        ("POST", "/hooks", False, True),  # the prefix exempts what is under it, not the path itself
        ("POST", "/webhook", False, False),
        ("POST", "/webhook/x", False, True),
    ],
)
def test_which_requests_are_checked(method: str, path: str, websocket: bool, checked: bool) -> None:
    policy = CsrfPolicy(exempt_paths=("/hooks/", "/webhook"))
    assert must_check(policy, method, path, websocket=websocket) is checked


# -- layer 2: the synchronizer token --------------------------------------------------------------

BOUNDARY = "----formboundary7MA4YWxk"


def multipart(*fields: tuple[str, str]) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n' for name, value in fields
    ]
    return ("".join(parts) + f"--{BOUNDARY}--\r\n").encode()


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
URLENCODED = "application/x-www-form-urlencoded"

FORM_CASES = [
    pytest.param(URLENCODED, f"amount=10&csrf_token={TOKEN}".encode(), TOKEN.encode(), id="urlencoded"),
    pytest.param(URLENCODED, b"amount=10", None, id="urlencoded-without-token"),
    pytest.param(URLENCODED, b"xcsrf_token=abc&amount=1", None, id="field-name-only-as-substring"),
    pytest.param(URLENCODED, b"csrf_token=first&csrf_token=second", b"first", id="repeated-field-first-wins"),
    pytest.param(URLENCODED + "; charset=utf-8", f"csrf_token={TOKEN}".encode(), TOKEN.encode(), id="with-charset"),
    pytest.param(MULTIPART, multipart(("amount", "10"), ("csrf_token", TOKEN)), TOKEN.encode(), id="multipart"),
    pytest.param(MULTIPART, multipart(("amount", "10")), None, id="multipart-without-token"),
    pytest.param(
        MULTIPART, multipart(("note", "csrf_token"), ("amount", "1")), None, id="multipart-token-name-only-in-a-value"
    ),
    pytest.param(
        f'multipart/form-data; boundary="{BOUNDARY}"',
        multipart(("csrf_token", TOKEN)),
        TOKEN.encode(),
        id="multipart-quoted-boundary",
    ),
    pytest.param("multipart/form-data", multipart(("csrf_token", TOKEN)), None, id="multipart-without-boundary"),
    pytest.param("text/plain", f"amount=10\r\ncsrf_token={TOKEN}\r\n".encode(), TOKEN.encode(), id="text-plain"),
    pytest.param("text/plain", b"amount=10", None, id="text-plain-without-token"),
]


@pytest.mark.parametrize(("content_type", "body", "token"), FORM_CASES)
def test_token_is_found_in_form_bodies(content_type: str, body: bytes, token: bytes | None) -> None:
    assert form_token(body, content_type) == token


@pytest.mark.parametrize(
    ("sent", "source"),
    [
        pytest.param((("content-type", URLENCODED),), TokenSource(None, URLENCODED), id="form-post-reads-the-body"),
        pytest.param((("content-type", MULTIPART),), TokenSource(None, MULTIPART), id="multipart-reads-the-body"),
        pytest.param((("content-type", "TEXT/PLAIN"),), TokenSource(None, "TEXT/PLAIN"), id="text-plain-any-case"),
        pytest.param((("content-type", "application/json"),), None, id="json-left-to-the-origin-check"),
        pytest.param((), None, id="no-body"),
        pytest.param(
            (("content-type", "application/json"), ("x-csrf-token", TOKEN)),
            TokenSource(TOKEN.encode(), "application/json"),
            id="header-token-is-checked-whatever-the-body",
        ),
        pytest.param(
            (("content-type", URLENCODED), ("x-csrf-token", "a"), ("x-csrf-token", "b")),
            TokenSource(None, URLENCODED),
            id="repeated-token-header-is-not-believed",
        ),
    ],
)
def test_where_the_token_is_looked_for(sent: tuple[tuple[str, str], ...], source: TokenSource | None) -> None:
    assert token_source(headers(*sent)) == source


def test_a_header_token_spares_reading_the_body() -> None:
    source = token_source(headers(("content-type", URLENCODED), ("x-csrf-token", TOKEN)))
    assert source is not None
    assert not source.needs_body
    bare = token_source(headers(("content-type", URLENCODED)))
    assert bare is not None
    assert bare.needs_body
    assert bare.from_body(f"csrf_token={TOKEN}".encode()) == TOKEN.encode()


@pytest.mark.parametrize(
    ("sent", "expected", "reason"),
    [
        pytest.param(TOKEN.encode(), TOKEN, None, id="matching-token"),
        pytest.param(None, TOKEN, "token_missing", id="forged-form-without-token"),
        pytest.param(None, None, "token_missing", id="missing-token-and-no-session"),
        pytest.param(b"guessed", TOKEN, "token_mismatch", id="guessed-token"),
        pytest.param(TOKEN.encode(), None, "token_mismatch", id="token-without-a-session-token"),
        pytest.param(TOKEN.encode()[:-1], TOKEN, "token_mismatch", id="token-prefix"),
        pytest.param(b"", "", "token_mismatch", id="empty-token-cannot-match-an-empty-one"),
        pytest.param(b"x" * 257, "x" * 257, "token_mismatch", id="oversized-token-is-not-compared"),
    ],
)
def test_token_rule(sent: bytes | None, expected: str | None, reason: str | None) -> None:
    assert token_refusal(sent, expected) == reason


@pytest.mark.parametrize(
    ("declared", "too_large"),
    [
        (None, False),
        ("1024", False),
        ("2048", True),
        ("-1", True),
        ("12abc", True),
        (" 1000 ", False),
    ],
)
def test_declared_body_length_over_the_limit_is_refused_unread(declared: str | None, too_large: bool) -> None:
    sent = headers(("content-length", declared)) if declared is not None else headers()
    assert declared_too_large(sent, 1024) is too_large


def test_refusals_are_403_but_an_unreadable_form_is_413() -> None:
    assert refusal_status("cross_site") == 403
    assert refusal_status("token_missing") == 403
    assert refusal_status("form_too_large") == 413
    assert refusal_body("origin_mismatch") == {"error": "csrf_refused", "reason": "origin_mismatch"}


def test_a_repeated_header_is_never_believed() -> None:
    sent = headers(("origin", SITE), ("Origin", EVIL), ("host", "app.example"))
    assert single(sent, b"origin") is None
    assert single(sent, b"host") == b"app.example"
    assert single(sent, b"referer") is None


# -- the policy ------------------------------------------------------------------------------------


def test_policy_keeps_trusted_origins_normalized() -> None:
    policy = CsrfPolicy(trusted_origins=frozenset({"HTTPS://Partner.Example:443"}), exempt_paths=("/hooks/",))
    assert policy.trusted_origins == frozenset({PARTNER})
    assert policy.exempts("/hooks/stripe")
    assert not policy.exempts("/transfer")


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"trusted_origins": frozenset({"partner.example"})}, "csrf.trusted_origins"),
        ({"trusted_origins": frozenset({"null"})}, "csrf.trusted_origins"),
        ({"trusted_origins": frozenset({"https://partner.example/path"})}, "csrf.trusted_origins"),
        ({"trusted_origins": "https://partner.example"}, "csrf.trusted_origins"),
        ({"exempt_paths": ("hooks/",)}, "csrf.exempt_paths"),
        ({"exempt_paths": "/hooks/"}, "csrf.exempt_paths"),
        ({"max_body_bytes": 1023}, "csrf.max_body_bytes"),
        ({"max_body_bytes": 4096.0}, "csrf.max_body_bytes"),
    ],
)
def test_policy_refuses_malformed_settings_naming_them(settings: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        CsrfPolicy(**settings)  # type: ignore[arg-type]


# -- the token of a session, async and sync alike -----------------------------------------------------


async def test_token_is_made_once_and_kept_in_the_async_session(clock: ManualClock) -> None:
    from sessionward import MemoryStore, SessionManager
    from sessionward.io.exchange import Exchange

    manager = SessionManager(MemoryStore(), SessionPolicy(), clock=clock)
    exchange = Exchange(manager, path="/", client=ClientInfo(ip="203.0.113.7", user_agent="ua"))
    await exchange.open([])
    await exchange.login("alice")

    token = csrf_token(exchange.session)

    assert csrf_token(exchange.session) == token
    assert expected_token(exchange) == token
    assert token_refusal(token.encode(), expected_token(exchange)) is None


def test_a_visitor_gets_a_pre_session_token_from_the_sync_session(clock: ManualClock) -> None:
    from sessionward.sync import Exchange, MemoryStore, SessionManager

    manager = SessionManager(MemoryStore(), SessionPolicy(), clock=clock)
    exchange = Exchange(manager, path="/login", client=ClientInfo(ip="203.0.113.7", user_agent="ua"))
    exchange.open([])

    token = csrf_token(exchange.session)

    assert exchange.record is None  # a visitor's form costs the store nothing
    assert exchange.csrf_pending == token
    assert csrf_token(exchange.session) == token
