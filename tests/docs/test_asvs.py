"""The OWASP ASVS table cites only tests that exist, and the built page is generated from it."""

from __future__ import annotations

import ast
import html
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

from .conftest import ROOT, BuiltSite

SOURCE = ROOT / "docs" / "asvs.toml"
STATUSES = {"default", "api", "na", "not_met"}


def table() -> dict[str, Any]:
    with SOURCE.open("rb") as source:
        return tomllib.load(source)


def suite_tests() -> set[str]:
    """Every test function of ``tests/`` as ``path::name`` or ``path::Class::name``, read with ast."""
    found: set[str] = set()
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        relative = path.relative_to(ROOT).as_posix()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
                found.add(f"{relative}::{node.name}")
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                found.update(
                    f"{relative}::{node.name}::{member.name}"
                    for member in node.body
                    if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef) and member.name.startswith("test")
                )
    return found


def test_every_cited_test_exists_in_the_suite() -> None:
    suite = suite_tests()
    cited = {test for requirement in table()["requirement"] for test in requirement["tests"]}
    assert cited
    assert sorted(cited - suite) == []


def test_a_renamed_test_would_be_caught() -> None:
    suite = suite_tests()
    assert "tests/security/test_session_fixation.py::test_pre_login_id_dies_at_login" in suite
    assert "tests/security/test_session_fixation.py::test_pre_login_id_dies_at_logon" not in suite


def test_every_requirement_is_classified_and_every_met_one_is_proved() -> None:
    requirements = table()["requirement"]
    assert all(requirement["status"] in STATUSES for requirement in requirements)
    assert len({requirement["id"] for requirement in requirements}) == len(requirements)
    for requirement in requirements:
        if requirement["status"] in ("default", "api"):
            assert requirement["tests"], requirement["id"]


def test_the_table_covers_v7_v3_3_and_v16_whole() -> None:
    ids = {requirement["id"] for requirement in table()["requirement"]}
    v7 = {"7.1.1", "7.1.2", "7.1.3", "7.2.1", "7.2.2", "7.2.3", "7.2.4", "7.3.1", "7.3.2"}
    v7 |= {"7.4.1", "7.4.2", "7.4.3", "7.4.4", "7.4.5", "7.5.1", "7.5.2", "7.5.3", "7.6.1", "7.6.2"}
    cookies = {"3.3.1", "3.3.2", "3.3.3", "3.3.4", "3.3.5"}
    logging = {"16.1.1", "16.2.1", "16.2.2", "16.2.3", "16.2.4", "16.2.5", "16.3.1", "16.3.2", "16.3.3", "16.3.4"}
    logging |= {"16.4.1", "16.4.2", "16.4.3", "16.5.1", "16.5.2", "16.5.3", "16.5.4"}
    assert ids == v7 | cookies | logging


def test_the_built_page_shows_every_row_and_the_counts(built_site: BuiltSite) -> None:
    page = html.unescape(built_site.page("security/asvs.html"))
    requirements = table()["requirement"]
    for requirement in requirements:
        assert f'id="asvs-{requirement["id"].replace(".", "-")}"' in page
        for test in requirement["tests"]:
            assert test in page
    counts = Counter(requirement["status"] for requirement in requirements)
    assert f"Of the {len(requirements)} requirements below: {counts['default']} met by default" in page.replace(
        "<strong>", ""
    ).replace("</strong>", "")


def test_the_source_file_is_where_the_page_says(built_site: BuiltSite) -> None:
    assert Path(SOURCE).is_file()
    assert "docs/asvs.toml" in built_site.page("security/asvs.html")
