"""Helpers: URLs, running sessionward without some packages, what a command left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def with_scheme(url: str, scheme: str) -> str:
    """Return ``url`` with another scheme (``postgres``, ``mariadb+pymysql``…)."""
    return scheme + url[url.index("://") :]


# -- an install without some packages ------------------------------------------------------------

_WITHOUT = """
import sys


class _NotInstalled:
    # Finds nothing for the blocked packages, as if pip had never installed them.
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


BLOCKED = frozenset(sys.argv[1].split(","))
sys.meta_path.insert(0, _NotInstalled())
sys.argv = ["sessionward", *sys.argv[2:]]
"""

EXTRA_PACKAGES = (
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "psycopg",
    "asyncmy",
    "pymysql",
    "redis",
    "starlette",
    "fastapi",
    "flask",
    "litestar",
    "quart",
    "django",
    "prometheus_client",
    "httpx",
    "uvicorn",
    "jinja2",
    "argon2",
)
"""What the extras install, none of which ``pip install 'sessionward[cli]'`` brings.

The command-line tests run on that install: the library with its command line and no store,
framework or tool extra. ``click`` and ``rich`` (the ``cli`` extra) are blocked by the tests
of a bare ``pip install sessionward``.
"""


def run_without(blocked: tuple[str, ...], code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where the packages ``blocked`` cannot be imported.

    ``args`` become ``sys.argv[1:]`` (``sys.argv[0]`` is ``sessionward``), so
    ``code="from sessionward.cli import main; main()"`` runs the command line.
    """
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT + code, ",".join(blocked), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
        check=False,
    )


CLI = "from sessionward.cli import main; main()"


# -- what a command left behind ---------------------------------------------------------------------


def tree(root: Path) -> set[str]:
    """Every file and directory under ``root``, relative to it."""
    return {str(path.relative_to(root)) for path in root.rglob("*")}
