"""A Django site signing in with ``django.contrib.auth``'s views, for ``sessionward audit``.

Django's settings are process-global (and the suite's Django tests configure their own),
so the site runs in a child process: ``real_framework_sites.django_server`` starts this
file as a script (``python django_site.py DIRECTORY PORT``, the test account in
``SESSIONWARD_TARGET_USER`` / ``SESSIONWARD_TARGET_PASSWORD``).

The project is what ``django-admin startproject`` makes, cut to what signing in needs:
startproject's middleware list (less messages), database sessions on SQLite (Django's
default ``SESSION_ENGINE``), ``include("django.contrib.auth.urls")`` (``LoginView`` and
``LogoutView``), a ``login_required`` profile page with the logout form, every session
and cookie setting left at its default. One deviation, for speed only: passwords are
hashed with MD5 (PBKDF2's 1,000,000 rounds make the audit's ~140 sign-ins take minutes);
sessions don't depend on the hasher.

What the defaults get wrong, as the audit sees them: the cookie name ``sessionid``, no
``Secure`` (``SESSION_COOKIE_SECURE=False``), no ``__Host-`` prefix, a two-week persistent
cookie (``SESSION_COOKIE_AGE``), no Content-Security-Policy. What they get right:
``HttpOnly``, ``SameSite=Lax``, a new ID at login (``cycle_key``), the session deleted at
logout, an unknown ID never adopted, ``nosniff`` and ``X-Frame-Options: DENY``,
``Cache-Control: no-cache, no-store…`` on the login pages.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any

LOGIN_PAGE = "/accounts/login/"
PROFILE_PAGE = "/accounts/profile/"

TEMPLATES = {
    # The template Django's documentation shows for LoginView.
    "registration/login.html": """<!doctype html><title>Log in</title>
<form method="post" action="{% url 'login' %}" id="login-form">
{% csrf_token %}
{{ form.as_p }}
<input type="submit" value="Log in">
<input type="hidden" name="next" value="{{ next }}">
</form>""",
    "registration/logged_out.html": '<!doctype html><title>Logged out</title><a href="/accounts/login/">Log in</a>',
    "profile.html": """<!doctype html><title>Profile</title><p>Signed in as {{ user.get_username }}</p>
<form method="post" action="{% url 'logout' %}">{% csrf_token %}<button type="submit">Log out</button></form>""",
}


def _configure(directory: Path, username: str, password: str) -> Any:
    """Configure Django, create the database and the user; return the WSGI application."""
    import django  # type: ignore[import-untyped]
    from django.conf import settings  # type: ignore[import-untyped]

    settings.configure(
        DEBUG=False,
        SECRET_KEY=secrets.token_hex(32),
        ALLOWED_HOSTS=["127.0.0.1"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions"],
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(directory / "django.db")}},
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                    ],
                    "loaders": [("django.template.loaders.locmem.Loader", TEMPLATES)],
                },
            }
        ],
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        LOGIN_REDIRECT_URL=PROFILE_PAGE,
        USE_TZ=True,
    )
    django.setup()

    from django.contrib.auth.decorators import login_required  # type: ignore[import-untyped]
    from django.contrib.auth.models import User  # type: ignore[import-untyped]
    from django.core.management import call_command  # type: ignore[import-untyped]
    from django.core.wsgi import get_wsgi_application  # type: ignore[import-untyped]
    from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped]
    from django.shortcuts import render  # type: ignore[import-untyped]
    from django.urls import include, path  # type: ignore[import-untyped]

    def home(request: HttpRequest) -> HttpResponse:
        return HttpResponse(f'<a href="{LOGIN_PAGE}">Log in</a>')

    @login_required  # type: ignore[untyped-decorator]
    def profile(request: HttpRequest) -> HttpResponse:
        return render(request, "profile.html")

    # ROOT_URLCONF is this module (run as __main__): Django reads urlpatterns from it.
    globals()["urlpatterns"] = [
        path("", home),
        path(PROFILE_PAGE.strip("/") + "/", profile),
        path("accounts/", include("django.contrib.auth.urls")),
    ]
    call_command("migrate", verbosity=0)
    User.objects.create_user(username, password=password)
    return get_wsgi_application()


def main() -> None:
    """Serve the site on 127.0.0.1:PORT with werkzeug's threaded server until terminated."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass  # one line per request would fill the log for nothing

    directory, port = Path(sys.argv[1]), int(sys.argv[2])
    app = _configure(directory, os.environ["SESSIONWARD_TARGET_USER"], os.environ["SESSIONWARD_TARGET_PASSWORD"])
    make_server("127.0.0.1", port, app, threaded=True, request_handler=QuietHandler).serve_forever()


if __name__ == "__main__":
    main()
