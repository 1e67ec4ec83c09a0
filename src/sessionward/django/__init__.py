"""sessionward for Django: ``request.session`` and ``django.contrib.auth`` on sessionward.

settings.py::

    from sessionward import SessionPolicy

    INSTALLED_APPS = [
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "sessionward.django",  # in place of "django.contrib.sessions"
        ...
    ]
    MIDDLEWARE = [
        "sessionward.django.middleware.SessionwardMiddleware",  # first, in place of SessionMiddleware
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        ...
    ]
    SESSION_ENGINE = "sessionward.django.backend"
    SESSIONWARD_STORE = "sqlite:///var/lib/app/sessions.db"  # or redis://, postgresql://…
    SESSIONWARD_POLICY = SessionPolicy.from_env()  # optional: the SESSIONWARD_* variables by default

Then ``request.session`` keeps Django's API with sessionward underneath: IDs that are
stored only hashed, idle and absolute timeouts, periodic renewal of the ID, client
binding, the request firewall. ``django.contrib.auth``'s ``login()`` gives the session a
new ID through sessionward and registers it under the user (``max_sessions``,
``prevent_login``: a refused login raises
:class:`~sessionward.core.errors.LoginRefusedError`, answered 409 if the view lets it
through); ``logout()`` ends the session; ``update_session_auth_hash()`` after a password
change ends the user's other sessions and keeps this one.

The registry is on the session: ``request.session.list_sessions()``,
``revoke(handle)``, ``revoke_others()``; :func:`session_of` returns it typed (Django ships
no type information, so ``request.session`` is untyped in a checked project).

What Django's session settings did, the policy does: ``SESSION_COOKIE_*``,
``SESSION_EXPIRE_AT_BROWSER_CLOSE``, ``SESSION_SAVE_EVERY_REQUEST`` and
``SESSION_SERIALIZER`` are not read (values are JSON). Run ``sessionward store init
--store URL`` once to create a SQL store's tables; ``manage.py clearsessions`` purges
expired sessions. CSRF protection stays Django's ``CsrfViewMiddleware``, security headers
Django's ``SecurityMiddleware``. The audit trail goes to the ``sessionward.audit``
logger: route it with ``LOGGING``.

Tests: Django's test client talks plain HTTP and the default cookie is ``Secure``;
``SESSIONWARD_COOKIE_SECURE = False`` (or :func:`sessionward.testing.plain_http_policy`)
in the test settings keeps the ``__Host-`` prefix out of the way. ``client.login()`` and
``client.force_login()`` (and ``client.logout()``) build a session outside any request,
which sessionward refuses: use :func:`sessionward.django.testing.force_login` (and
``logout_client``).

The other settings are described in :mod:`sessionward.django.apps`, what each session
verb does in :mod:`sessionward.django.backend`, the order of work per request in
:mod:`sessionward.django.middleware`.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sessionward.django.apps import get_manager
    from sessionward.django.backend import SessionStore
    from sessionward.django.middleware import SessionwardMiddleware, exchange_of, session_of

__all__ = ["SessionStore", "SessionwardMiddleware", "exchange_of", "get_manager", "session_of"]

# Imported on first use: Django imports this package while it is still loading apps.
_LAZY = {
    "SessionStore": "sessionward.django.backend",
    "SessionwardMiddleware": "sessionward.django.middleware",
    "exchange_of": "sessionward.django.middleware",
    "get_manager": "sessionward.django.apps",
    "session_of": "sessionward.django.middleware",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sessionward.django' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
