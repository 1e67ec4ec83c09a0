"""The session policy: one frozen, validated configuration object.

Every setting is checked when the object is built, so a bad or insecure configuration
stops start-up with a :class:`~sessionward.core.errors.ConfigError` naming the setting, instead
of surfacing as odd behaviour per request. :meth:`SessionPolicy.from_env` reads the
``SESSIONWARD_*`` environment variables and names the variable at fault.

Times are seconds (``*_s``) as floats or ints; ``0`` disables renewal and elevation
timeouts where stated.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Literal, Self

from sessionward.core.errors import ConfigError
from sessionward.core.ids import DEFAULT_ID_BITS, MAX_ID_BITS, MIN_ID_BITS
from sessionward.core.records import CHAIN_LIMIT

SameSite = Literal["lax", "strict", "none"]

# Characters a cookie name may hold (RFC 6265 token) and a path/domain may not.
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_FORBIDDEN_ATTR_CHARS = frozenset(';,\r\n\x00 "\\')


class Fixation(StrEnum):
    """What happens to the session ID at login, as Spring Security names it."""

    CHANGE_ID = "change_id"
    """New ID; same data and creation time (default)."""
    MIGRATE = "migrate"
    """New session; the data is copied into it."""
    NEW_SESSION = "new_session"
    """New session; the data is dropped."""
    NONE = "none"
    """The ID is kept: open to fixation, warned about at start-up."""


class Creation(StrEnum):
    """When a session is created, with Spring Security's meanings."""

    ALWAYS = "always"
    """Every request without a session gets one."""
    IF_REQUIRED = "if_required"
    """A session is created when data is first written or a user logs in (default)."""
    NEVER = "never"
    """Never created implicitly; an existing one is used, and login creates one."""
    STATELESS = "stateless"
    """Sessions are neither read nor written."""


class BudgetAction(StrEnum):
    """What happens to a request past its client's budget of new sessions."""

    SKIP = "skip"
    """The request proceeds without a new session; what it wrote to one is not kept (default)."""
    REFUSE = "refuse"
    """The request is answered 429 with ``Retry-After`` instead (only when it wrote to a session)."""


class BindingMismatch(StrEnum):
    """What a binding mismatch does."""

    END = "end"
    REPORT = "report"


@dataclass(frozen=True, slots=True, kw_only=True)
class CookiePolicy:
    """Attributes of the session cookie.

    Attributes:
        name: Cookie name; ``None`` picks ``__Host-sid`` when secure, else ``sid``.
        secure: Send only over HTTPS (browsers also accept it on http://localhost).
        http_only: Hide the cookie from JavaScript.
        same_site: ``lax``, ``strict`` or ``none`` (``none`` requires ``secure``).
        path: Cookie path; ``__Host-`` names require ``/``.
        domain: Cookie domain; ``None`` (default) restricts it to the origin host.
        max_age_s: ``None`` for a browser-session cookie; never above the absolute timeout.
    """

    name: str | None = None
    secure: bool = True
    http_only: bool = True
    same_site: SameSite = "lax"
    path: str = "/"
    domain: str | None = None
    max_age_s: int | None = None

    def __post_init__(self) -> None:
        if self.same_site not in ("lax", "strict", "none"):
            raise ConfigError("cookie.same_site", f"{self.same_site!r} is not one of lax, strict, none")
        if self.same_site == "none" and not self.secure:
            raise ConfigError("cookie.same_site", "SameSite=None requires secure=True (browsers reject it otherwise)")
        name = self.cookie_name
        if not name or any(c not in _TOKEN_CHARS for c in name):
            raise ConfigError("cookie.name", f"{name!r} is not a valid cookie name (RFC 6265 token characters only)")
        if name.startswith("__Host-"):
            if not self.secure:
                raise ConfigError("cookie.name", "a __Host- cookie requires secure=True")
            if self.domain is not None:
                raise ConfigError("cookie.domain", "a __Host- cookie must not have a Domain")
            if self.path != "/":
                raise ConfigError("cookie.path", "a __Host- cookie requires path='/'")
        if name.startswith("__Secure-") and not self.secure:
            raise ConfigError("cookie.name", "a __Secure- cookie requires secure=True")
        if not self.path.startswith("/") or any(c in _FORBIDDEN_ATTR_CHARS for c in self.path):
            raise ConfigError(
                "cookie.path",
                f"{self.path!r} must start with '/' and hold no ';', ',', quote, space or control character",
            )
        if self.domain is not None and (not self.domain or any(c in _FORBIDDEN_ATTR_CHARS for c in self.domain)):
            raise ConfigError("cookie.domain", f"{self.domain!r} is not a valid cookie domain")
        if self.max_age_s is not None and self.max_age_s <= 0:
            raise ConfigError("cookie.max_age_s", "must be a positive number of seconds or None")

    @property
    def cookie_name(self) -> str:
        """The effective cookie name."""
        if self.name is not None:
            return self.name
        return "__Host-sid" if self.secure else "sid"

    def for_csrf(self) -> CookiePolicy:
        """The attributes of the pre-session CSRF cookie: a visitor's form token, before any session.

        A visitor's form (the login form) is protected by a double-submit token held in
        this cookie rather than in a session, so anonymous pages cost the store nothing.
        It takes the session cookie's prefix (``__Host-``: no sibling subdomain can plant
        it when secure), path and domain, and ``SameSite=Strict``.
        """
        name = self.cookie_name
        prefix = next((p for p in ("__Host-", "__Secure-") if name.startswith(p)), "")
        return replace(self, name=f"{prefix}{name.removeprefix(prefix)}-csrf", same_site="strict", max_age_s=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeoutPolicy:
    """Idle, absolute and renewal timeouts.

    Attributes:
        idle_timeout_s: End a session this long after its last request.
        absolute_timeout_s: End a session this long after it was created, however active.
        renewal_interval_s: Rotate the ID this often while the session is in use; 0 disables.
        rotation_grace_s: How long a renewed-away ID still works, for requests in flight.
        touch_interval_s: Write the idle clock at most this often; ``None`` picks
            the smaller of 60 s and a tenth of the idle timeout. It is capped at a tenth
            of the idle timeout (of each kind) so that an active user is never timed out.
        anonymous_idle_timeout_s: The idle timeout of a session nobody signed in to (a
            visitor's cart, say); ``None`` picks the smaller of 600 s and
            ``idle_timeout_s``. Such a session has nothing worth keeping long, and a
            short life bounds what anonymous traffic can make a store hold.
    """

    idle_timeout_s: float = 1800
    absolute_timeout_s: float = 8 * 3600
    renewal_interval_s: float = 3600
    rotation_grace_s: float = 5
    touch_interval_s: float | None = None
    anonymous_idle_timeout_s: float | None = None

    def __post_init__(self) -> None:
        if not self.idle_timeout_s > 0:
            raise ConfigError("timeouts.idle_timeout_s", "must be a positive number of seconds")
        if not self.absolute_timeout_s > 0:
            raise ConfigError("timeouts.absolute_timeout_s", "must be a positive number of seconds")
        if self.idle_timeout_s > self.absolute_timeout_s:
            raise ConfigError("timeouts.idle_timeout_s", "must not exceed absolute_timeout_s")
        if self.renewal_interval_s < 0:
            raise ConfigError("timeouts.renewal_interval_s", "must be 0 (off) or a positive number of seconds")
        if not 0 <= self.rotation_grace_s <= 60:
            raise ConfigError("timeouts.rotation_grace_s", "must be between 0 and 60 seconds")
        renewal = self.renewal_interval_s
        if renewal > 0 and self.rotation_grace_s / renewal + 1 > CHAIN_LIMIT:
            # Every ID renewed away within the grace period must still lead to the session;
            # past CHAIN_LIMIT links a request is refused (fail closed), so refuse the setting.
            raise ConfigError(
                "timeouts.rotation_grace_s",
                f"must not exceed {CHAIN_LIMIT - 1} renewal intervals "
                f"({renewal:g} s each: at most {renewal * (CHAIN_LIMIT - 1):g} s)",
            )
        if self.touch_interval_s is not None and self.touch_interval_s < 0:
            raise ConfigError("timeouts.touch_interval_s", "must be 0 or a positive number of seconds")
        anonymous = self.anonymous_idle_timeout_s
        if anonymous is not None and not 0 < anonymous <= self.idle_timeout_s:
            raise ConfigError(
                "timeouts.anonymous_idle_timeout_s", "must be a positive number of seconds, at most idle_timeout_s"
            )

    @property
    def effective_anonymous_idle_timeout_s(self) -> float:
        """The idle timeout in force for sessions nobody signed in to."""
        if self.anonymous_idle_timeout_s is None:
            return min(600.0, self.idle_timeout_s)
        return self.anonymous_idle_timeout_s

    @property
    def effective_touch_interval_s(self) -> float:
        """The touch interval in force, capped at a tenth of the idle timeout."""
        return self._touch_interval_within(self.idle_timeout_s)

    @property
    def effective_anonymous_touch_interval_s(self) -> float:
        """The touch interval of sessions nobody signed in to, capped at a tenth of their idle timeout."""
        return self._touch_interval_within(self.effective_anonymous_idle_timeout_s)

    def _touch_interval_within(self, idle_timeout_s: float) -> float:
        cap = idle_timeout_s / 10
        if self.touch_interval_s is None:
            return min(60.0, cap)
        return min(self.touch_interval_s, cap)

    @classmethod
    def preset(cls, name: str) -> TimeoutPolicy:
        """Return the timeouts of a preset from the recommended table.

        ``banking`` (5 min idle, 30 min absolute), ``medical`` (10 min, 2 h),
        ``web`` (30 min, 8 h) and ``admin`` (15 min, 2 h); the upper end of each of the
        seed's ranges, renewal every quarter of the absolute timeout at most hourly.
        """
        try:
            return PRESETS[name]
        except KeyError:
            raise ConfigError("preset", f"{name!r} is not one of {', '.join(PRESETS)}") from None


PRESETS: Mapping[str, TimeoutPolicy] = {
    "banking": TimeoutPolicy(idle_timeout_s=300, absolute_timeout_s=1800, renewal_interval_s=450),
    "medical": TimeoutPolicy(idle_timeout_s=600, absolute_timeout_s=7200, renewal_interval_s=1800),
    "web": TimeoutPolicy(idle_timeout_s=1800, absolute_timeout_s=28800, renewal_interval_s=3600),
    "admin": TimeoutPolicy(idle_timeout_s=900, absolute_timeout_s=7200, renewal_interval_s=1800),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginPolicy:
    """What login, elevation and multiple-login control do.

    Attributes:
        fixation: The fixation-protection strategy applied at login.
        max_sessions: Most concurrent sessions per user; 0 means unlimited.
        prevent_login: When over ``max_sessions``: refuse the new login ("first wins")
            if true, else end the oldest sessions ("last wins").
        reauth_window_s: How long a login or re-entered password counts as recent.
        elevation_timeout_s: How long an elevation lasts before it lapses by itself.
    """

    fixation: Fixation = Fixation.CHANGE_ID
    max_sessions: int = 0
    prevent_login: bool = False
    reauth_window_s: float = 900
    elevation_timeout_s: float = 600

    def __post_init__(self) -> None:
        if self.fixation not in Fixation.__members__.values():
            raise ConfigError("login.fixation", f"{self.fixation!r} is not one of {_choices(Fixation)}")
        if self.max_sessions < 0:
            raise ConfigError("login.max_sessions", "must be 0 (unlimited) or a positive count")
        if self.reauth_window_s <= 0:
            raise ConfigError("login.reauth_window_s", "must be a positive number of seconds")
        if self.elevation_timeout_s <= 0:
            raise ConfigError("login.elevation_timeout_s", "must be a positive number of seconds")


CREATION_BUDGET_WINDOW_S = 60.0
"""The window of :class:`CreationBudget`: a fixed minute from a client's first new session."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CreationBudget:
    """How many sessions nobody signed in to one client may create per minute (session flooding).

    Every new anonymous session is a record the store keeps for the anonymous idle timeout;
    without a limit, one client can make the store grow as fast as it can send requests.
    The budget is counted per client network in the shared store, atomically across
    servers, and only when a session is actually created (never for a request that needs
    none). A login never consults it: a budget an attacker can spend for a whole NAT or
    IPv6 /64 must not lock the users behind it out.

    A client is its IP as resolved through ``SessionPolicy.trusted_proxies``; behind a
    proxy that is not trusted, every client shares the proxy's budget. A request whose
    client IP is unknown (a UNIX socket without a trusted proxy) is not budgeted.

    Attributes:
        per_minute: New anonymous sessions a client may create per minute; 0 turns the
            budget off. The default, 120, is far above what a household or an office
            behind one address makes (a visitor makes one session and keeps it), and
            bounds what one client can make the store hold at 120 sessions a minute
            times the anonymous idle timeout (1,200 sessions, about 1 MB, with the
            default 10 minutes).
        action: Past the budget, ``skip`` (default): the request proceeds without a new
            session, so a public page never fails; or ``refuse``: a request that wrote to
            a session is answered 429 with ``Retry-After`` (the application has already
            run; only its session write is refused).
        ipv4_prefix: IPv4 clients are counted by this network (32: one address).
        ipv6_prefix: IPv6 clients are counted by this network (64: a subscriber usually
            gets a whole /64, and rotating addresses within it must not multiply the budget).
    """

    per_minute: int = 120
    action: BudgetAction = BudgetAction.SKIP
    ipv4_prefix: int = 32
    ipv6_prefix: int = 64

    def __post_init__(self) -> None:
        if type(self.per_minute) is not int or not 0 <= self.per_minute <= 1_000_000:
            raise ConfigError("creation_budget.per_minute", "must be a whole number from 0 (off) to 1000000")
        if self.action not in BudgetAction.__members__.values():
            raise ConfigError("creation_budget.action", f"{self.action!r} is not one of {_choices(BudgetAction)}")
        if not 8 <= self.ipv4_prefix <= 32:
            raise ConfigError("creation_budget.ipv4_prefix", "must be between 8 and 32")
        if not 32 <= self.ipv6_prefix <= 128:
            raise ConfigError("creation_budget.ipv6_prefix", "must be between 32 and 128")

    @property
    def enabled(self) -> bool:
        """Tell whether new anonymous sessions are budgeted at all."""
        return self.per_minute > 0


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginThrottlePolicy:
    """How repeated failed sign-ins are slowed down: counted per account and per client.

    Every sign-in attempt is counted before its password is checked, in the shared store
    and atomically across servers (``sessionward.core.throttling`` explains how). Past a
    threshold, attempts are spaced by a delay that doubles with each further attempt up to
    ``max_delay_s``; an attempt inside the delay is refused (429 with ``Retry-After``)
    without its password being checked. There is never a permanent lockout: an attacker
    cannot keep a user out for longer than ``max_delay_s`` after their last attempt. A
    successful sign-in resets the account's count. The defaults follow OWASP's guidance
    (a handful of failures per account, an exponential delay, no lockout).

    Attributes:
        max_failures: Failed attempts per account and window before the delay starts; 0
            turns per-account throttling off. Unknown user names are counted the same
            way, so throttling does not tell which accounts exist.
        max_attempts_per_ip: Attempts per client network and window before the delay
            starts (an IPv6 client counts by its /64, through the trusted-proxy rules); 0
            turns it off. Successful ones count too: one valid account must not buy an
            attacker more guesses. It stops password spraying (many accounts, one
            client); keep it well above what a NAT or an office makes.
        window_s: How long the counts last, from an account's or network's first attempt.
        base_delay_s: The delay after the threshold is reached; each further attempt
            doubles it.
        max_delay_s: The longest delay, the most an attacker can keep a user out.
    """

    max_failures: int = 5
    max_attempts_per_ip: int = 100
    window_s: float = 900.0
    base_delay_s: float = 1.0
    max_delay_s: float = 900.0

    def __post_init__(self) -> None:
        for name in ("max_failures", "max_attempts_per_ip"):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value <= 1_000_000:
                raise ConfigError(f"login_throttle.{name}", "must be a whole number from 0 (off) to 1000000")
        for name, upper in (("window_s", 366 * 86400.0), ("base_delay_s", 86400.0), ("max_delay_s", 86400.0)):
            value = getattr(self, name)
            if not _is_seconds(value) or not 0 < value <= upper:
                raise ConfigError(
                    f"login_throttle.{name}", f"must be a positive number of seconds, at most {upper:.0f}"
                )
        if self.max_delay_s < self.base_delay_s:
            raise ConfigError("login_throttle.max_delay_s", "must not be shorter than login_throttle.base_delay_s")

    @property
    def enabled(self) -> bool:
        """Tell whether sign-in attempts are counted at all."""
        return bool(self.max_failures or self.max_attempts_per_ip)


def _is_seconds(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class InvalidSessionPolicy:
    """How a request with an unknown, expired or ended session is answered.

    Attributes:
        redirect_url: Where HTML requests go (``?reason=…`` is appended); ``None``
            lets them through as anonymous.
        api_prefixes: Paths answered with 401 JSON instead of a redirect.
        excluded_paths: Paths (exact, or prefixes when ending in ``/``) where no check is
            made and the request proceeds as anonymous.
        tombstone_ttl_s: How long the reason a session ended is remembered.
    """

    redirect_url: str | None = None
    api_prefixes: tuple[str, ...] = ("/api/",)
    excluded_paths: tuple[str, ...] = ()
    tombstone_ttl_s: float = 24 * 3600

    def __post_init__(self) -> None:
        if self.redirect_url is not None and (
            not self.redirect_url.startswith("/")
            or self.redirect_url.startswith("//")
            or any(c in "\r\n\x00" for c in self.redirect_url)
        ):
            raise ConfigError("invalid_session.redirect_url", "must be a local path starting with a single '/'")
        for path in (*self.api_prefixes, *self.excluded_paths):
            if not path.startswith("/"):
                raise ConfigError("invalid_session.excluded_paths", f"{path!r} must start with '/'")
        if self.tombstone_ttl_s < 0:
            raise ConfigError("invalid_session.tombstone_ttl_s", "must be 0 or a positive number of seconds")

    def is_excluded(self, path: str) -> bool:
        """Tell whether ``path`` is exempt from invalid-session detection."""
        return bool(self.excluded_paths) and path_matches(path, self.excluded_paths)

    def is_api(self, path: str) -> bool:
        """Tell whether ``path`` gets JSON answers rather than redirects."""
        return any(path.startswith(prefix) for prefix in self.api_prefixes)


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingPolicy:
    """Binding of a session to its client.

    Attributes:
        user_agent: Bind to the User-Agent header.
        ip: Bind to the exact client IP.
        ip_prefix: Bind to the client's network (``ipv4_prefix`` / ``ipv6_prefix``).
        ipv4_prefix: The network an IPv4 client is bound to under ``ip_prefix`` (24: a /24).
        ipv6_prefix: The network an IPv6 client is bound to under ``ip_prefix`` (64: a /64).
        on_mismatch: ``end`` the session (401 / redirect) or only ``report`` an event.
    """

    user_agent: bool = False
    ip: bool = False
    ip_prefix: bool = False
    ipv4_prefix: int = 24
    ipv6_prefix: int = 64
    on_mismatch: BindingMismatch = BindingMismatch.END

    def __post_init__(self) -> None:
        if self.ip and self.ip_prefix:
            raise ConfigError("binding", "choose either ip or ip_prefix, not both")
        if not 8 <= self.ipv4_prefix <= 32:
            raise ConfigError("binding.ipv4_prefix", "must be between 8 and 32")
        if not 16 <= self.ipv6_prefix <= 128:
            raise ConfigError("binding.ipv6_prefix", "must be between 16 and 128")
        if self.on_mismatch not in BindingMismatch.__members__.values():
            raise ConfigError("binding.on_mismatch", f"{self.on_mismatch!r} is not one of {_choices(BindingMismatch)}")

    @property
    def enabled(self) -> bool:
        """Tell whether any binding is on."""
        return self.user_agent or self.ip or self.ip_prefix

    @classmethod
    def parse(cls, text: str, setting: str = "binding") -> BindingPolicy:
        """Parse ``none``, ``ua``, ``ip``, ``ip_prefix`` or a ``+``-joined combination."""
        parts = {p.strip() for p in text.lower().split("+") if p.strip()}
        known = {"none", "ua", "ip", "ip_prefix"}
        if not parts or not parts <= known or ("none" in parts and len(parts) > 1):
            raise ConfigError(
                setting, f"{text!r} is not none, ua, ip, ip_prefix or a '+' combination such as ua+ip_prefix"
            )
        return cls(user_agent="ua" in parts, ip="ip" in parts, ip_prefix="ip_prefix" in parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class FirewallPolicy:
    """Request-target rules applied before anything else, after Spring's StrictHttpFirewall.

    Attributes:
        enabled: Apply the rules at all.
        allowed_methods: Methods let through; others get 405.
        allow_semicolon: Let ``;`` through in paths (opens URL-rewritten session IDs).
        allow_encoded_slash: Let ``%2F`` through.
        allow_backslash: Let ``\\`` and ``%5C`` through.
        allow_encoded_percent: Let ``%25`` through.
        allow_encoded_period: Let ``%2E`` through.
        allow_double_slash: Let ``//`` through.
        max_path_length: Longest request target accepted, in bytes.
    """

    enabled: bool = True
    allowed_methods: frozenset[str] = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
    allow_semicolon: bool = False
    allow_encoded_slash: bool = False
    allow_backslash: bool = False
    allow_encoded_percent: bool = False
    allow_encoded_period: bool = False
    allow_double_slash: bool = False
    max_path_length: int = 8192

    def __post_init__(self) -> None:
        if "TRACE" in self.allowed_methods:
            raise ConfigError("firewall.allowed_methods", "TRACE is never allowed (cross-site tracing)")
        if self.max_path_length < 16:
            raise ConfigError("firewall.max_path_length", "must be at least 16 bytes")


CSRF_MAX_BODY_BYTES = 1024 * 1024
"""The largest form body read by default to find the CSRF token (1 MiB)."""

CSRF_MIN_BODY_BYTES = 1024
"""The smallest ``max_body_bytes`` accepted: below it, ordinary forms would be refused."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CsrfPolicy:
    """Cross-site request forgery protection, for every web edge (ASGI, WSGI, Flask).

    Attributes:
        trusted_origins: Other origins allowed to send unsafe requests, as
            ``scheme://host[:port]`` (e.g. a separate front-end's origin); kept
            normalized (lower-case, default port left out).
        exempt_paths: Paths never checked (exact, or prefixes when ending in ``/``), e.g.
            a webhook that authenticates by signature.
        max_body_bytes: The largest form body read to find the token; a larger form must
            send the ``X-CSRF-Token`` header (it is answered 413 otherwise).
    """

    trusted_origins: frozenset[str] = frozenset()
    exempt_paths: tuple[str, ...] = ()
    max_body_bytes: int = CSRF_MAX_BODY_BYTES

    def __post_init__(self) -> None:
        # Normalized once here, so that a request's Origin is compared by plain equality.
        if isinstance(self.trusted_origins, str | bytes):
            raise ConfigError("csrf.trusted_origins", "must be a collection of origins, not one string")
        object.__setattr__(self, "trusted_origins", frozenset(_trusted_origin(o) for o in self.trusted_origins))
        if isinstance(self.exempt_paths, str | bytes):
            raise ConfigError("csrf.exempt_paths", "must be a collection of paths, not one string")
        object.__setattr__(self, "exempt_paths", tuple(self.exempt_paths))
        for path in self.exempt_paths:
            if not isinstance(path, str) or not path.startswith("/"):
                raise ConfigError("csrf.exempt_paths", f"{path!r} must start with '/'")
        if isinstance(self.max_body_bytes, bool) or not isinstance(self.max_body_bytes, int):
            raise ConfigError("csrf.max_body_bytes", "must be a whole number of bytes")
        if self.max_body_bytes < CSRF_MIN_BODY_BYTES:
            raise ConfigError("csrf.max_body_bytes", f"must be at least {CSRF_MIN_BODY_BYTES} bytes")

    def exempts(self, path: str) -> bool:
        """Tell whether requests to ``path`` are never checked."""
        return bool(self.exempt_paths) and path_matches(path, self.exempt_paths)


def _trusted_origin(text: object) -> str:
    # Imported here: the client-info module builds on the engine, which reads this module.
    from sessionward.core.clientinfo import normalize_origin

    origin = normalize_origin(text) if isinstance(text, str) else None
    if origin is None:
        raise ConfigError("csrf.trusted_origins", f"{text!r} is not an origin such as https://app.example.com")
    return origin


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionPolicy:
    """Everything sessionward needs to know to decide; frozen and validated.

    Attributes:
        cookie: Cookie attributes.
        timeouts: Idle, absolute, renewal.
        login: Fixation, multiple-login control, re-authentication.
        creation: Creation policy.
        creation_budget: New sessions nobody signed in to, per client and minute.
        login_throttle: Slowing down repeated failed sign-ins.
        invalid_session: Invalid-session handling.
        binding: Client binding.
        firewall: Request firewall.
        id_bits: Entropy of new IDs; at least 128.
        max_data_bytes: Largest serialized session data accepted.
        passive_paths: Requests here read the session without counting as activity,
            e.g. a status endpoint that a page polls for its countdown.
        trusted_proxies: Networks whose ``X-Forwarded-For``/``Forwarded`` are believed.
    """

    cookie: CookiePolicy = field(default_factory=CookiePolicy)
    timeouts: TimeoutPolicy = field(default_factory=TimeoutPolicy)
    login: LoginPolicy = field(default_factory=LoginPolicy)
    creation: Creation = Creation.IF_REQUIRED
    creation_budget: CreationBudget = field(default_factory=CreationBudget)
    login_throttle: LoginThrottlePolicy = field(default_factory=LoginThrottlePolicy)
    invalid_session: InvalidSessionPolicy = field(default_factory=InvalidSessionPolicy)
    binding: BindingPolicy = field(default_factory=BindingPolicy)
    firewall: FirewallPolicy = field(default_factory=FirewallPolicy)
    id_bits: int = DEFAULT_ID_BITS
    max_data_bytes: int = 64 * 1024
    passive_paths: tuple[str, ...] = ()
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    def __post_init__(self) -> None:
        if self.id_bits < MIN_ID_BITS:
            raise ConfigError("id_bits", f"{self.id_bits} bits is too weak; at least {MIN_ID_BITS} are required")
        if self.id_bits > MAX_ID_BITS or self.id_bits % 8:
            raise ConfigError("id_bits", f"must be a multiple of 8 from {MIN_ID_BITS} to {MAX_ID_BITS}")
        if self.creation not in Creation.__members__.values():
            raise ConfigError("creation", f"{self.creation!r} is not one of {_choices(Creation)}")
        if not 256 <= self.max_data_bytes <= 16 * 1024 * 1024:
            raise ConfigError("max_data_bytes", "must be between 256 bytes and 16 MiB")
        max_age = self.cookie.max_age_s
        if max_age is not None and max_age > self.timeouts.absolute_timeout_s:
            raise ConfigError("cookie.max_age_s", "must not exceed the absolute timeout")

    def with_(self, **changes: object) -> Self:
        """Return a copy with ``changes`` applied and validated again."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def is_passive(self, path: str) -> bool:
        """Tell whether a request to ``path`` leaves the idle clock alone."""
        return bool(self.passive_paths) and path_matches(path, self.passive_paths)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, base: SessionPolicy | None = None) -> SessionPolicy:
        """Build a policy from ``SESSIONWARD_*`` variables on top of ``base``.

        A ``SESSIONWARD_*`` name that sessionward does not read (a typo such as
        ``SESSIONWARD_IDLE_TIMOUT``) is ignored and reported: a warning on the
        ``sessionward`` logger names it and the nearest valid name.

        Args:
            environ: The variables to read; the process environment when ``None``.
            base: The policy the variables are applied to; the defaults when ``None``.

        Raises:
            ConfigError: naming the variable whose value is malformed or insecure.
        """
        from sessionward.core.env import policy_from_env

        return policy_from_env(os.environ if environ is None else environ, base or cls())


def path_matches(path: str, patterns: tuple[str, ...]) -> bool:
    """Tell whether ``path`` is one of ``patterns``: exact, or a prefix when it ends in ``/``."""
    for pattern in patterns:
        if pattern.endswith("/") and len(pattern) > 1:
            if path.startswith(pattern):
                return True
        elif path == pattern:
            return True
    return False


def _choices(enum: type[StrEnum]) -> str:
    return ", ".join(member.value for member in enum)
