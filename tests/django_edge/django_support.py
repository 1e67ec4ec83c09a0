"""Django configured once for these tests, and the fixtures they share.

This folder has no ``conftest.py`` and no ``__init__.py``: a package named ``django``
under ``tests/`` would hide the real Django, and a second top-level ``conftest`` module
would clash with ``tests/conftest.py`` under mypy. Test modules import the fixtures
from here instead.

Django's settings are configured in-process, once: the auth tables live in a SQLite
file of a temporary folder (shared with the server thread of the real-server test), and
each test gets its own sessionward store and manual clock through ``override_settings``,
which makes the app build its manager again.
"""

from __future__ import annotations

import atexit
import importlib
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings  # type: ignore[import-untyped]

from sessionward import ManualClock, SessionPolicy
from sessionward.sync import MemoryStore
from sessionward.testing import plain_http_policy

COOKIE = "sid"
"""The session cookie's name under the tests' plain-HTTP policy."""

_DATABASE_DIR = Path(tempfile.mkdtemp(prefix="sessionward-django-"))
atexit.register(shutil.rmtree, _DATABASE_DIR, True)

MIDDLEWARE = [
    "sessionward.django.middleware.SessionwardMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="sessionward-django-tests-" + "k" * 40,
        ALLOWED_HOSTS=["testserver", "127.0.0.1", "localhost"],
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "sessionward.django"],
        MIDDLEWARE=MIDDLEWARE,
        SESSION_ENGINE="sessionward.django.backend",
        ROOT_URLCONF="django_testapp",
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(_DATABASE_DIR / "auth.db")}},
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        SESSIONWARD_STORE=MemoryStore(),
        SESSIONWARD_POLICY=plain_http_policy(),
    )
    importlib.import_module("django").setup()  # mypy sees tests/ as a source root too
    from django.core.management import call_command  # type: ignore[import-untyped]

    call_command("migrate", verbosity=0)

from django.contrib.auth import get_user_model  # type: ignore[import-untyped]  # noqa: E402
from django.test import Client, override_settings  # type: ignore[import-untyped]  # noqa: E402

__all__ = ["COOKIE", "Client", "configure", "cookie_of", "make_user", "sign_in", "store"]

Configure = Callable[..., None]


@pytest.fixture
def store() -> MemoryStore:
    """A fresh sync in-memory store."""
    return MemoryStore()


@pytest.fixture
def configure(store: MemoryStore, clock: ManualClock) -> Iterator[Configure]:
    """Point the app at ``store`` and ``clock`` with a plain-HTTP policy; call it again to change settings.

    ``configure(policy, **settings)``: ``policy`` (made plain-HTTP) replaces the default
    one, other keywords are Django settings.
    """
    with ExitStack() as stack:

        def apply(policy: SessionPolicy | None = None, **changes: Any) -> None:
            values = {
                "SESSIONWARD_STORE": store,
                "SESSIONWARD_CLOCK": clock,
                "SESSIONWARD_POLICY": plain_http_policy(policy),
                **changes,
            }
            stack.enter_context(override_settings(**values))

        apply()
        yield apply


def make_user(name: str = "alice", password: str = "correct horse") -> Any:
    """A user ``name`` with ``password``, made afresh (the auth database outlives a test)."""
    model = get_user_model()
    model.objects.filter(username=name).delete()
    return model.objects.create_user(username=name, password=password)


def sign_in(client: Client, name: str = "alice", password: str = "correct horse") -> Any:
    """Post the credentials to the login view; return the response."""
    return client.post("/login", {"username": name, "password": password})


def cookie_of(response: Any, name: str = COOKIE) -> str | None:
    """The value the response sets for the session cookie ('' when it clears it), or ``None``."""
    morsel = response.cookies.get(name)
    return None if morsel is None else str(morsel.value)


def set_cookie_header(response: Any, name: str = COOKIE) -> str | None:
    """The ``Set-Cookie`` line of cookie ``name`` as Django sends it, or ``None``."""
    morsel = response.cookies.get(name)
    return None if morsel is None else str(morsel.OutputString())


def attributes(header: str) -> set[str]:
    """The attributes of a ``Set-Cookie`` line, lower-cased, without the name=value pair."""
    return {part.strip().lower() for part in re.split(";", header)[1:]}
