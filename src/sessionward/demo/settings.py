"""The demo's settings: the session policy from ``SESSIONWARD_*`` plus the demo's own.

The demo layers its routing needs (where invalid sessions go, which paths are passive or
exempt from the check) under the environment's policy, so an operator's variables win
for everything they name. Every malformed value raises :class:`ConfigError` naming the
variable, before anything listens on a port.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from sessionward.cli.common import DEFAULT_STORE_URL
from sessionward.core.config import InvalidSessionPolicy, SessionPolicy
from sessionward.demo.users import DEFAULT_USERS, UserSpec, parse_users

__all__ = ["DEFAULT_STORE_URL", "DemoSettings", "demo_policy_base", "load_settings"]

PASSIVE_PATHS = ("/api/session/status", "/static/")
"""Requests that read the session without counting as activity.

The dashboard polls the status for its countdown; if polling kept the session alive,
an unattended tab would never time out. Static files are not activity either.
"""

EXCLUDED_PATHS = ("/api/login", "/login", "/static/")
"""Paths where a dead session cookie is not an error: a user must be able to sign in again."""


@dataclass(frozen=True, slots=True)
class DemoSettings:
    """Everything the demo reads from its environment, validated.

    Attributes:
        policy: The session policy in force.
        store_url: Where sessions live (``SESSIONWARD_STORE``).
        users: The demo's accounts (``SESSIONWARD_DEMO_USERS``).
        debug: Whether the development-only debug endpoint is served.
        purge_interval_s: How often expired sessions are purged in the background.
    """

    policy: SessionPolicy
    store_url: str
    users: tuple[UserSpec, ...]
    debug: bool = False
    purge_interval_s: float = 60.0


def demo_policy_base() -> SessionPolicy:
    """Return the policy the environment's variables are applied on top of."""
    return SessionPolicy(
        invalid_session=InvalidSessionPolicy(
            redirect_url="/login",
            api_prefixes=("/api/",),
            excluded_paths=EXCLUDED_PATHS,
        ),
        passive_paths=PASSIVE_PATHS,
    )


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    store_url: str | None = None,
    debug: bool = False,
) -> DemoSettings:
    """Read and validate the demo's settings.

    Args:
        environ: The variables to read; the process environment when ``None``.
        store_url: A store URL that overrides ``SESSIONWARD_STORE`` (``--store``).
        debug: Serve the debug endpoint (``--debug``).

    Raises:
        ConfigError: naming the variable whose value is malformed.
    """
    env = os.environ if environ is None else environ
    policy = SessionPolicy.from_env(env, base=demo_policy_base())
    url = store_url or env.get("SESSIONWARD_STORE", "").strip() or DEFAULT_STORE_URL
    users_text = env.get("SESSIONWARD_DEMO_USERS", "")
    users = parse_users(users_text) if users_text.strip() else DEFAULT_USERS
    return DemoSettings(policy=policy, store_url=url, users=users, debug=debug)
