"""Every setting and every ``SESSIONWARD_*`` variable is declared and documented."""

from __future__ import annotations

import ast
import dataclasses
import html
import re
from collections.abc import Iterator
from pathlib import Path

from sessionward.core.config import SessionPolicy
from sessionward.core.env import KNOWN_VARIABLES, PREFIX, RESERVED_PREFIX, VARIABLES

from .conftest import ROOT, BuiltSite

NAME = re.compile(r"SESSIONWARD_[A-Z0-9_]+")


def leaf_settings(policy: type, prefix: str = "") -> Iterator[str]:
    """Yield the path of every setting of a policy dataclass (``timeouts.idle_timeout_s``)."""
    for field in dataclasses.fields(policy):
        if not field.init or field.name.startswith("_"):
            continue
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        if dataclasses.is_dataclass(default):
            yield from leaf_settings(type(default), f"{prefix}{field.name}.")
        else:
            yield f"{prefix}{field.name}"


def string_constants(paths: list[Path]) -> set[str]:
    """Return the string literals of the code, docstrings left out (they may show a typo on purpose)."""
    found: set[str] = set()
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                found.add(node.value)
    return found


def names_read_by_env() -> set[str]:
    """The names ``sessionward.core.env`` passes to its ``read()``: ``read(environ, "IDLE_TIMEOUT", …)``."""
    tree = ast.parse((ROOT / "src/sessionward/core/env.py").read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "read":
            argument = node.args[1] if len(node.args) > 1 else None
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                names.add(PREFIX + argument.value)
        if isinstance(node, ast.For) and isinstance(node.iter, ast.Tuple | ast.Name):
            for element in ast.walk(node.iter):
                if isinstance(element, ast.Constant) and isinstance(element.value, str) and element.value.isupper():
                    names.add(PREFIX + element.value)
    # Tuples of (VARIABLE, field, parser) named before their loop.
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple) and node.elts and isinstance(node.elts[0], ast.Constant):
            first = node.elts[0].value
            if isinstance(first, str) and re.fullmatch(r"[A-Z][A-Z0-9_]+", first):
                names.add(PREFIX + first)
    return names


def test_every_variable_named_in_the_code_is_declared() -> None:
    sources = [path for path in (ROOT / "src/sessionward").rglob("*.py") if "_sync" not in path.parts]
    named = {name for text in string_constants(sources) for name in NAME.findall(text)}
    named |= names_read_by_env()
    undeclared = {name for name in named if name not in KNOWN_VARIABLES and not name.startswith(RESERVED_PREFIX)}
    assert sorted(undeclared) == []


def test_every_declared_variable_is_read_somewhere() -> None:
    sources = [
        path for path in (ROOT / "src/sessionward").rglob("*.py") if path.name != "env.py" and "_sync" not in path.parts
    ]
    sources += list((ROOT / "tests").rglob("*.py"))
    constants = string_constants(sources)
    read = names_read_by_env() | {name for text in constants for name in NAME.findall(text)}
    read |= {PREFIX + text for text in constants if re.fullmatch(r"[A-Z][A-Z0-9_]+", text)}
    assert sorted(set(KNOWN_VARIABLES) - read) == []


def test_every_policy_variable_sets_a_real_setting() -> None:
    settings = set(leaf_settings(SessionPolicy))
    for variable in VARIABLES:
        assert set(variable.settings) <= settings, variable.name
        assert variable.accepts, variable.name
        assert variable.settings or variable.summary, variable.name


def test_every_setting_and_variable_is_on_the_settings_page(built_site: BuiltSite) -> None:
    page = html.unescape(built_site.page("reference/settings.html"))
    for setting in leaf_settings(SessionPolicy):
        anchor = "setting-" + setting.replace(".", "-").replace("_", "-")
        assert f'id="{anchor}"' in page, setting
    for variable in VARIABLES:
        assert f'id="{variable.name.lower()}"' in page, variable.name
        assert variable.accepts in page, variable.name


def test_every_setting_has_a_description_on_the_page(built_site: BuiltSite) -> None:
    page = html.unescape(built_site.page("reference/settings.html"))
    rows = re.findall(r'<tr>\s*<td><span id="setting-[^"]+"></span>.*?</tr>', page, flags=re.DOTALL)
    assert len(rows) >= len(list(leaf_settings(SessionPolicy)))
    for row in rows:
        cells = re.findall(r"<td>(.*?)</td>", row, flags=re.DOTALL)
        assert len(cells) == 5
        assert re.sub(r"<[^>]+>", "", cells[-1]).strip(), row[:120]
