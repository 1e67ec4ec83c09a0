"""``sessionward sessions …`` on a store that does not exist creates nothing and says so.

Only ``sessionward store init`` creates a store. Every other command, given a URL where
there is none (a typo, the wrong working directory), used to create the SQLite file's
folder and the file (and answer "no such table"), or print zeros for a file store
directory that does not exist. Now it creates no folder, no file and no table, prints one
line saying there is no store there and how to make one, and exits 1.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sessionward.cli import main

from .support import tree

COMMANDS = [
    pytest.param(("sessions", "stats"), id="stats"),
    pytest.param(("sessions", "stats", "--json"), id="stats-json"),
    pytest.param(("sessions", "list", "--user", "alice"), id="list"),
    pytest.param(("sessions", "revoke", "0123456789abcdef"), id="revoke"),
    pytest.param(("sessions", "revoke-user", "alice"), id="revoke-user"),
    pytest.param(("sessions", "purge"), id="purge"),
]
ADVICE = "; run `sessionward store init --store URL`"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"SESSIONWARD_STORE_CREATE_SCHEMA": "true"})


def assert_no_store_line(result: Result, url: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # not an uncaught exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: no session store at {url} (")
    assert lines[0].endswith(ADVICE)
    assert result.stdout == ""


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "where",
    [
        pytest.param("sqlite:///{root}/missing/dir/sessions.db", id="sqlite-missing-folder"),
        pytest.param("sqlite:///{root}/sessions.db", id="sqlite-missing-file"),
        pytest.param("file://{root}/missing/store", id="file-missing-folder"),
        pytest.param("file://{root}", id="file-empty-folder"),
    ],
)
def test_command_on_a_store_that_does_not_exist_creates_nothing(
    command: tuple[str, ...], where: str, tmp_path: Path
) -> None:
    url = where.format(root=tmp_path)
    result = run(*command, "--store", url)
    assert_no_store_line(result, url)
    assert tree(tmp_path) == set()
    # `store init` is the one command that makes a store; then the command finds it.
    assert run("store", "init", "--store", url).exit_code == 0
    assert "no session store" not in run(*command, "--store", url).output


def test_stats_on_a_sqlite_file_without_the_schema_creates_no_table(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE unrelated (x INTEGER)")
    connection.close()
    url = f"sqlite:///{path}"
    result = run("sessions", "stats", "--store", url)
    assert_no_store_line(result, url)
    with sqlite3.connect(path) as connection:
        names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    connection.close()
    assert names == {"unrelated"}


@pytest.mark.postgres
def test_stats_on_an_empty_postgres_database_creates_no_table(empty_postgres: str) -> None:
    result = run("sessions", "stats", "--store", empty_postgres)
    assert_no_store_line(result, empty_postgres)
    assert "the schema is missing" in result.stderr
    # `store init` is the one command that makes it; then the same command works.
    assert run("store", "init", "--store", empty_postgres).exit_code == 0
    assert run("sessions", "stats", "--store", empty_postgres).exit_code == 0
