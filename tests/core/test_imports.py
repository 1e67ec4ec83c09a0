"""The core is sans-I/O: importing it loads no web framework and no store client."""

from __future__ import annotations

import subprocess
import sys

CORE_MODULES = [
    "sessionward",
    "sessionward.core.config",
    "sessionward.core.ids",
    "sessionward.core.cookies",
    "sessionward.core.session",
    "sessionward.core.lifecycle",
    "sessionward.core.engine",
    "sessionward.core.events",
    "sessionward.core.firewall",
    "sessionward.core.records",
    "sessionward.core.clientinfo",
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
