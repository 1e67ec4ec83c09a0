"""The Django app: sessionward's configuration, read from Django's settings.

One :class:`~sessionward._sync.manager.SessionManager` serves the process. It is built on
first use from the settings below, and built again when a test changes one of them with
``override_settings`` (a store the app opened from a URL is closed then):

``SESSIONWARD_STORE``
    A store URL (``sqlite:///var/sessions.db``, ``redis://…``, ``postgresql://…``) or a
    sync store object (:mod:`sessionward.sync`). Without it, the ``SESSIONWARD_STORE``
    environment variable, else ``memory://``, which only suits a single process.
``SESSIONWARD_POLICY``
    A :class:`~sessionward.core.config.SessionPolicy`. Without it, the policy comes from
    the ``SESSIONWARD_*`` environment variables (``SESSIONWARD_IDLE_TIMEOUT``,
    ``SESSIONWARD_MAX_SESSIONS``…), each of which may also be written in the settings,
    where it wins over the environment.
``SESSIONWARD_CLOCK``
    A callable returning the time in seconds (tests pass a ``ManualClock``).
``SESSIONWARD_EVENTS``
    An :class:`~sessionward.core.events.EventBus` to subscribe to (plain callables:
    Django here is synchronous). Events also reach the ``sessionward.audit`` logger,
    which Django's ``LOGGING`` setting can send to a file.
``SESSIONWARD_STORE_TIMEOUT``
    Seconds a store call may take before it counts as an outage (503); default 2.

The app also checks, when Django runs its system checks (``manage.py check``,
``runserver``, ``migrate``, the test runner), that the engine and the middleware are
installed together and in place of Django's own.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from sessionward.core.extras import needs_extra

with needs_extra("django", "sessionward.django"):
    from django.apps import AppConfig  # type: ignore[import-untyped]
    from django.conf import settings  # type: ignore[import-untyped]
    from django.core import checks  # type: ignore[import-untyped]
    from django.core.signals import setting_changed  # type: ignore[import-untyped]

from sessionward._sync.manager import SessionManager
from sessionward._sync.stores import open_store
from sessionward._sync.stores.base import SessionStore
from sessionward.core.config import SessionPolicy
from sessionward.core.errors import ConfigError
from sessionward.core.events import EventBus

__all__ = ["ENGINE", "MIDDLEWARE", "SessionwardConfig", "get_manager", "reset_manager"]

ENGINE = "sessionward.django.backend"
"""The value of ``SESSION_ENGINE``."""
MIDDLEWARE = "sessionward.django.middleware.SessionwardMiddleware"
"""The entry of ``MIDDLEWARE``, first in the list."""
DJANGO_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"

_OBJECT_SETTINGS = frozenset(
    {"SESSIONWARD_STORE", "SESSIONWARD_POLICY", "SESSIONWARD_CLOCK", "SESSIONWARD_EVENTS", "SESSIONWARD_STORE_TIMEOUT"}
)
"""Settings read here, never handed to ``SessionPolicy.from_env``."""


class SessionwardConfig(AppConfig):  # type: ignore[misc]  # Django ships no type information
    """``"sessionward.django"`` in ``INSTALLED_APPS``."""

    name = "sessionward.django"
    label = "sessionward"
    verbose_name = "sessionward"
    default = True

    def ready(self) -> None:
        """Register the system checks of the installation."""
        checks.register(check_installation, checks.Tags.security)


@dataclass(frozen=True, slots=True)
class _Configured:
    manager: SessionManager
    owns_store: bool
    """The store was opened here from a URL (and is closed here when the settings change)."""


class _Cache:
    """The manager built from the settings, once per process (again after they change)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.configured: _Configured | None = None


_cache = _Cache()


def get_manager() -> SessionManager:
    """Return the process's session manager, built from the settings on first use.

    Raises:
        ConfigError: a setting is malformed, naming it.
    """
    configured = _cache.configured
    if configured is None:
        with _cache.lock:
            configured = _cache.configured
            if configured is None:
                configured = _cache.configured = _build()
    return configured.manager


def reset_manager() -> None:
    """Forget the manager, so that the next request builds one from the settings again."""
    with _cache.lock:
        old, _cache.configured = _cache.configured, None
    if old is not None and old.owns_store:
        old.manager.store.close()


def _on_setting_changed(*, setting: str, **_: Any) -> None:
    if setting.startswith("SESSIONWARD_"):
        reset_manager()


setting_changed.connect(_on_setting_changed, dispatch_uid="sessionward.django.reset_manager")


def _build() -> _Configured:
    store_setting: object = getattr(settings, "SESSIONWARD_STORE", None) or os.environ.get(
        "SESSIONWARD_STORE", "memory://"
    )
    if isinstance(store_setting, str):
        store: SessionStore = open_store(store_setting, setting="SESSIONWARD_STORE")
        owns_store = True
    elif isinstance(store_setting, SessionStore):
        store, owns_store = store_setting, False
    else:
        raise ConfigError("SESSIONWARD_STORE", "must be a store URL or a sync store (sessionward.sync)")
    policy = getattr(settings, "SESSIONWARD_POLICY", None)
    if policy is None:
        policy = SessionPolicy.from_env(_policy_variables())
    elif not isinstance(policy, SessionPolicy):
        raise ConfigError("SESSIONWARD_POLICY", "must be a sessionward.SessionPolicy")
    clock = getattr(settings, "SESSIONWARD_CLOCK", None)
    if clock is not None and not callable(clock):
        raise ConfigError("SESSIONWARD_CLOCK", "must be a callable returning the time in seconds")
    events = getattr(settings, "SESSIONWARD_EVENTS", None)
    if events is not None and not isinstance(events, EventBus):
        raise ConfigError("SESSIONWARD_EVENTS", "must be a sessionward.EventBus")
    timeout = getattr(settings, "SESSIONWARD_STORE_TIMEOUT", 2.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ConfigError("SESSIONWARD_STORE_TIMEOUT", "must be a positive number of seconds")
    manager = SessionManager(store, policy, clock=clock, events=events, store_timeout_s=float(timeout))
    return _Configured(manager, owns_store)


def _policy_variables() -> dict[str, str]:
    """The ``SESSIONWARD_*`` variables of the environment, overridden by those in the settings."""
    variables = {name: value for name, value in os.environ.items() if name.startswith("SESSIONWARD_")}
    for name in dir(settings):
        if not name.startswith("SESSIONWARD_") or name in _OBJECT_SETTINGS:
            continue
        value = getattr(settings, name)
        if value is not None:
            # A name sessionward does not read is reported by from_env, with the nearest one.
            variables[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return variables


def check_installation(app_configs: object = None, **kwargs: object) -> list[Any]:
    """The system check: engine and middleware together, Django's own session middleware gone."""
    del app_configs, kwargs
    errors: list[Any] = []
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    engine = getattr(settings, "SESSION_ENGINE", None)
    if engine == ENGINE and MIDDLEWARE not in middleware:
        errors.append(
            checks.Error(
                f"SESSION_ENGINE is {ENGINE!r} but {MIDDLEWARE!r} is not in MIDDLEWARE.",
                hint=f"Put {MIDDLEWARE!r} first in MIDDLEWARE, in place of {DJANGO_MIDDLEWARE!r}.",
                id="sessionward.E001",
            )
        )
    if MIDDLEWARE in middleware and engine != ENGINE:
        errors.append(
            checks.Error(
                f"{MIDDLEWARE!r} is in MIDDLEWARE but SESSION_ENGINE is {engine!r}.",
                hint=f"Set SESSION_ENGINE = {ENGINE!r}.",
                id="sessionward.E002",
            )
        )
    if MIDDLEWARE in middleware and DJANGO_MIDDLEWARE in middleware:
        errors.append(
            checks.Error(
                f"Both {DJANGO_MIDDLEWARE!r} and {MIDDLEWARE!r} are in MIDDLEWARE.",
                hint=f"Remove {DJANGO_MIDDLEWARE!r}: sessionward's middleware takes its place.",
                id="sessionward.E003",
            )
        )
    return errors
