"""Helpers for the test suites of applications that use sessionward.

Test clients talk plain ``http://`` (``http://testserver``), and the default session
cookie is ``Secure`` and named ``__Host-sid``. ``httpx``, and so Starlette's
``TestClient``, keep such a cookie and never send it back over plain HTTP: a test that
signs in finds its next request anonymous. (Werkzeug's test client, and so Flask's,
sends it anyway.) Either give the tests a policy whose cookie plain HTTP carries::

    from sessionward.testing import plain_http_policy

    manager = SessionManager(open_store("memory://"), plain_http_policy())
    client = TestClient(SessionMiddleware(app, manager))

or keep the production cookie and let the client speak HTTPS:
``TestClient(app, base_url="https://testserver")``. With settings from the environment,
``SESSIONWARD_COOKIE_SECURE=false`` does what :func:`plain_http_policy` does.

Never use this policy in production: a cookie that is not Secure travels in clear text
over any plain-HTTP connection, and its name loses the ``__Host-`` guarantee that no
sibling subdomain set it.
"""

from __future__ import annotations

from dataclasses import replace

from sessionward.core.config import SessionPolicy

__all__ = ["plain_http_policy"]

_SECURE_PREFIXES = ("__Host-", "__Secure-")


def plain_http_policy(policy: SessionPolicy | None = None) -> SessionPolicy:
    """Return ``policy`` with a session cookie that test clients send back over ``http://``.

    The cookie loses ``Secure`` and, with it, the ``__Host-``/``__Secure-`` prefix of its
    name (these require Secure): the default ``__Host-sid`` becomes ``sid``.
    ``SameSite=None`` (which needs Secure) becomes ``Lax``. Everything else is kept.

    Args:
        policy: The application's policy; ``None`` for the defaults.
    """
    policy = policy or SessionPolicy()
    cookie = policy.cookie
    name = cookie.name
    if name is not None:
        for prefix in _SECURE_PREFIXES:
            name = name.removeprefix(prefix)
    same_site = "lax" if cookie.same_site == "none" else cookie.same_site
    return policy.with_(cookie=replace(cookie, secure=False, name=name, same_site=same_site))
