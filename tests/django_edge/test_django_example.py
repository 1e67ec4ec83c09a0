"""The example project (examples/django_app) passes Django's checks and does what its docstring says."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "django_app"

SCRIPT = """
import django

django.setup()
from django.core.management import call_command
from django.contrib.auth.models import User
from django.test import Client

call_command("check", fail_level="WARNING")
call_command("migrate", verbosity=0)
User.objects.create_user("alice", password="first-pass-phrase")
laptop, phone = Client(), Client()
for client in (laptop, phone):
    signed_in = client.post("/login/", {"username": "alice", "password": "first-pass-phrase"})
    assert signed_in.status_code == 302, signed_in.content
    assert b"Signed in as alice" in client.get("/").content
assert laptop.get("/devices/").content.count(b"<li>") == 2

changed = laptop.post(
    "/password/",
    {"old_password": "first-pass-phrase", "new_password1": "second-pass-phrase", "new_password2": "second-pass-phrase"},
)
assert changed.status_code == 302, changed.content
assert b"Signed in as alice" in laptop.get("/").content
assert b"Sign in" in phone.get("/").content
laptop.post("/logout/")
assert b"Sign in" in laptop.get("/").content
print("example ok")
"""


def test_the_example_signs_in_lists_devices_and_a_password_change_ends_the_others(tmp_path: Path) -> None:
    environment = {
        **{name: value for name, value in os.environ.items() if not name.startswith("SESSIONWARD_")},
        "DJANGO_SETTINGS_MODULE": "exampleproject.settings",
        "DJANGO_DATABASE": str(tmp_path / "db.sqlite3"),
        "SESSIONWARD_STORE": f"sqlite:///{tmp_path}/sessions.db",
        "SESSIONWARD_STORE_CREATE_SCHEMA": "true",
    }

    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT)],
        cwd=EXAMPLE,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == "example ok"
