"""Signing in and out in Django tests, where ``client.force_login()`` cannot be used.

Django's test client builds a session outside any request for ``client.login()``,
``client.force_login()``, ``client.logout()`` and ``client.session``; a sessionward
session belongs to a request, so those raise. These helpers run one request through
:class:`~sessionward.django.middleware.SessionwardMiddleware` instead, and hand the
client the cookie it sets::

    from sessionward.django.testing import force_login

    def test_profile(client, alice):
        force_login(client, alice)
        assert client.get("/profile/").status_code == 200

Like every request of the client, the sign-in comes from ``REMOTE_ADDR`` 127.0.0.1 with
the client's default headers, so a session bound to the client (``SESSIONWARD_BINDING``)
holds for its next requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sessionward.core.extras import needs_extra

with needs_extra("django", "sessionward.django.testing"):
    from django.conf import settings  # type: ignore[import-untyped]
    from django.contrib.auth import load_backend, login, logout  # type: ignore[import-untyped]
    from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped]
    from django.test import RequestFactory  # type: ignore[import-untyped]

from sessionward.core.errors import SessionNotAvailableError
from sessionward.django.middleware import SessionwardMiddleware

__all__ = ["force_login", "logout_client"]


def force_login(client: Any, user: Any, backend: str | None = None) -> None:
    """Sign ``user`` in for Django's test ``client``, as ``client.force_login`` does with Django's sessions.

    Args:
        client: A ``django.test.Client``.
        user: The user to sign in.
        backend: The authentication backend's dotted path; by default the first of
            ``AUTHENTICATION_BACKENDS`` that can load users.

    Raises:
        SessionNotAvailableError: the sign-in was not answered 200 (a refused login says
            ``max_sessions``); the message holds the answer.
    """
    chosen = backend or _first_backend()

    def sign_in(request: HttpRequest) -> HttpResponse:
        login(request, user, chosen)
        return HttpResponse()

    _run(client, sign_in)


def logout_client(client: Any) -> None:
    """Sign the client's user out: the session ends server-side, and its cookie goes."""

    def sign_out(request: HttpRequest) -> HttpResponse:
        logout(request)
        return HttpResponse()

    _run(client, sign_out)


def _run(client: Any, view: Callable[[HttpRequest], HttpResponse]) -> None:
    request = RequestFactory(**getattr(client, "defaults", {})).get("/")
    cookies = "; ".join(sorted(f"{morsel.key}={morsel.coded_value}" for morsel in client.cookies.values()))
    if cookies:
        request.META["HTTP_COOKIE"] = cookies
    response = SessionwardMiddleware(view)(request)
    if response.status_code != 200:
        raise SessionNotAvailableError(f"the request was answered {response.status_code}: {response.content!r}")
    client.cookies.update(response.cookies)


def _first_backend() -> str:
    for path in settings.AUTHENTICATION_BACKENDS:
        if hasattr(load_backend(path), "get_user"):
            return str(path)
    raise SessionNotAvailableError("no authentication backend in AUTHENTICATION_BACKENDS can load users")
