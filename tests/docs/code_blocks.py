"""Find the Python code blocks of the documentation and run a page's blocks as one script.

A page's runnable ```` ```python ```` blocks run in order, in one namespace, in a fresh
interpreter (a page may build an example up block by block, as a reader follows it).
A block that cannot run in the suite is marked by an HTML comment on the line before its
fence that says why::

    <!-- not-run: needs a Redis server -->
    ```python
    ...

The reason is required: a bare marker is an error, and so is a marker before no Python
block. Python blocks must say ``python``: ``py``, ``python3``, ``pycon`` and the like
would escape the check, so they are refused.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
NOT_RUN = re.compile(r"^\s*<!--\s*not-run:(?P<reason>.*?)-->\s*$")
PYTHON_ALIASES = frozenset({"py", "py3", "python3", "pycon", "ipython", "pyi", "python-repl"})


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int
    """The line of the opening fence (1-based)."""
    language: str
    source: str
    skip_reason: str | None
    """Why the block is not run, when it is marked ``not-run``."""

    @property
    def where(self) -> str:
        """``docs/page.md:LINE``, for messages and tracebacks."""
        shown = self.page.relative_to(ROOT).as_posix() if self.page.is_relative_to(ROOT) else self.page.name
        return f"{shown}:{self.line}"


def pages() -> list[Path]:
    """Return every Markdown page of the documentation."""
    return sorted(DOCS.rglob("*.md"))


def blocks(page: Path) -> tuple[list[Block], list[str]]:
    """Return a page's fenced blocks, and the problems with its ``not-run`` markers."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    problems: list[str] = []
    pending: tuple[int, str] | None = None  # a not-run marker waiting for its block
    index = 0
    while index < len(lines):
        line = lines[index]
        marker = NOT_RUN.match(line)
        if marker:
            if pending is not None:
                problems.append(f"{page.name}:{pending[0]}: a not-run marker with no Python block after it")
            pending = (index + 1, marker.group("reason").strip())
            index += 1
            continue
        opened = FENCE_OPEN.match(line)
        if not opened:
            if line.strip() and pending is not None:
                problems.append(f"{page.name}:{pending[0]}: a not-run marker must be right before a fence")
                pending = None
            index += 1
            continue
        indent, fence = opened.group("indent"), opened.group("fence")
        language = opened.group("info").strip().split(" ", 1)[0].lower() if opened.group("info").strip() else ""
        body: list[str] = []
        index += 1
        while index < len(lines) and not re.match(
            rf"^{re.escape(indent)}{fence[0]}{{{len(fence)},}}\s*$", lines[index]
        ):
            body.append(lines[index])
            index += 1
        index += 1  # the closing fence
        source = textwrap.dedent("\n".join(body)) + "\n"
        reason = pending[1] if pending is not None else None
        if pending is not None:
            if language != "python":
                problems.append(f"{page.name}:{pending[0]}: a not-run marker before a {language or 'plain'} block")
            elif not reason:
                problems.append(f"{page.name}:{pending[0]}: a not-run marker must say why the block cannot run")
            pending = None
        if language in PYTHON_ALIASES:
            problems.append(f"{page.name}:{index}: write ```python, not ```{language}, so that the block is run")
        found.append(Block(page, index - len(body) - 1, language, source, reason))
    if pending is not None:
        problems.append(f"{page.name}:{pending[0]}: a not-run marker at the end of the page")
    return found, problems


def script(page_blocks: list[Block]) -> str:
    """Return one program running a page's runnable Python blocks in order, in one namespace.

    Each block is compiled under its own ``docs/page.md:LINE`` name, so a traceback points
    at the page and block that failed.
    """
    runnable = [block for block in page_blocks if block.language == "python" and block.skip_reason is None]
    parts = ["namespace = {'__name__': '__main__'}"]
    for block in runnable:
        parts.append(f"exec(compile({block.source!r}, {block.where!r}, 'exec'), namespace)")
    return "\n".join(parts) + "\n"


def run(page: Path, page_blocks: list[Block], cwd: Path, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run a page's blocks in a fresh interpreter, in ``cwd``, without ``SESSIONWARD_*`` variables."""
    import os

    environment = {key: value for key, value in os.environ.items() if not key.startswith("SESSIONWARD_")}
    # Warnings are errors, as in the suite, but for the one a Starlette release prints for the
    # httpx its TestClient still uses (the suite's own helpers silence it the same way).
    environment["PYTHONWARNINGS"] = "error,ignore:Using `httpx` with `starlette.testclient` is deprecated:UserWarning"
    return subprocess.run(
        [sys.executable, "-c", script(page_blocks)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
