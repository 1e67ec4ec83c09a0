"""The core is sans-I/O: importing it loads no web framework and no store client."""

from __future__ import annotations

import subprocess
import sys

CORE_MODULES = [
    "sessionward",
    "sessionward.config",
    "sessionward.ids",
    "sessionward.cookies",
    "sessionward.session",
    "sessionward.lifecycle",
    "sessionward.engine",
    "sessionward.events",
    "sessionward.firewall",
    "sessionward.records",
    "sessionward.clientinfo",
]
FORBIDDEN = [
    "starlette",
    "fastapi",
    "flask",
    "werkzeug",
    "sqlalchemy",
    "redis",
    "asyncpg",
    "asyncmy",
    "aiosqlite",
    "uvicorn",
    "asyncio",
    "socket",
    "pickle",
]


def test_core_imports_no_framework_store_client_or_pickle() -> None:
    code = (
        "import sys\n"
        f"import {', '.join(CORE_MODULES)}\n"
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"core imported: {result.stdout.strip()}"
