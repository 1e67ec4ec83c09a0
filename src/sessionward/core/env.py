"""Reading the policy from ``SESSIONWARD_*`` environment variables (SPEC §6).

Each variable is parsed on its own and every error names the variable and what it
accepts; cross-setting checks (idle timeout above the absolute one, say) are re-raised
under the name of the variable that was set.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Mapping
from dataclasses import replace
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

# Which variable set which policy field, to name it when a cross-check fails.
_FIELD_VARIABLES = {
    "timeouts.idle_timeout_s": "SESSIONWARD_IDLE_TIMEOUT",
    "timeouts.anonymous_idle_timeout_s": "SESSIONWARD_ANONYMOUS_IDLE_TIMEOUT",
    "timeouts.absolute_timeout_s": "SESSIONWARD_ABSOLUTE_TIMEOUT",
    "timeouts.renewal_interval_s": "SESSIONWARD_RENEWAL_INTERVAL",
    "timeouts.rotation_grace_s": "SESSIONWARD_ROTATION_GRACE",
    "timeouts.touch_interval_s": "SESSIONWARD_TOUCH_INTERVAL",
    "cookie.max_age_s": "SESSIONWARD_COOKIE_MAX_AGE",
    "cookie.name": "SESSIONWARD_COOKIE_NAME",
    "cookie.same_site": "SESSIONWARD_COOKIE_SAMESITE",
    "creation_budget.per_minute": "SESSIONWARD_ANONYMOUS_SESSION_BUDGET",
    "creation_budget.action": "SESSIONWARD_ANONYMOUS_SESSION_BUDGET_ACTION",
    "login_throttle.max_failures": "SESSIONWARD_LOGIN_MAX_FAILURES",
    "login_throttle.max_attempts_per_ip": "SESSIONWARD_LOGIN_MAX_ATTEMPTS_PER_IP",
    "login_throttle.window_s": "SESSIONWARD_LOGIN_FAILURE_WINDOW",
    "login_throttle.base_delay_s": "SESSIONWARD_LOGIN_BASE_DELAY",
    "login_throttle.max_delay_s": "SESSIONWARD_LOGIN_MAX_DELAY",
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


def read(environ: Mapping[str, str], name: str, parse: Callable[[str], T], accepts: str) -> T | None:
    """Return the parsed value of ``SESSIONWARD_<name>``, or ``None`` when unset or empty."""
    variable = PREFIX + name
    raw = environ.get(variable)
    if raw is None or raw.strip() == "":
        return None
    try:
        return parse(raw.strip())
    except (ValueError, ConfigError):
        raise ConfigError(variable, f"{raw!r} is not valid; expected {accepts}") from None


def policy_from_env(environ: Mapping[str, str], base: SessionPolicy) -> SessionPolicy:
    """Apply the ``SESSIONWARD_*`` variables in ``environ`` to ``base``."""
    try:
        return _build(environ, base)
    except ConfigError as error:
        variable = _FIELD_VARIABLES.get(error.setting)
        if variable and variable in environ:
            raise ConfigError(variable, str(error).split(": ", 1)[1]) from None
        raise


def _build(environ: Mapping[str, str], base: SessionPolicy) -> SessionPolicy:
    seconds_text = "a number of seconds (0 or more)"
    timeouts = base.timeouts
    preset = read(environ, "PRESET", TimeoutPolicy.preset, "banking, medical, web or admin")
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
        value = read(environ, variable, seconds, seconds_text)
        if value is not None:
            timeout_changes[field] = value
    if timeout_changes:
        timeouts = replace(timeouts, **timeout_changes)

    login = base.login
    login_changes: dict[str, object] = {}
    login_fields: tuple[tuple[str, str, Callable[[str], object], str], ...] = (
        ("MAX_SESSIONS", "max_sessions", count, "a whole number, 0 for unlimited"),
        ("PREVENT_LOGIN", "prevent_login", boolean, "true (first wins) or false (last wins)"),
        ("FIXATION", "fixation", Fixation, "change_id, migrate, new_session or none"),
        ("REAUTH_WINDOW", "reauth_window_s", _positive_seconds, "a positive number of seconds"),
        ("ELEVATION_TIMEOUT", "elevation_timeout_s", _positive_seconds, "a positive number of seconds"),
    )
    for variable, field, parse, accepts in login_fields:
        parsed = read(environ, variable, parse, accepts)
        if parsed is not None:
            login_changes[field] = parsed
    if login_changes:
        login = replace(login, **login_changes)  # type: ignore[arg-type]

    cookie = base.cookie
    cookie_changes: dict[str, object] = {}
    secure = read(environ, "COOKIE_SECURE", boolean, "true or false")
    if secure is not None:
        cookie_changes["secure"] = secure
    name = read(environ, "COOKIE_NAME", str, "a cookie name")
    if name is not None:
        cookie_changes["name"] = name
    same_site = read(environ, "COOKIE_SAMESITE", str.lower, "lax, strict or none")
    if same_site is not None:
        cookie_changes["same_site"] = same_site
    max_age = read(environ, "COOKIE_MAX_AGE", count, "a whole number of seconds")
    if max_age is not None:
        cookie_changes["max_age_s"] = max_age or None
    if cookie_changes:
        cookie = replace(cookie, **cookie_changes)  # type: ignore[arg-type]

    binding = base.binding
    parsed_binding = read(
        environ, "BINDING", BindingPolicy.parse, "none, ua, ip, ip_prefix or a '+' combination such as ua+ip_prefix"
    )
    if parsed_binding is not None:
        binding = replace(parsed_binding, on_mismatch=binding.on_mismatch)
    action = read(environ, "BINDING_ACTION", BindingMismatch, "end or report")
    if action is not None:
        binding = replace(binding, on_mismatch=action)

    creation_budget = base.creation_budget
    budget_changes: dict[str, object] = {}
    per_minute = read(
        environ, "ANONYMOUS_SESSION_BUDGET", count, "a whole number of new sessions per client and minute, 0 for off"
    )
    if per_minute is not None:
        budget_changes["per_minute"] = per_minute
    budget_action = read(environ, "ANONYMOUS_SESSION_BUDGET_ACTION", _budget_action, "skip or refuse")
    if budget_action is not None:
        budget_changes["action"] = budget_action
    if budget_changes:
        creation_budget = replace(creation_budget, **budget_changes)  # type: ignore[arg-type]

    login_throttle = base.login_throttle
    throttle_changes: dict[str, object] = {}
    throttle_fields: tuple[tuple[str, str, Callable[[str], object], str], ...] = (
        ("LOGIN_MAX_FAILURES", "max_failures", count, "a whole number of failed sign-ins per account, 0 for off"),
        (
            "LOGIN_MAX_ATTEMPTS_PER_IP",
            "max_attempts_per_ip",
            count,
            "a whole number of sign-in attempts per client network, 0 for off",
        ),
        ("LOGIN_FAILURE_WINDOW", "window_s", _positive_seconds, "a positive number of seconds"),
        ("LOGIN_BASE_DELAY", "base_delay_s", _positive_seconds, "a positive number of seconds"),
        ("LOGIN_MAX_DELAY", "max_delay_s", _positive_seconds, "a positive number of seconds"),
    )
    for variable, field, parse, accepts in throttle_fields:
        parsed = read(environ, variable, parse, accepts)
        if parsed is not None:
            throttle_changes[field] = parsed
    if throttle_changes:
        login_throttle = replace(login_throttle, **throttle_changes)  # type: ignore[arg-type]

    changes: dict[str, object] = {
        "timeouts": timeouts,
        "login": login,
        "cookie": cookie,
        "binding": binding,
        "creation_budget": creation_budget,
        "login_throttle": login_throttle,
    }
    creation = read(environ, "CREATION", Creation, "always, if_required, never or stateless")
    if creation is not None:
        changes["creation"] = creation
    proxies = read(environ, "TRUSTED_PROXIES", networks, "comma-separated IP networks such as 10.0.0.0/8,::1")
    if proxies is not None:
        changes["trusted_proxies"] = proxies
    id_bits = read(environ, "ID_BITS", count, "a multiple of 8 from 128 to 512")
    if id_bits is not None:
        if id_bits < 128 or id_bits > 512 or id_bits % 8:
            raise ConfigError(
                "SESSIONWARD_ID_BITS", f"{id_bits} is not valid; expected a multiple of 8 from 128 to 512"
            )
        changes["id_bits"] = id_bits
    max_bytes = read(environ, "MAX_DATA_BYTES", count, "a whole number of bytes from 256 to 16777216")
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
    app_id = read(environ, "APP_ID", _app_id, "1 to 64 printable ASCII characters without spaces")
    return app_id if app_id is not None else DEFAULT_APP_ID
