"""The settings a Django project writes to keep its sessions with sessionward.

The lines that matter are marked ``# sessionward``; the rest is a minimal Django project.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = os.environ.get("DJANGO_DEBUG", "true") == "true"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-" + "x" * 50)
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "sessionward.django",  # sessionward: in place of "django.contrib.sessions"
]

MIDDLEWARE = [
    "sessionward.django.middleware.SessionwardMiddleware",  # sessionward: first, in place of SessionMiddleware
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

SESSION_ENGINE = "sessionward.django.backend"  # sessionward
SESSIONWARD_STORE = os.environ.get("SESSIONWARD_STORE", f"sqlite:///{BASE_DIR}/.sessionward/sessions.db")  # sessionward
SESSIONWARD_IDLE_TIMEOUT = 900  # sessionward: any SESSIONWARD_* variable can be a setting
SESSIONWARD_MAX_SESSIONS = 3  # sessionward: a fourth sign-in ends the oldest session
# sessionward: the default cookie is __Host-sid, Secure; runserver speaks plain HTTP.
SESSIONWARD_COOKIE_SECURE = not DEBUG

ROOT_URLCONF = "exampleproject.urls"
WSGI_APPLICATION = "exampleproject.wsgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DATABASE", str(BASE_DIR / "db.sqlite3")),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": False}]
LOGIN_URL = "/login/"

# Security headers: Django's SecurityMiddleware (and X_FRAME_OPTIONS with its middleware).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
