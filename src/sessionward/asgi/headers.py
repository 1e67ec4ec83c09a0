"""Security headers (F14): a small pure ASGI middleware and its frozen policy.

Adds, helmet-style, to every HTTP response: HSTS, a Content Security Policy,
``X-Content-Type-Options: nosniff``, ``Referrer-Policy``, ``X-Frame-Options`` and
``Cross-Origin-Opener-Policy``; a header the application already set is left alone, so a
page can carry its own CSP. Responses that carry or read a session — a ``Set-Cookie``,
a ``Vary: Cookie``, or a session the request opened — get ``Cache-Control: no-store``,
replacing whatever the application said, because a cached copy of such a response would
serve one user's page (or cookie) to the next.

Why not the ``secure`` package (a maintained, dependency-free header library): the
header set itself is six constant strings, while what needs care here is *when*
``no-store`` applies (it depends on the session), which ``secure`` cannot know; and its
defaults differ from what this project needs (``X-Frame-Options: SAMEORIGIN``, and a
``Referrer-Policy`` of ``no-referrer`` which makes browsers send ``Origin: null`` on
same-origin form posts, defeating the Origin fallback of :mod:`sessionward.asgi.csrf`).
A dependency would not remove any of the code below.

HSTS is sent on every response: browsers ignore it over plain HTTP (RFC 6797 §8.1), and
sending it regardless means it is there when TLS is terminated by a proxy in front.
"""

from __future__ import annotations

from dataclasses import dataclass

from sessionward.asgi.types import ASGIApp, Message, Receive, Scope, Send
from sessionward.core.errors import ConfigError
from sessionward.io.exchange import CookieAction, Exchange

DEFAULT_CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
"""No inline scripts or styles, no framing, forms post only to this origin."""

HSTS_PRELOAD_MIN_AGE_S = 31_536_000
"""The shortest ``max-age`` the browsers' preload lists accept (one year)."""

REFERRER_POLICIES = frozenset(
    {
        "no-referrer",
        "no-referrer-when-downgrade",
        "origin",
        "origin-when-cross-origin",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
        "unsafe-url",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityHeadersPolicy:
    """Which security headers to add, and their values; validated on construction.

    Attributes:
        hsts_max_age_s: ``Strict-Transport-Security`` max-age; 0 leaves the header out.
        hsts_include_subdomains: Add ``includeSubDomains``.
        hsts_preload: Add ``preload`` (needs ``includeSubDomains`` and a year's max-age).
        content_security_policy: The CSP; ``None`` leaves it out.
        referrer_policy: ``Referrer-Policy``; the default ``same-origin`` leaks no URL to
            other sites and keeps the ``Origin`` header on same-origin posts.
        frame_options: ``DENY``, ``SAMEORIGIN`` or ``None`` (frame protection for browsers
            that predate CSP ``frame-ancestors``).
        content_type_options: Send ``X-Content-Type-Options: nosniff``.
        cross_origin_opener_policy: ``Cross-Origin-Opener-Policy``; ``None`` leaves it out.
        no_store_session_responses: Send ``Cache-Control: no-store`` on responses that
            carry or read a session.
    """

    hsts_max_age_s: int = HSTS_PRELOAD_MIN_AGE_S
    hsts_include_subdomains: bool = True
    hsts_preload: bool = False
    content_security_policy: str | None = DEFAULT_CSP
    referrer_policy: str | None = "same-origin"
    frame_options: str | None = "DENY"
    content_type_options: bool = True
    cross_origin_opener_policy: str | None = "same-origin"
    no_store_session_responses: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.hsts_max_age_s, bool) or not isinstance(self.hsts_max_age_s, int):
            raise ConfigError("headers.hsts_max_age_s", "must be a whole number of seconds")
        if self.hsts_max_age_s < 0:
            raise ConfigError("headers.hsts_max_age_s", "must be 0 (no HSTS) or a positive number of seconds")
        if self.hsts_preload and (not self.hsts_include_subdomains or self.hsts_max_age_s < HSTS_PRELOAD_MIN_AGE_S):
            raise ConfigError(
                "headers.hsts_preload",
                f"preload needs hsts_include_subdomains=True and hsts_max_age_s >= {HSTS_PRELOAD_MIN_AGE_S}",
            )
        if self.referrer_policy is not None and self.referrer_policy not in REFERRER_POLICIES:
            raise ConfigError(
                "headers.referrer_policy",
                f"{self.referrer_policy!r} is not one of {', '.join(sorted(REFERRER_POLICIES))}",
            )
        if self.frame_options not in (None, "DENY", "SAMEORIGIN"):
            raise ConfigError("headers.frame_options", f"{self.frame_options!r} is not DENY, SAMEORIGIN or None")
        for setting, value in (
            ("headers.content_security_policy", self.content_security_policy),
            ("headers.cross_origin_opener_policy", self.cross_origin_opener_policy),
        ):
            if value is not None and (not value.strip() or not value.isascii() or not value.isprintable()):
                # A CR or LF here would let the value end the header and start another.
                raise ConfigError(setting, "must be non-empty printable ASCII (no CR, LF or other control character)")

    def header_list(self) -> list[tuple[bytes, bytes]]:
        """Return the headers added to every response, as ASGI ``(name, value)`` pairs."""
        headers: list[tuple[bytes, bytes]] = []
        if self.hsts_max_age_s > 0:
            value = f"max-age={self.hsts_max_age_s}"
            if self.hsts_include_subdomains:
                value += "; includeSubDomains"
            if self.hsts_preload:
                value += "; preload"
            headers.append((b"strict-transport-security", value.encode()))
        if self.content_security_policy is not None:
            headers.append((b"content-security-policy", self.content_security_policy.encode()))
        if self.content_type_options:
            headers.append((b"x-content-type-options", b"nosniff"))
        if self.referrer_policy is not None:
            headers.append((b"referrer-policy", self.referrer_policy.encode()))
        if self.frame_options is not None:
            headers.append((b"x-frame-options", self.frame_options.encode()))
        if self.cross_origin_opener_policy is not None:
            headers.append((b"cross-origin-opener-policy", self.cross_origin_opener_policy.encode()))
        return headers


class SecurityHeadersMiddleware:
    """Adds the policy's security headers to every HTTP response.

    Place it outermost, so that it also sees the session middleware's own answers
    (401, 503, redirects)::

        app = SecurityHeadersMiddleware(SessionMiddleware(CsrfMiddleware(app, manager), manager))

    Args:
        app: The wrapped application.
        policy: Which headers to add; the defaults when ``None``.
    """

    def __init__(self, app: ASGIApp, policy: SecurityHeadersPolicy | None = None) -> None:
        self.app = app
        self.policy = policy or SecurityHeadersPolicy()
        self._headers = self.policy.header_list()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self._add(scope, list(message.get("headers", ())))
            await send(message)

        await self.app(scope, receive, send_wrapper)

    def _add(self, scope: Scope, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        carries = self.policy.no_store_session_responses and _carries_session(scope, headers)
        return add_security_headers(self.policy, self._headers, headers, carries_session=carries)


def add_security_headers(
    policy: SecurityHeadersPolicy,
    added: list[tuple[bytes, bytes]],
    headers: list[tuple[bytes, bytes]],
    *,
    carries_session: bool,
) -> list[tuple[bytes, bytes]]:
    """Add ``added`` (``policy.header_list()``) to a response's ``headers``; shared with WSGI.

    A header already set is left alone; a response that carries a session gets
    ``Cache-Control: no-store`` in place of what it said.
    """
    present = {name.lower() for name, _ in headers}
    headers.extend((name, value) for name, value in added if name not in present)
    if policy.no_store_session_responses and carries_session:
        headers = [(name, value) for name, value in headers if name.lower() != b"cache-control"]
        headers.append((b"cache-control", b"no-store"))
    return headers


def _carries_session(scope: Scope, headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"set-cookie":
            return True
        if lowered == b"vary" and b"cookie" in value.lower():
            return True
    # Seen from inside the session middleware, its own headers are not there yet.
    exchange = scope.get("sessionward")
    if not isinstance(exchange, Exchange):
        return False
    return exchange.cookie.sent or exchange.session.accessed or exchange.cookie_action is not CookieAction.KEEP
