"""The OWASP ASVS 5.0 table, rendered from ``docs/asvs.toml`` and checked against the suite.

Each requirement row cites the tests that prove it as ``path::name`` (or
``path::Class::name``). The build fails when a cited test does not exist, when a status
is not one of the four, or when a requirement is not in a declared section.
"""

from __future__ import annotations

import ast
import html
import re
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
SOURCE = ROOT / "docs" / "asvs.toml"
STATUSES = {
    "default": "met by default",
    "api": "met by an API",
    "na": "not applicable",
    "not_met": "not met",
}


def load() -> dict[str, Any]:
    """Return the parsed ``asvs.toml``."""
    with SOURCE.open("rb") as source:
        return tomllib.load(source)


def suite_tests(root: Path = ROOT) -> set[str]:
    """Return every test of ``tests/`` as ``path::name`` and ``path::Class::name``."""
    found: set[str] = set()
    for path in sorted((root / "tests").rglob("test_*.py")):
        relative = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
                found.add(f"{relative}::{node.name}")
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                for member in node.body:
                    if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef) and member.name.startswith("test"):
                        found.add(f"{relative}::{node.name}::{member.name}")
    return found


def problems(data: dict[str, Any], suite: set[str]) -> list[str]:
    """Return what is wrong with the table: unknown tests, statuses or sections."""
    errors: list[str] = []
    sections = {section["id"] for section in data["section"]}
    seen: set[str] = set()
    for requirement in data["requirement"]:
        ident = requirement["id"]
        if ident in seen:
            errors.append(f"ASVS {ident} is listed twice")
        seen.add(ident)
        if f"V{ident.rsplit('.', 1)[0]}" not in sections:
            errors.append(f"ASVS {ident} belongs to no section of asvs.toml")
        if requirement["status"] not in STATUSES:
            errors.append(f"ASVS {ident}: status {requirement['status']!r} is not one of {', '.join(STATUSES)}")
        if requirement["status"] in ("default", "api") and not requirement["tests"]:
            errors.append(f"ASVS {ident} is marked met but cites no test")
        for test in requirement["tests"]:
            if test not in suite:
                errors.append(f"ASVS {ident} cites {test}, which is not a test in the suite")
    return errors


def counts(data: dict[str, Any]) -> Counter[str]:
    """Return how many requirements have each status."""
    return Counter(requirement["status"] for requirement in data["requirement"])


def render_counts(errors: list[str]) -> str:
    """Return the one-line coverage summary."""
    data = load()
    tally = counts(data)
    total = sum(tally.values())
    parts = [f"**{tally.get(status, 0)}** {label}" for status, label in STATUSES.items()]
    return f"Of the {total} requirements below: " + ", ".join(parts) + ".\n"


def _inline(text: str) -> str:
    escaped = html.escape(" ".join(text.split()), quote=False)
    return re.sub(r"`([^`]+)`", lambda m: f"<code>{m.group(1)}</code>", escaped).replace("|", "&#124;")


def render(errors: list[str]) -> str:
    """Return one table per section; append to ``errors`` what :func:`problems` finds."""
    data = load()
    errors.extend(problems(data, suite_tests()))
    out: list[str] = []
    for section in data["section"]:
        rows = [r for r in data["requirement"] if f"V{r['id'].rsplit('.', 1)[0]}" == section["id"]]
        if not rows:
            continue
        out.append(f"### {section['id']} {section['title']}\n")
        out.append("| # | level | requirement | status | how sessionward meets it | proved by |")
        out.append("|---|---|---|---|---|---|")
        for row in rows:
            status = row["status"]
            tests = "<br>".join(f"<code>{html.escape(test)}</code>" for test in row["tests"]) or "—"
            label = f"**{STATUSES[status]}**" if status == "not_met" else STATUSES[status]
            out.append(
                f'| <span id="asvs-{row["id"].replace(".", "-")}"></span>{row["id"]} | L{row["level"]} '
                f"| {_inline(row['summary'])} | {label} | {_inline(row['how'])} | {tests} |"
            )
        out.append("")
    return "\n".join(out)
