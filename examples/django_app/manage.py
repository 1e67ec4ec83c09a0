#!/usr/bin/env python
"""A Django project on sessionward: ``request.session`` and ``django.contrib.auth`` kept by sessionward.

From this folder::

    python manage.py migrate            # Django's auth tables (db.sqlite3 here)
    python manage.py createsuperuser    # someone to sign in as
    python manage.py runserver          # http://127.0.0.1:8000/

Sign in from two browsers and open "Devices" to see (and end) the other session;
change the password in one and the other is signed out. The sessions live in
``.sessionward/sessions.db`` (``SESSIONWARD_STORE`` to put them elsewhere); every
``SESSIONWARD_*`` variable applies. What the project configures is in
``exampleproject/settings.py``.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exampleproject.settings")
    # Development only: let the SQLite store create its tables on first use
    # (in production, run `sessionward store init --store URL` once instead).
    os.environ.setdefault("SESSIONWARD_STORE_CREATE_SCHEMA", "true")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
