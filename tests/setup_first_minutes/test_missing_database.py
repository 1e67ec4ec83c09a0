"""A database server that answers, but has no database of the URL's name: say to create it.

``sessionward store init`` makes tables, not databases. Pointed at a PostgreSQL or MariaDB
server without the URL's database, it used to ask "(is the store running, and was
`sessionward store init` run?)": the command being run was that very one, and the server
was running. It now names the step that is missing: ``createdb NAME`` or
``CREATE DATABASE NAME``, then ``store init``.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest
from click.testing import CliRunner, Result

from sessionward.cli import main
from support.services import private_database_name

from .support import with_scheme

SERVERS = [
    pytest.param("postgresql", "postgres_url", "`createdb {name}`", id="postgresql", marks=pytest.mark.postgres),
    pytest.param(
        "postgresql+psycopg", "postgres_url", "`createdb {name}`", id="postgresql+psycopg", marks=pytest.mark.postgres
    ),
    pytest.param("mysql", "mysql_url", "`CREATE DATABASE {name}`", id="mysql", marks=pytest.mark.mysql),
    pytest.param(
        "mariadb+pymysql", "mysql_url", "`CREATE DATABASE {name}`", id="mariadb+pymysql", marks=pytest.mark.mysql
    ),
]


def _one_error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def _missing(request: pytest.FixtureRequest, scheme: str, server: str) -> tuple[str, str]:
    """Return a URL on the real server naming a database that does not exist, and that name."""
    name = private_database_name()  # never created
    url = str(request.getfixturevalue(server))
    return with_scheme(urlunsplit(urlsplit(url)._replace(path=f"/{name}")), scheme), name


@pytest.mark.parametrize(("scheme", "server", "command"), SERVERS)
def test_store_init_on_a_missing_database_says_to_create_it_first(
    request: pytest.FixtureRequest, scheme: str, server: str, command: str
) -> None:
    url, name = _missing(request, scheme, server)

    line = _one_error_line(CliRunner().invoke(main, ["store", "init", "--store", url]))

    assert f"create the database first: {command.format(name=name)}" in line
    assert "was `sessionward store init` run" not in line


@pytest.mark.parametrize(("scheme", "server", "command"), SERVERS)
def test_another_command_on_a_missing_database_says_to_create_it_then_init(
    request: pytest.FixtureRequest, scheme: str, server: str, command: str
) -> None:
    url, name = _missing(request, scheme, server)

    line = _one_error_line(CliRunner().invoke(main, ["sessions", "stats", "--store", url]))

    assert f"create the database first: {command.format(name=name)}, then run `sessionward store init`" in line


def test_store_init_on_a_server_that_does_not_answer_asks_only_whether_it_runs() -> None:
    # Port 1: nothing listens. Whether init was run is beside the point for init itself.
    line = _one_error_line(CliRunner().invoke(main, ["store", "init", "--store", "postgresql://u@127.0.0.1:1/db"]))

    assert line.endswith("(is the store running?)")
