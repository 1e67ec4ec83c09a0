"""Reading the policy from ``SESSIONWARD_*`` environment variables.

Every variable sessionward reads is declared once, in :data:`VARIABLES`: its name, the
values it accepts and the setting it fills. Each variable is parsed on its own and every
error names the variable and what it accepts; cross-setting checks (idle timeout above
the absolute one, say) are re-raised under the name of the variable that was set.

A ``SESSIONWARD_*`` name that is not declared (a typo such as
``SESSIONWARD_IDLE_TIMOUT``) is ignored, but reported at start-up: a warning on the
``sessionward`` logger names it and the nearest valid name. It is not an error, because
an environment may hold variables of other tools that share the prefix.
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

from sessionward.core.config import (
    BindingMismatch,
    BindingPolicy,
    BudgetAction,
    Creation,
    Fixation,
    SessionPolicy,
    TimeoutPolicy,
)
from sessionward.core.errors import ConfigError

T = TypeVar("T")
PREFIX = "SESSIONWARD_"
RESERVED_PREFIX = "SESSIONWARD_TEST_"
"""Variables of sessionward's own test suite: never reported as unknown."""

logger = logging.getLogger("sessionward")

_SECONDS = "a number of seconds (0 or more)"
_POSITIVE_SECONDS = "a positive number of seconds"


@dataclass(frozen=True, slots=True)
class Variable:
    """One ``SESSIONWARD_*`` variable that sessionward reads.

    Attributes:
        name: The variable's full name (``SESSIONWARD_IDLE_TIMEOUT``).
        accepts: The values it takes, as an error message says them.
        settings: The policy fields it sets (``timeouts.idle_timeout_s``); empty when it
            configures something other than the session policy.
        summary: What it does, for a variable that sets no policy field.
        read_by: Who reads it: ``SessionPolicy.from_env`` (which a Flask app's config
            also goes through), or another part of sessionward.
    """

    name: str
    accepts: str
    settings: tuple[str, ...] = ()
    summary: str = ""
    read_by: str = "SessionPolicy.from_env"


_POLICY = "SessionPolicy.from_env"
_FLASK = "sessionward.flask and sessionward.quart (app config only)"
_DJANGO = "sessionward.django (Django settings only)"

VARIABLES: tuple[Variable, ...] = (
    Variable(
        "SESSIONWARD_PRESET",
        "banking, medical, web or admin",
        ("timeouts.idle_timeout_s", "timeouts.absolute_timeout_s", "timeouts.renewal_interval_s"),
        "Start from a preset's timeouts; the timeout variables below override single values.",
    ),
    Variable("SESSIONWARD_IDLE_TIMEOUT", _SECONDS, ("timeouts.idle_timeout_s",)),
    Variable("SESSIONWARD_ABSOLUTE_TIMEOUT", _SECONDS, ("timeouts.absolute_timeout_s",)),
    Variable("SESSIONWARD_RENEWAL_INTERVAL", _SECONDS, ("timeouts.renewal_interval_s",)),
    Variable("SESSIONWARD_ROTATION_GRACE", _SECONDS, ("timeouts.rotation_grace_s",)),
    Variable("SESSIONWARD_TOUCH_INTERVAL", _SECONDS, ("timeouts.touch_interval_s",)),
    Variable(
        "SESSIONWARD_ANONYMOUS_IDLE_TIMEOUT",
        "a positive number of seconds, at most the idle timeout",
        ("timeouts.anonymous_idle_timeout_s",),
    ),
    Variable("SESSIONWARD_MAX_SESSIONS", "a whole number, 0 for unlimited", ("login.max_sessions",)),
    Variable("SESSIONWARD_PREVENT_LOGIN", "true (first wins) or false (last wins)", ("login.prevent_login",)),
    Variable("SESSIONWARD_FIXATION", "change_id, migrate, new_session or none", ("login.fixation",)),
    Variable("SESSIONWARD_REAUTH_WINDOW", _POSITIVE_SECONDS, ("login.reauth_window_s",)),
    Variable("SESSIONWARD_ELEVATION_TIMEOUT", _POSITIVE_SECONDS, ("login.elevation_timeout_s",)),
    Variable("SESSIONWARD_COOKIE_SECURE", "true or false", ("cookie.secure",)),
    Variable("SESSIONWARD_COOKIE_NAME", "a cookie name", ("cookie.name",)),
    Variable("SESSIONWARD_COOKIE_SAMESITE", "lax, strict or none", ("cookie.same_site",)),
    Variable(
        "SESSIONWARD_COOKIE_MAX_AGE",
        "a whole number of seconds, 0 for a browser-session cookie",
        ("cookie.max_age_s",),
    ),
    Variable(
        "SESSIONWARD_BINDING",
        "none, ua, ip, ip_prefix or a '+' combination such as ua+ip_prefix",
        ("binding.user_agent", "binding.ip", "binding.ip_prefix"),
    ),
    Variable("SESSIONWARD_BINDING_ACTION", "end or report", ("binding.on_mismatch",)),
    Variable(
        "SESSIONWARD_ANONYMOUS_SESSION_BUDGET",
        "a whole number of new sessions per client and minute, 0 for off",
        ("creation_budget.per_minute",),
    ),
    Variable("SESSIONWARD_ANONYMOUS_SESSION_BUDGET_ACTION", "skip or refuse", ("creation_budget.action",)),
    Variable(
        "SESSIONWARD_LOGIN_MAX_FAILURES",
        "a whole number of failed sign-ins per account, 0 for off",
        ("login_throttle.max_failures",),
    ),
    Variable(
        "SESSIONWARD_LOGIN_MAX_ATTEMPTS_PER_IP",
        "a whole number of sign-in attempts per client network, 0 for off",
        ("login_throttle.max_attempts_per_ip",),
    ),
    Variable("SESSIONWARD_LOGIN_FAILURE_WINDOW", _POSITIVE_SECONDS, ("login_throttle.window_s",)),
    Variable("SESSIONWARD_LOGIN_BASE_DELAY", _POSITIVE_SECONDS, ("login_throttle.base_delay_s",)),
    Variable("SESSIONWARD_LOGIN_MAX_DELAY", _POSITIVE_SECONDS, ("login_throttle.max_delay_s",)),
    Variable("SESSIONWARD_CREATION", "always, if_required, never or stateless", ("creation",)),
    Variable(
        "SESSIONWARD_REDIRECT_URL",
        "a local path starting with a single /, such as /login",
        ("invalid_session.redirect_url",),
    ),
    Variable(
        "SESSIONWARD_API_PREFIXES",
        "comma-separated paths starting with /, such as /api/,/v2/",
        ("invalid_session.api_prefixes",),
    ),
    Variable(
        "SESSIONWARD_EXCLUDED_PATHS",
        "comma-separated paths starting with / (a prefix when it ends in /), such as /login,/static/",
        ("invalid_session.excluded_paths",),
    ),
    Variable(
        "SESSIONWARD_TRUSTED_PROXIES",
        "comma-separated IP networks such as 10.0.0.0/8,::1",
        ("trusted_proxies",),
    ),
    Variable("SESSIONWARD_ID_BITS", "a multiple of 8 from 128 to 512", ("id_bits",)),
    Variable("SESSIONWARD_MAX_DATA_BYTES", "a whole number of bytes from 256 to 16777216", ("max_data_bytes",)),
    Variable(
        "SESSIONWARD_APP_ID",
        "1 to 64 printable ASCII characters without spaces",
        summary="The audit log's ``appid`` (default ``sessionward``).",
        read_by="the audit log (EventBus, JsonAuditLogger)",
    ),
    Variable(
        "SESSIONWARD_STORE",
        "a store URL: memory://, file://, sqlite://, postgresql://, mysql://, redis://…",
        summary="Where sessions live: read by the demo and the command line, and by the integrations "
        "from their configuration (default there ``memory://``); an ASGI application passes its URL to "
        "``open_store`` itself.",
        read_by="the demo, the command line, and the Flask, Quart, Litestar and Django integrations",
    ),
    Variable(
        "SESSIONWARD_STORE_CREATE_SCHEMA",
        "true or false (default false)",
        summary="Let a SQL store create its missing tables on first use (development only; "
        "otherwise run ``sessionward store init``).",
        read_by="open_store",
    ),
    Variable(
        "SESSIONWARD_DEMO_USERS",
        "name:password pairs separated by commas",
        summary="The demo's accounts instead of alice and bob.",
        read_by="the demo",
    ),
    Variable(
        "SESSIONWARD_AUDIT_PASSWORD",
        "a password",
        summary="The password ``sessionward audit`` signs in with, instead of ``--password``.",
        read_by="sessionward audit",
    ),
    Variable(
        "SESSIONWARD_CSRF",
        "true or false (default true)",
        summary="Refuse cross-site unsafe requests and form posts without the token.",
        read_by=_FLASK,
    ),
    Variable(
        "SESSIONWARD_CSRF_TRUSTED_ORIGINS",
        "comma-separated origins (scheme://host[:port])",
        summary="Other origins allowed to send unsafe requests.",
        read_by=_FLASK,
    ),
    Variable(
        "SESSIONWARD_CSRF_EXEMPT_PATHS",
        "comma-separated paths (prefixes end in /)",
        summary="Paths the CSRF check never looks at.",
        read_by=_FLASK,
    ),
    Variable(
        "SESSIONWARD_SECURITY_HEADERS",
        "true or false (default true)",
        summary="Add the security headers (HSTS, CSP, frame and content-type protection).",
        read_by=_FLASK,
    ),
    Variable(
        "SESSIONWARD_AUDIT_LOG",
        "a file path",
        summary="Append the JSON audit trail of this app to the file.",
        read_by=_FLASK,
    ),
    Variable(
        "SESSIONWARD_POLICY",
        "a SessionPolicy object",
        summary="The whole policy, instead of the ``SESSIONWARD_*`` settings one by one.",
        read_by=_DJANGO,
    ),
    Variable(
        "SESSIONWARD_CLOCK",
        "a callable returning seconds since the epoch",
        summary="The clock (tests pass a ``ManualClock``).",
        read_by=_DJANGO,
    ),
    Variable(
        "SESSIONWARD_EVENTS",
        "an EventBus object",
        summary="Where lifecycle events go.",
        read_by=_DJANGO,
    ),
    Variable(
        "SESSIONWARD_STORE_TIMEOUT",
        "a positive number of seconds (default 2)",
        summary="How long a store call may take before the request gets a 503.",
        read_by=_DJANGO,
    ),
    Variable(
        "SESSIONWARD_REQUIRE_SERVICES",
        "1 to require them",
        summary="Make sessionward's own tests fail, rather than skip, when PostgreSQL, MariaDB, "
        "redis-server or Chromium is missing.",
        read_by="sessionward's test suite",
    ),
)
"""Every ``SESSIONWARD_*`` variable sessionward reads, in the order the reference lists them."""

KNOWN_VARIABLES: Mapping[str, Variable] = {variable.name: variable for variable in VARIABLES}

# Which variable set which policy field, to name it when a cross-check fails.
_FIELD_VARIABLES = {
    setting: variable.name
    for variable in VARIABLES
    if variable.read_by == _POLICY and len(variable.settings) == 1
    for setting in variable.settings
}


def seconds(text: str) -> float:
    """Parse a non-negative, finite number of seconds."""
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(text)
    return value


def count(text: str) -> int:
    """Parse a non-negative whole number."""
    value = int(text.strip(), 10)
    if value < 0:
        raise ValueError(text)
    return value


def boolean(text: str) -> bool:
    """Parse ``true``/``false`` (also ``1``/``0``, ``yes``/``no``, ``on``/``off``)."""
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError(text)


def networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Parse comma-separated networks or addresses (``10.0.0.0/8,::1``)."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())


def paths(text: str) -> tuple[str, ...]:
    """Parse comma-separated URL paths, each starting with ``/`` (``/api/,/v2/``)."""
    parsed = tuple(part.strip() for part in text.split(",") if part.strip())
    if not parsed or any(not path.startswith("/") for path in parsed):
        raise ValueError(text)
    return parsed


def _local_path(text: str) -> str:
    # A redirect target: this site's own path only, never //host (another site).
    if not text.startswith("/") or text.startswith("//"):
        raise ValueError(text)
    return text


def read(environ: Mapping[str, str], name: str, parse: Callable[[str], T], accepts: str | None = None) -> T | None:
    """Return the parsed value of ``SESSIONWARD_<name>``, or ``None`` when unset or empty.

    Args:
        environ: The variables to read.
        name: The variable's name without the ``SESSIONWARD_`` prefix.
        parse: Turns the text into the value; raises ``ValueError`` (or ``ConfigError``)
            when the text is malformed.
        accepts: What the variable takes, for the error message; ``None`` takes it from
            the variable's declaration in :data:`VARIABLES`.

    Raises:
        ConfigError: naming the variable and what it accepts, when the value is malformed.
    """
    variable = PREFIX + name
    raw = environ.get(variable)
    if raw is None or raw.strip() == "":
        return None
    try:
        return parse(raw.strip())
    except (ValueError, ConfigError):
        expected = accepts if accepts is not None else KNOWN_VARIABLES[variable].accepts
        raise ConfigError(variable, f"{raw!r} is not valid; expected {expected}") from None


def unknown_variables(environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """Return the ``SESSIONWARD_*`` names in ``environ`` that sessionward does not read.

    Each comes with the nearest name it does read (``None`` when nothing is close), so
    that a typo such as ``SESSIONWARD_IDLE_TIMOUT`` can be reported with its correction.
    Names under ``SESSIONWARD_TEST_`` belong to sessionward's own test suite and are
    never reported.
    """
    unknown: list[tuple[str, str | None]] = []
    for name in sorted(environ):
        if not name.startswith(PREFIX) or name in KNOWN_VARIABLES or name.startswith(RESERVED_PREFIX):
            continue
        # Compared without the shared prefix, which would make every name look alike.
        suffixes = [known.removeprefix(PREFIX) for known in KNOWN_VARIABLES]
        nearest = difflib.get_close_matches(name.removeprefix(PREFIX), suffixes, n=1, cutoff=0.75)
        unknown.append((name, PREFIX + nearest[0] if nearest else None))
    return unknown


def report_unknown_variables(environ: Mapping[str, str]) -> None:
    """Log a warning for each ``SESSIONWARD_*`` name in ``environ`` that sessionward ignores.

    Unknown names are not an error: other tools may share the prefix. But a misspelt
    setting silently left at its default is a security problem (a timeout that is not the
    one the operator chose), so each is named, with the nearest valid name.
    """
    for name, nearest in unknown_variables(environ):
        hint = f"did you mean {nearest}?" if nearest else "no setting has a similar name"
        logger.warning("%s is not a sessionward setting and is ignored; %s", name, hint)


def policy_from_env(environ: Mapping[str, str], base: SessionPolicy) -> SessionPolicy:
    """Apply the ``SESSIONWARD_*`` variables in ``environ`` to ``base``.

    Names that sessionward does not read are reported (:func:`report_unknown_variables`).
    """
    report_unknown_variables(environ)
    try:
        return _build(environ, base)
    except ConfigError as error:
        variable = _FIELD_VARIABLES.get(error.setting)
        if variable and variable in environ:
            raise ConfigError(variable, str(error).split(": ", 1)[1]) from None
        raise


def _build(environ: Mapping[str, str], base: SessionPolicy) -> SessionPolicy:
    timeouts = base.timeouts
    preset = read(environ, "PRESET", TimeoutPolicy.preset)
    if preset is not None:
        timeouts = preset
    timeout_changes: dict[str, float] = {}
    for variable, field in (
        ("IDLE_TIMEOUT", "idle_timeout_s"),
        ("ABSOLUTE_TIMEOUT", "absolute_timeout_s"),
        ("RENEWAL_INTERVAL", "renewal_interval_s"),
        ("ROTATION_GRACE", "rotation_grace_s"),
        ("TOUCH_INTERVAL", "touch_interval_s"),
        ("ANONYMOUS_IDLE_TIMEOUT", "anonymous_idle_timeout_s"),
    ):
        value = read(environ, variable, seconds)
        if value is not None:
            timeout_changes[field] = value
    if timeout_changes:
        timeouts = replace(timeouts, **timeout_changes)

    login = base.login
    login_changes: dict[str, object] = {}
    login_fields: tuple[tuple[str, str, Callable[[str], object]], ...] = (
        ("MAX_SESSIONS", "max_sessions", count),
        ("PREVENT_LOGIN", "prevent_login", boolean),
        ("FIXATION", "fixation", Fixation),
        ("REAUTH_WINDOW", "reauth_window_s", _positive_seconds),
        ("ELEVATION_TIMEOUT", "elevation_timeout_s", _positive_seconds),
    )
    for variable, field, parse in login_fields:
        parsed = read(environ, variable, parse)
        if parsed is not None:
            login_changes[field] = parsed
    if login_changes:
        login = replace(login, **login_changes)  # type: ignore[arg-type]

    cookie = base.cookie
    cookie_changes: dict[str, object] = {}
    secure = read(environ, "COOKIE_SECURE", boolean)
    if secure is not None:
        cookie_changes["secure"] = secure
    name = read(environ, "COOKIE_NAME", str)
    if name is not None:
        cookie_changes["name"] = name
    same_site = read(environ, "COOKIE_SAMESITE", str.lower)
    if same_site is not None:
        cookie_changes["same_site"] = same_site
    max_age = read(environ, "COOKIE_MAX_AGE", count)
    if max_age is not None:
        cookie_changes["max_age_s"] = max_age or None
    if cookie_changes:
        cookie = replace(cookie, **cookie_changes)  # type: ignore[arg-type]

    binding = base.binding
    parsed_binding = read(environ, "BINDING", BindingPolicy.parse)
    if parsed_binding is not None:
        binding = replace(parsed_binding, on_mismatch=binding.on_mismatch)
    action = read(environ, "BINDING_ACTION", BindingMismatch)
    if action is not None:
        binding = replace(binding, on_mismatch=action)

    creation_budget = base.creation_budget
    budget_changes: dict[str, object] = {}
    per_minute = read(environ, "ANONYMOUS_SESSION_BUDGET", count)
    if per_minute is not None:
        budget_changes["per_minute"] = per_minute
    budget_action = read(environ, "ANONYMOUS_SESSION_BUDGET_ACTION", _budget_action)
    if budget_action is not None:
        budget_changes["action"] = budget_action
    if budget_changes:
        creation_budget = replace(creation_budget, **budget_changes)  # type: ignore[arg-type]

    login_throttle = base.login_throttle
    throttle_changes: dict[str, object] = {}
    throttle_fields: tuple[tuple[str, str, Callable[[str], object]], ...] = (
        ("LOGIN_MAX_FAILURES", "max_failures", count),
        ("LOGIN_MAX_ATTEMPTS_PER_IP", "max_attempts_per_ip", count),
        ("LOGIN_FAILURE_WINDOW", "window_s", _positive_seconds),
        ("LOGIN_BASE_DELAY", "base_delay_s", _positive_seconds),
        ("LOGIN_MAX_DELAY", "max_delay_s", _positive_seconds),
    )
    for variable, field, parse in throttle_fields:
        parsed = read(environ, variable, parse)
        if parsed is not None:
            throttle_changes[field] = parsed
    if throttle_changes:
        login_throttle = replace(login_throttle, **throttle_changes)  # type: ignore[arg-type]

    invalid_session = base.invalid_session
    invalid_changes: dict[str, object] = {}
    redirect_url = read(environ, "REDIRECT_URL", _local_path)
    if redirect_url is not None:
        invalid_changes["redirect_url"] = redirect_url
    api_prefixes = read(environ, "API_PREFIXES", paths)
    if api_prefixes is not None:
        invalid_changes["api_prefixes"] = api_prefixes
    excluded_paths = read(environ, "EXCLUDED_PATHS", paths)
    if excluded_paths is not None:
        invalid_changes["excluded_paths"] = excluded_paths
    if invalid_changes:
        invalid_session = replace(invalid_session, **invalid_changes)  # type: ignore[arg-type]

    changes: dict[str, object] = {
        "timeouts": timeouts,
        "login": login,
        "cookie": cookie,
        "binding": binding,
        "creation_budget": creation_budget,
        "login_throttle": login_throttle,
        "invalid_session": invalid_session,
    }
    creation = read(environ, "CREATION", Creation)
    if creation is not None:
        changes["creation"] = creation
    proxies = read(environ, "TRUSTED_PROXIES", networks)
    if proxies is not None:
        changes["trusted_proxies"] = proxies
    id_bits = read(environ, "ID_BITS", count)
    if id_bits is not None:
        if id_bits < 128 or id_bits > 512 or id_bits % 8:
            accepts = KNOWN_VARIABLES["SESSIONWARD_ID_BITS"].accepts
            raise ConfigError("SESSIONWARD_ID_BITS", f"{id_bits} is not valid; expected {accepts}")
        changes["id_bits"] = id_bits
    max_bytes = read(environ, "MAX_DATA_BYTES", count)
    if max_bytes is not None:
        changes["max_data_bytes"] = max_bytes
    return replace(base, **changes)  # type: ignore[arg-type]


def _budget_action(text: str) -> BudgetAction:
    return BudgetAction(text.lower())


def _positive_seconds(text: str) -> float:
    value = seconds(text)
    if value == 0:
        raise ValueError(text)
    return value


DEFAULT_APP_ID = "sessionward"
"""The audit log's ``appid`` when ``SESSIONWARD_APP_ID`` is not set."""


def _app_id(text: str) -> str:
    # Printable ASCII without spaces: the value goes into every audit line and is matched
    # by SIEM rules, so it must be one token that needs no escaping.
    if not 1 <= len(text) <= 64 or not all("!" <= char <= "~" for char in text):
        raise ValueError(text)
    return text


def app_id_from_env(environ: Mapping[str, str]) -> str:
    """Return ``SESSIONWARD_APP_ID``, the audit log's ``appid``, or ``sessionward`` when unset."""
    app_id = read(environ, "APP_ID", _app_id)
    return app_id if app_id is not None else DEFAULT_APP_ID


# -- a framework's own configuration (Flask and Quart config keys) ------------------------------


def settings_from_config(config: Mapping[str, object]) -> dict[str, str]:
    """Return an app's ``SESSIONWARD_*`` config keys as the text :func:`policy_from_env` reads.

    Booleans become ``true``/``false`` and lists comma-separated text; ``None`` and objects
    that are not settings (a store object given as ``SESSIONWARD_STORE``) are left out.
    """
    settings: dict[str, str] = {}
    for key, value in config.items():
        if not key.startswith(PREFIX) or value is None:
            continue
        if isinstance(value, bool):
            settings[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            settings[key] = str(value)
        elif isinstance(value, list | tuple | set | frozenset):
            settings[key] = ",".join(str(item) for item in value)
    return settings


def config_flag(value: object) -> bool:
    """Read an on/off config value: a bool, or text such as ``false``/``0``/``off``."""
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off", "")
    return bool(value)


def config_items(value: object) -> list[str]:
    """Read a list config value: a list/tuple/set, or comma-separated text."""
    if value is None:
        return []
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list | tuple | set | frozenset):
        return [str(item) for item in value]
    return [str(value)]
