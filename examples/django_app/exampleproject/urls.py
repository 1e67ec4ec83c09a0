"""The example's pages: sign in, the session's figures, devices, password change, sign out.

Nothing here calls sessionward for the sign-in itself: ``django.contrib.auth.login()``
does it (a new session ID, the session registered under the user, the policy's
``max_sessions``), ``logout()`` ends the session, and ``update_session_auth_hash()``
after a password change ends the user's other sessions.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template import engines
from django.urls import path

from sessionward.core.errors import LoginRefusedError
from sessionward.django import session_of

PAGE = engines["django"].from_string(
    """<!doctype html><title>sessionward + Django</title>
{% if user.is_authenticated %}
<p>Signed in as {{ user.get_username }}: session {{ handle }},
{{ status.remaining_idle_s|floatformat:0 }} s before it times out if idle,
{{ status.remaining_absolute_s|floatformat:0 }} s at most.</p>
{% if devices is not None %}<h2>Devices</h2><ul>{% for device in devices %}
<li>{{ device.user_agent|default:"?" }} from {{ device.ip|default:"?" }}{% if device.current %} (this one)
{% else %}<form method="post" action="/devices/{{ device.handle }}/end/">{% csrf_token %}<button>End</button></form>
{% endif %}</li>{% endfor %}</ul>{% else %}<p><a href="/devices/">Devices</a></p>{% endif %}
<form method="post" action="/password/">{% csrf_token %}{{ password_form.as_p }}<button>Change password</button></form>
<form method="post" action="/logout/">{% csrf_token %}<button>Sign out</button></form>
{% else %}<p>{{ message }}</p>
<form method="post" action="/login/">{% csrf_token %}{{ form.as_p }}<button>Sign in</button></form>{% endif %}"""
)


def page(request: HttpRequest, **context: Any) -> HttpResponse:
    """Render the one page, with the session's figures when someone is signed in."""
    session = session_of(request)
    context.update(user=request.user)
    context.setdefault("form", AuthenticationForm(request))
    if request.user.is_authenticated:
        context.setdefault("password_form", PasswordChangeForm(request.user))
        context.update(handle=session.handle, status=session.status())
    return HttpResponse(PAGE.render(context, request))


def home(request: HttpRequest) -> HttpResponse:
    reason = request.GET.get("reason")
    return page(request, message=f"Your session ended ({reason})." if reason else "Sign in.")


def sign_in(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return home(request)
    form = AuthenticationForm(request, data=request.POST)
    if not form.is_valid():
        return page(request, form=form, message="Wrong user name or password.")
    try:
        login(request, form.get_user())  # a new session ID, registered under the user
    except LoginRefusedError:
        return page(request, message="You are signed in on too many devices already.")
    return HttpResponseRedirect("/")


def sign_out(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    logout(request)  # the session ends server-side; its cookie goes
    return HttpResponseRedirect("/")


def devices(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return HttpResponseRedirect("/login/")
    return page(request, devices=session_of(request).list_sessions())


def end_device(request: HttpRequest, handle: str) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    session_of(request).revoke(handle)  # only ever one of the signed-in user's own sessions
    return HttpResponseRedirect("/devices/")


def change_password(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not request.user.is_authenticated:
        return HttpResponseRedirect("/login/")
    form = PasswordChangeForm(request.user, request.POST)
    if not form.is_valid():
        return page(request, password_form=form)
    user = form.save()
    update_session_auth_hash(request, user)  # ends the user's other sessions, keeps this one
    return HttpResponseRedirect("/")


urlpatterns = [
    path("", home),
    path("login/", sign_in),
    path("logout/", sign_out),
    path("devices/", devices),
    path("devices/<str:handle>/end/", end_device),
    path("password/", change_password),
]
