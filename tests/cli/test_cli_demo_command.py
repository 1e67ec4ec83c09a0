"""``sessionward demo`` hands its options to ``sessionward.demo.serve``."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest
from click.testing import CliRunner

from sessionward.cli import main
from sessionward.cli.common import DEFAULT_STORE_URL


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Stand in for the demo package and record the calls to ``serve``."""
    calls: list[dict[str, Any]] = []
    fake = types.ModuleType("sessionward.demo")

    def serve(**options: Any) -> None:
        calls.append(options)

    fake.serve = serve  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sessionward.demo", fake)
    monkeypatch.delenv("SESSIONWARD_STORE", raising=False)
    return calls


def test_demo_defaults_to_localhost_8000_and_the_embedded_store(served: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert served == [{"host": "127.0.0.1", "port": 8000, "store_url": DEFAULT_STORE_URL, "debug": False}]
    assert DEFAULT_STORE_URL == "sqlite:///./.sessionward/sessions.db"


def test_demo_passes_host_port_store_and_debug(served: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(
        main,
        ["demo", "--host", "0.0.0.0", "--port", "8123", "--store", "memory://", "--debug"],
    )
    assert result.exit_code == 0, result.output
    assert served == [{"host": "0.0.0.0", "port": 8123, "store_url": "memory://", "debug": True}]


def test_demo_store_comes_from_sessionward_store(served: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(main, ["demo"], env={"SESSIONWARD_STORE": "redis://127.0.0.1:6379/3"})
    assert result.exit_code == 0, result.output
    assert served[0]["store_url"] == "redis://127.0.0.1:6379/3"


def test_demo_without_its_package_fails_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sessionward.demo", None)  # makes the import fail
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: the demo is not available")
    assert len(result.stderr.strip().splitlines()) == 1
