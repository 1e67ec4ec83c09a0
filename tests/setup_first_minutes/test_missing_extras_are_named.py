"""A missing optional dependency is one line naming the pip extra that brings it, never a traceback.

Each test runs sessionward in a fresh interpreter whose import system finds nothing for
the packages an extra would have installed: a base install (``pip install sessionward``),
or one with only some extras.
"""

from __future__ import annotations

import json

import pytest

from .support import CLI, EXTRA_PACKAGES, run_without

ONLY_SQLITE_EXTRA = tuple(p for p in EXTRA_PACKAGES if p not in ("sqlalchemy", "aiosqlite"))


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize(
    ("url", "extra"),
    [
        ("postgresql://app@127.0.0.1/app", "postgres"),
        ("postgres://app@127.0.0.1/app", "postgres"),
        ("postgresql+asyncpg://app@127.0.0.1/app", "postgres"),
        ("mysql://app@127.0.0.1/app", "mysql"),
        ("mariadb://app@127.0.0.1/app", "mysql"),
        ("sqlite:///./never/created.db", "sqlite"),
        ("redis://127.0.0.1:6379/0", "redis"),
        ("rediss://127.0.0.1:6380/0", "redis"),
        ("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", "redis"),
        ("rediss+cluster://127.0.0.1:7000", "redis"),
        ("redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/0", "redis"),
    ],
)
def test_base_install_store_url_names_its_extra_in_one_line(url: str, extra: str) -> None:
    result = run_without(EXTRA_PACKAGES, CLI, "sessions", "stats", "--store", url)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert line.startswith("error: --store / SESSIONWARD_STORE: ")
    assert f"pip install 'sessionward[{extra}]'" in line
    assert "is not installed" in line


@pytest.mark.parametrize(
    ("url", "driver", "extra"),
    [("postgresql://app@127.0.0.1/app", "asyncpg", "postgres"), ("mariadb://app@127.0.0.1/app", "asyncmy", "mysql")],
)
def test_sqlite_extra_only_server_url_names_the_missing_driver_and_its_extra(url: str, driver: str, extra: str) -> None:
    result = run_without(ONLY_SQLITE_EXTRA, CLI, "sessions", "stats", "--store", url)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert f"{driver} is not installed; pip install 'sessionward[{extra}]'" in line


def test_sync_stores_name_their_own_driver_and_extra() -> None:
    # The WSGI stores run on psycopg, PyMySQL and sqlite3: with only the async drivers
    # installed, the message names the blocking one that is missing.
    code = """
import json
from sessionward._sync.stores import open_store
from sessionward.core.errors import ConfigError
said = {}
for url in ("postgresql://a@127.0.0.1/a", "postgres://a@127.0.0.1/a", "mysql://a@127.0.0.1/a", "mariadb://a@127.0.0.1/a"):
    try:
        open_store(url)
    except ConfigError as error:
        said[url] = str(error)
print(json.dumps(said))
"""
    result = run_without(("psycopg", "pymysql"), code)
    assert result.returncode == 0, result.stderr
    said = json.loads(result.stdout)
    assert said == {
        "postgresql://a@127.0.0.1/a": "SESSIONWARD_STORE: the PostgreSQL store is not available: "
        "psycopg is not installed; pip install 'sessionward[postgres]'",
        "postgres://a@127.0.0.1/a": "SESSIONWARD_STORE: the PostgreSQL store is not available: "
        "psycopg is not installed; pip install 'sessionward[postgres]'",
        "mysql://a@127.0.0.1/a": "SESSIONWARD_STORE: the MySQL/MariaDB store is not available: "
        "pymysql is not installed; pip install 'sessionward[mysql]'",
        "mariadb://a@127.0.0.1/a": "SESSIONWARD_STORE: the MySQL/MariaDB store is not available: "
        "pymysql is not installed; pip install 'sessionward[mysql]'",
    }


def test_sync_store_on_a_base_install_names_the_extra() -> None:
    code = """
from sessionward._sync.stores import open_store
from sessionward.core.errors import ConfigError
try:
    open_store("sqlite:///./never/created.db")
except ConfigError as error:
    print(error)
"""
    result = run_without(EXTRA_PACKAGES, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "SESSIONWARD_STORE: the SQLite store is not available: "
        "sqlalchemy is not installed; pip install 'sessionward[sqlite]'"
    )


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "rediss://127.0.0.1:6380/0",
        "redis+cluster://127.0.0.1:7000,127.0.0.1:7001",
        "rediss+cluster://127.0.0.1:7000",
        "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/0",
    ],
)
def test_sync_redis_store_on_a_base_install_names_the_redis_extra(url: str) -> None:
    # The blocking stores (WSGI, Flask, Django) open Redis through their own open_store.
    code = f"""
from sessionward._sync.stores import open_store
from sessionward.core.errors import ConfigError
try:
    open_store({url!r})
except ConfigError as error:
    print(error)
"""
    result = run_without(EXTRA_PACKAGES, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "SESSIONWARD_STORE: the Redis store is not available: redis is not installed; pip install 'sessionward[redis]'"
    )


@pytest.mark.parametrize(
    ("statement", "blocked", "extra"),
    [
        ("import sessionward.flask", "flask", "flask"),
        ("import sessionward.starlette", "starlette", "starlette"),
        ("import sessionward.asgi.metrics", "prometheus_client", "prometheus"),
        ("import sessionward.demo", "starlette", "demo"),
        ("import sessionward.litestar", "litestar", "litestar"),
        ("import sessionward.quart", "quart", "quart"),
        # What settings.py names: Django imports the app, the middleware and SESSION_ENGINE's module.
        ("import sessionward.django.apps", "django", "django"),
        ("from sessionward.django.middleware import SessionwardMiddleware", "django", "django"),
        ("from sessionward.django.backend import SessionStore", "django", "django"),
        ("from sessionward.django import session_of", "django", "django"),
        ("import sessionward.django.testing", "django", "django"),
    ],
)
def test_integration_without_its_package_raises_import_error_naming_the_extra(
    statement: str, blocked: str, extra: str
) -> None:
    code = f"""
try:
    {statement}
except ImportError as error:
    print(error)
"""
    result = run_without((blocked,), code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(f": {blocked} is not installed; pip install 'sessionward[{extra}]'")


def test_without_fastapi_starlette_helpers_work_and_session_dep_names_the_extra() -> None:
    code = """
from sessionward.starlette import get_session
print(get_session.__name__)
try:
    from sessionward.starlette import SessionDep
except ImportError as error:
    print(error)
"""
    result = run_without(("fastapi",), code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "get_session",
        "sessionward.starlette.SessionDep is not available: fastapi is not installed; "
        "pip install 'sessionward[fastapi]'",
    ]


@pytest.mark.parametrize(
    ("args", "blocked", "message"),
    [
        (
            ("audit", "http://127.0.0.1:9/"),
            ("httpx",),
            "error: sessionward audit is not available: httpx is not installed; pip install 'sessionward[audit]'",
        ),
        (
            ("demo", "--store", "memory://"),
            ("starlette",),
            "error: the demo is not available: starlette is not installed; pip install 'sessionward[demo]'",
        ),
        (
            ("demo", "--store", "memory://"),
            ("uvicorn",),
            "error: the demo is not available: uvicorn is not installed; pip install 'sessionward[demo]'",
        ),
    ],
)
def test_cli_verb_without_its_extra_fails_in_one_line(args: tuple[str, ...], blocked: tuple[str], message: str) -> None:
    result = run_without(blocked, CLI, *args)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == message


def test_the_command_line_without_its_extra_names_the_cli_extra_in_one_line() -> None:
    result = run_without(("click", "rich"), CLI, "sessions", "stats")
    assert result.returncode == 2
    assert one_line(result.stderr) == (
        "error: the sessionward command is not available: click is not installed; pip install 'sessionward[cli]'"
    )


def test_the_library_loads_no_command_line_packages() -> None:
    # An application pays for Click and Rich only when it runs the command line.
    code = (
        "import sys, sessionward\n"
        "from sessionward import SessionManager, open_store, protect\n"
        "import sessionward.sync, sessionward.wsgi\n"
        "print(sorted(m for m in ('click', 'rich') if m in sys.modules))"
    )
    result = run_without((), code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
