"""``--help`` everywhere; bad input gives one ``error:`` line and exit 2, failures exit 1, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sessionward.cli import main

COMMANDS = [
    [],
    ["demo"],
    ["store"],
    ["store", "init"],
    ["sessions"],
    ["sessions", "list"],
    ["sessions", "revoke"],
    ["sessions", "revoke-user"],
    ["sessions", "purge"],
    ["sessions", "stats"],
    ["audit"],
]


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def assert_one_line_error(result: Result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "sessionward")
def test_every_command_has_help(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: sessionward")


@pytest.mark.parametrize("group", [[], ["sessions"], ["store"]], ids=lambda c: " ".join(c) or "sessionward")
def test_a_bare_group_prints_its_help(group: list[str]) -> None:
    result = invoke(*group)
    assert result.exit_code == 0
    assert "Commands:" in result.output


@pytest.mark.parametrize(
    "arguments",
    [
        ["--no-such-option"],
        ["no-such-command"],
        ["sessions", "list"],  # --user is required
        ["sessions", "list", "--user"],
        ["sessions", "revoke"],
        ["sessions", "revoke", "not-a-handle"],
        ["sessions", "revoke", "ABCDEF0123456789"],  # handles are lower-case hex
        ["sessions", "purge", "--batch-size", "0"],
        ["demo", "--port", "0"],
        ["demo", "--port", "eighty"],
        ["audit"],
        ["audit", "ftp://example.test/"],
        ["audit", "not a url"],
        ["audit", "http://127.0.0.1:9/", "--username", "alice"],  # password missing
        ["audit", "http://127.0.0.1:9/", "--login-path", "api/login"],
        ["audit", "http://127.0.0.1:9/", "--samples", "1"],
    ],
    ids=lambda a: " ".join(a) or "none",
)
def test_bad_arguments_give_one_error_line_and_exit_2(arguments: list[str]) -> None:
    assert_one_line_error(invoke(*arguments), 2)


def test_an_unsupported_store_url_is_a_configuration_error(tmp_path: Path) -> None:
    line = assert_one_line_error(invoke("sessions", "stats", "--store", "gopher://x"), 2)
    assert "--store" in line
    assert "sqlite://" in line


def test_the_store_url_comes_from_sessionward_store(tmp_path: Path) -> None:
    line = assert_one_line_error(invoke("sessions", "stats", env={"SESSIONWARD_STORE": "gopher://y"}), 2)
    assert "gopher://y" in line


def test_a_malformed_policy_variable_is_named_and_exits_2(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    result = invoke("sessions", "revoke", "0123456789abcdef", "--store", url, env={"SESSIONWARD_IDLE_TIMEOUT": "soon"})
    assert "SESSIONWARD_IDLE_TIMEOUT" in assert_one_line_error(result, 2)


def test_an_unreachable_store_is_a_runtime_failure() -> None:
    result = invoke("sessions", "stats", "--store", "postgresql://postgres@127.0.0.1:1/nowhere")
    assert "unavailable" in assert_one_line_error(result, 1)


def test_a_store_without_schema_says_to_run_store_init(tmp_path: Path) -> None:
    result = invoke("sessions", "list", "--user", "alice", "--store", f"sqlite:///{tmp_path / 'fresh.db'}")
    assert "sessionward store init" in assert_one_line_error(result, 1)


def test_an_unreachable_site_is_a_runtime_failure() -> None:
    from cli_sites import free_port

    result = invoke("audit", f"http://127.0.0.1:{free_port()}/")
    assert "cannot reach" in assert_one_line_error(result, 1)


def test_store_passwords_are_never_printed(tmp_path: Path) -> None:
    result = invoke("store", "init", "--store", "postgresql://admin:hunter2@127.0.0.1:1/db")
    assert result.exit_code == 1
    assert "hunter2" not in result.output


def test_the_console_script_runs_main_in_a_real_process() -> None:
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "sessionward"]
    assert script.value == "sessionward.cli:main"
    process = subprocess.run(
        [sys.executable, "-c", "from sessionward.cli import main; main()", "sessions", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert process.returncode == 2
    assert process.stderr.strip().splitlines() == [
        "error: Missing option '--user' / '-u'. (see 'sessionward sessions list --help')"
    ]
    assert process.stdout == ""
