"""The Django project the tests drive: its URLs and views (``ROOT_URLCONF``)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, login, logout, update_session_auth_hash  # type: ignore[import-untyped]
from django.http import HttpRequest, HttpResponse, JsonResponse  # type: ignore[import-untyped]
from django.middleware.csrf import get_token  # type: ignore[import-untyped]
from django.urls import path, re_path  # type: ignore[import-untyped]

from sessionward.core.records import EndReason
from sessionward.django import exchange_of, session_of

REACHED: list[str] = []
"""Paths of the requests that reached a view (the firewall tests read it)."""


def csrf(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"token": get_token(request)})


def whoami(request: HttpRequest) -> JsonResponse:
    session = session_of(request)
    user = request.user.get_username() if request.user.is_authenticated else None
    return JsonResponse({"user": user, "data": dict(session.items()), "handle": session.handle})


def set_values(request: HttpRequest) -> JsonResponse:
    for name, value in request.GET.items():
        request.session[name] = value
    return JsonResponse({"ok": True})


def sign_in(request: HttpRequest) -> JsonResponse:
    name = request.POST["username"]
    throttle = session_of(request).throttle
    throttle.check(name)  # LoginThrottledError: answered 429 by the middleware
    user = authenticate(request, username=name, password=request.POST["password"])
    if user is None:
        throttle.failed(name)
        return JsonResponse({"error": "invalid_credentials"}, status=401)
    throttle.succeeded(name)
    login(request, user)
    return JsonResponse({"ok": True, "key": request.session.session_key is not None})


def sign_out(request: HttpRequest) -> JsonResponse:
    logout(request)
    return JsonResponse({"ok": True})


def change_password(request: HttpRequest) -> JsonResponse:
    user = request.user
    user.set_password(request.POST["new"])
    user.save()
    update_session_auth_hash(request, user)
    return JsonResponse({"ok": True})


def sessions(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"sessions": [info.as_dict() for info in session_of(request).list_sessions()]})


def revoke(request: HttpRequest, handle: str) -> JsonResponse:
    return JsonResponse({"revoked": session_of(request).revoke(handle)})


def revoke_others(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ended": session_of(request).revoke_others()})


def server_error(request: HttpRequest) -> HttpResponse:
    request.session["during_error"] = "yes"
    return HttpResponse("failed", status=500)


def set_expiry(request: HttpRequest) -> JsonResponse:
    value: Any = request.GET["value"]
    request.session["something"] = "kept"
    request.session.set_expiry(None if value == "none" else int(value))
    return JsonResponse({"age": request.session.get_expiry_age()})


def expiry(request: HttpRequest) -> JsonResponse:
    session = request.session
    return JsonResponse(
        {
            "age": session.get_expiry_age(),
            "date": session.get_expiry_date().timestamp(),
            "browser_close": session.get_expire_at_browser_close(),
        }
    )


def cycle(request: HttpRequest) -> JsonResponse:
    request.session.cycle_key()
    return JsonResponse({"ok": True})


def grow(request: HttpRequest) -> JsonResponse:
    cart = request.session.setdefault("cart", [])
    cart.append(request.GET.get("item", "x" * 100))
    return JsonResponse({"items": len(cart)})


def raced(request: HttpRequest) -> HttpResponse:
    """A concurrent request ends the session while this one runs; then this one cycles its key."""
    exchange = exchange_of(request)
    record = exchange.record
    assert record is not None
    manager = exchange.manager
    tomb = manager.engine.plan_end(record.key, record.meta.user, EndReason.REVOKED, exchange.now)
    manager.store.end_following(tomb, exchange.now)
    request.session.cycle_key()
    return HttpResponse("not reached")


def caught(request: HttpRequest, path: str) -> HttpResponse:
    REACHED.append(request.path)
    return HttpResponse("reached")


async def async_session(request: HttpRequest) -> JsonResponse:
    session = request.session
    await session.aset("counter", int(await session.aget("counter", 0)) + 1)
    return JsonResponse({"counter": await session.aget("counter"), "has": await session.ahas_key("counter")})


urlpatterns = [
    path("csrf", csrf),
    path("whoami", whoami),
    path("api/me", whoami),
    path("set", set_values),
    path("login", sign_in),
    path("logout", sign_out),
    path("password", change_password),
    path("sessions", sessions),
    path("revoke/<str:handle>", revoke),
    path("revoke-others", revoke_others),
    path("error", server_error),
    path("set-expiry", set_expiry),
    path("expiry", expiry),
    path("cycle", cycle),
    path("grow", grow),
    path("async", async_session),
    path("api/race", raced),
    re_path(r"^(?P<path>x/.*)$", caught),
]
