"""Every Python code block of the documentation runs, unless it says why it cannot."""

from __future__ import annotations

from pathlib import Path

import pytest

from .code_blocks import DOCS, ROOT, Block, blocks, pages, run

RUNNABLE_PAGES = [
    page for page in pages() if any(b.language == "python" and b.skip_reason is None for b in blocks(page)[0])
]


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=lambda page: page.relative_to(DOCS).as_posix())
def test_the_python_blocks_of_the_page_run(page: Path, tmp_path: Path) -> None:
    page_blocks, _ = blocks(page)
    result = run(page, page_blocks, cwd=tmp_path)
    assert result.returncode == 0, f"{page.relative_to(ROOT)}:\n{result.stderr[-6000:]}"


def test_every_not_run_marker_says_why_and_stands_before_a_python_block() -> None:
    problems = [problem for page in pages() for problem in blocks(page)[1]]
    assert problems == []


def test_most_python_blocks_run() -> None:
    python = [block for page in pages() for block in blocks(page)[0] if block.language == "python"]
    skipped = [block for block in python if block.skip_reason is not None]
    assert len(python) >= 30
    assert len(skipped) <= len(python) // 3, [block.where for block in skipped]


def _page(tmp_path: Path, text: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    return page


def test_a_marker_without_a_reason_is_refused(tmp_path: Path) -> None:
    page = _page(tmp_path, "<!-- not-run: -->\n```python\nraise SystemExit(1)\n```\n")
    assert blocks(page)[1] == ["page.md:1: a not-run marker must say why the block cannot run"]


def test_a_python_alias_that_would_escape_the_run_is_refused(tmp_path: Path) -> None:
    page = _page(tmp_path, "```py\nraise SystemExit(1)\n```\n")
    assert blocks(page)[1] == ["page.md:3: write ```python, not ```py, so that the block is run"]


def test_blocks_inside_tabs_are_found_and_dedented(tmp_path: Path) -> None:
    page = _page(tmp_path, '=== "Tab"\n\n    ```python\n    value = 1\n    ```\n')
    (block,) = blocks(page)[0]
    assert block == Block(page, 3, "python", "value = 1\n", None)


def test_a_failing_block_fails_its_page(tmp_path: Path) -> None:
    page = _page(tmp_path, "```python\nvalue = 41\n```\n\n```python\nassert value == 42, 'the docs are wrong'\n```\n")
    result = run(page, blocks(page)[0], cwd=tmp_path)
    assert result.returncode != 0
    assert "page.md:5" in result.stderr
    assert "the docs are wrong" in result.stderr
