"""Build the documentation site once per test session, as ``mkdocs build --strict`` does."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BuiltSite:
    """The outcome of one strict build."""

    directory: Path
    returncode: int
    output: str
    seconds: float

    def page(self, path: str) -> str:
        """Return the HTML of a built page (``reference/settings.html``)."""
        return (self.directory / path).read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> BuiltSite:
    """The site built from ``docs/`` in strict mode into a temporary directory."""
    directory = tmp_path_factory.mktemp("site")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SESSIONWARD_")}
    environment["NO_MKDOCS_2_WARNING"] = "1"  # Material's banner about its successor
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(directory)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return BuiltSite(directory, result.returncode, result.stdout + result.stderr, time.monotonic() - started)
