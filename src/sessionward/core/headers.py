"""Security headers and caching of session responses: which headers a response gets, purely.

The ASGI and WSGI middlewares (:mod:`sessionward.asgi.headers`, :mod:`sessionward.wsgi`)
hand these functions a response's headers as ``(name, value)`` byte pairs and send what
comes back. The rules:

* The policy's headers, helmet-style: HSTS, a Content Security Policy,
  ``X-Content-Type-Options: nosniff``, ``Referrer-Policy``, ``X-Frame-Options`` and
  ``Cross-Origin-Opener-Policy``. A header the application already set is left alone,
  so a page can carry its own CSP (:func:`secure_headers`).
* A response that carries or reads a session (a ``Set-Cookie``, a ``Vary: Cookie``, or a
  session the request sent, read or changed: :func:`carries_session`) gets
  ``Cache-Control: no-store`` in place of whatever the application said, because a
  cached copy of it would serve one user's page (or cookie) to the next.
* Even without security headers, a response that sets the session cookie and said
  nothing about caching gets ``Cache-Control: no-store`` (:func:`with_session_headers`).

Why not the ``secure`` package (a maintained, dependency-free header library): the
header set itself is six constant strings, while what needs care here is *when*
``no-store`` applies (it depends on the session), which ``secure`` cannot know; and its
defaults differ from what this project needs (``X-Frame-Options: SAMEORIGIN``, and a
``Referrer-Policy`` of ``no-referrer`` which makes browsers send ``Origin: null`` on
same-origin form posts, defeating the ``Origin`` fallback of :mod:`sessionward.core.csrf`).

HSTS is sent on every response: browsers ignore it over plain HTTP (RFC 6797 §8.1), and
sending it regardless means it is there when TLS is terminated by a proxy in front.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from sessionward.core.errors import ConfigError
from sessionward.core.outcomes import CookieAction

__all__ = [
    "DEFAULT_CSP",
    "HSTS_PRELOAD_MIN_AGE_S",
    "REFERRER_POLICIES",
    "HeaderPairs",
    "SecurityHeadersPolicy",
    "SessionState",
    "carries_session",
    "secure_headers",
    "with_session_headers",
]

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

HeaderPairs = list[tuple[bytes, bytes]]
"""A response's headers as ``(name, value)`` byte pairs, as ASGI has them."""

_NO_STORE = (b"cache-control", b"no-store")


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
    _added: tuple[tuple[bytes, bytes], ...] = field(init=False, repr=False, compare=False)

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
        # Built once: the list is added to every response.
        object.__setattr__(self, "_added", tuple(self._build()))

    def header_list(self) -> HeaderPairs:
        """Return the headers added to every response, as ``(name, value)`` byte pairs."""
        return list(self._added)

    def _build(self) -> HeaderPairs:
        headers: HeaderPairs = []
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


class _CookieSent(Protocol):
    @property
    def sent(self) -> bool: ...


class _Accessed(Protocol):
    @property
    def accessed(self) -> bool: ...


class SessionState(Protocol):
    """What :func:`carries_session` reads of a request's exchange (the async or the sync one)."""

    @property
    def cookie(self) -> _CookieSent:
        """The session cookie as the request sent it (``sent``: any was)."""
        ...

    @property
    def session(self) -> _Accessed:
        """The request's session (``accessed``: the application read or wrote it)."""
        ...

    @property
    def cookie_action(self) -> CookieAction:
        """What the response does with the session cookie."""
        ...


def carries_session(headers: Iterable[tuple[bytes, bytes]], exchange: SessionState | None) -> bool:
    """Tell whether a response carries or reads a session, so that no cache may keep it.

    Args:
        headers: The response's headers (a ``Set-Cookie`` or ``Vary: Cookie`` says so).
        exchange: The request's exchange, if the session layer opened one: a session
            cookie sent, a session read or written, or a cookie set or cleared says so,
            even before the session layer added its own headers.
    """
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"set-cookie":
            return True
        if lowered == b"vary" and b"cookie" in value.lower():
            return True
    if exchange is None:
        return False
    return exchange.cookie.sent or exchange.session.accessed or exchange.cookie_action is not CookieAction.KEEP


def secure_headers(policy: SecurityHeadersPolicy, headers: HeaderPairs, *, carries_session: bool) -> HeaderPairs:
    """Return ``headers`` with the policy's security headers added.

    A header already set is left alone; a response that carries a session
    (:func:`carries_session`) gets ``Cache-Control: no-store`` in place of what it said,
    when the policy asks for it.
    """
    present = {name.lower() for name, _ in headers}
    headers = [*headers, *((name, value) for name, value in policy._added if name not in present)]
    if policy.no_store_session_responses and carries_session:
        headers = [(name, value) for name, value in headers if name.lower() != b"cache-control"]
        headers.append(_NO_STORE)
    return headers


def with_session_headers(
    headers: Iterable[tuple[bytes, bytes]], added: HeaderPairs, *, sets_cookie: bool
) -> HeaderPairs:
    """Return a response's ``headers`` with the session's own (``Vary``, ``Set-Cookie``) ``added``.

    A response that sets or clears the session cookie and said nothing about caching
    gets ``Cache-Control: no-store``: a response carrying a session ID must never sit in
    a shared cache.
    """
    combined = [*headers, *added]
    if sets_cookie and not any(name.lower() == b"cache-control" for name, _ in combined):
        combined.append(_NO_STORE)
    return combined
