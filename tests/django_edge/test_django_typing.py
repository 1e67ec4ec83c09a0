"""A user's typed Django app passes ``mypy --strict`` with sessionward's own types, no django-stubs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

USER_APP = """
from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from sessionward import EndReason, SessionPolicy, TimeoutPolicy
from sessionward.django import SessionStore, exchange_of, session_of
from sessionward.django.testing import force_login

SESSIONWARD_POLICY = SessionPolicy(timeouts=TimeoutPolicy(idle_timeout_s=900))


def devices(request: HttpRequest) -> JsonResponse:
    session: SessionStore = session_of(request)
    listed = [info.as_dict() for info in session.list_sessions()]
    ended: int = session.revoke_others(EndReason.REVOKED)
    handle: str | None = session.handle
    remaining: float | None = session.status().remaining_idle_s
    user: str | None = exchange_of(request).session.user
    session.set_expiry(300)
    age: int = session.get_expiry_age()
    body = {"sessions": listed, "ended": ended, "handle": handle, "left": remaining, "age": age, "user": user}
    return JsonResponse(body)


def sign_in_for_a_test(client: object, user: object) -> None:
    force_login(client, user)
"""

MISTAKES = """
from django.http import HttpRequest

from sessionward.django import session_of


def view(request: HttpRequest) -> None:
    handle: int = session_of(request).handle
    session_of(request).revoke(42)
"""

CONFIG = """
[mypy]
strict = True

[mypy-django.*]
ignore_missing_imports = True
"""


def test_a_typed_user_app_passes_mypy_strict_and_mistakes_are_caught(tmp_path: Path) -> None:
    (tmp_path / "user_app.py").write_text(textwrap.dedent(USER_APP))
    (tmp_path / "mistakes.py").write_text(textwrap.dedent(MISTAKES))
    (tmp_path / "mypy.ini").write_text(CONFIG)

    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), "user_app.py", "mistakes.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    errors = [line for line in checked.stdout.splitlines() if ": error:" in line]
    assert not [line for line in errors if line.startswith("user_app.py")], checked.stdout
    assert [line.split(":")[1] for line in errors] == ["8", "9"], checked.stdout
