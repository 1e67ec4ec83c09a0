"""Imports run one way: edges (frameworks, tools) -> the I/O layer -> the sans-I/O core.

Read off the source with :mod:`ast`, so an import inside a function or under
``TYPE_CHECKING`` counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "sessionward"

CORE, IO, EDGE = 0, 1, 2
LAYER_NAMES = {CORE: "core", IO: "I/O layer", EDGE: "edge"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts).removesuffix(".__init__")


def layer(module: str) -> int:
    """The layer a ``sessionward`` module belongs to, by the folder it lives in."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    if top == "core":
        return CORE
    if top in {"io", "_sync", "stores"}:
        return IO
    return EDGE


def imported_modules(path: Path) -> set[str]:
    """Every ``sessionward`` module ``path`` imports (``from sessionward.x import y`` counts y if a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("sessionward"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("sessionward"):
            module = node.module or ""
            for alias in node.names:
                candidate = f"{module}.{alias.name}"
                as_path = PACKAGE.parent / candidate.replace(".", "/")
                is_module = as_path.with_suffix(".py").exists() or (as_path / "__init__.py").exists()
                found.add(candidate if is_module else module)
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_the_layout_has_each_layer() -> None:
    layers = {layer(module_name(path)) for path in SOURCES}
    assert layers == {CORE, IO, EDGE}


@pytest.mark.parametrize("path", SOURCES, ids=module_name)
def test_a_module_imports_only_its_own_layer_or_those_below(path: Path) -> None:
    source = module_name(path)
    upward = sorted(
        target for target in imported_modules(path) if target != "sessionward" and layer(target) > layer(source)
    )
    if source.startswith("sessionward.core"):
        # The package's __init__ is the public face (an edge): the core never goes through it.
        upward += sorted(target for target in imported_modules(path) if target == "sessionward")
    assert not upward, f"{source} ({LAYER_NAMES[layer(source)]}) imports upward: {upward}"


@pytest.mark.parametrize(
    ("edge", "foreign"),
    [
        ("sessionward.asgi", ("sessionward._sync", "sessionward.wsgi", "sessionward.flask")),
        ("sessionward.wsgi", ("sessionward.asgi", "sessionward.io")),
        ("sessionward.flask", ("sessionward.asgi", "sessionward.io")),
        ("sessionward.django", ("sessionward.asgi", "sessionward.io", "sessionward.wsgi", "sessionward.flask")),
        ("sessionward.litestar", ("sessionward._sync", "sessionward.wsgi", "sessionward.flask", "sessionward.django")),
        ("sessionward.quart", ("sessionward._sync", "sessionward.wsgi", "sessionward.flask", "sessionward.django")),
        ("sessionward.io", ("sessionward._sync",)),
        ("sessionward.audit", ("sessionward.io", "sessionward._sync", "sessionward.stores", "sessionward.asgi")),
    ],
)
def test_sibling_edges_share_only_the_layers_below(edge: str, foreign: tuple[str, ...]) -> None:
    crossing = sorted(
        f"{module_name(path)} -> {target}"
        for path in SOURCES
        if module_name(path) == edge or module_name(path).startswith(edge + ".")
        for target in imported_modules(path)
        if target.startswith(foreign)
    )
    assert not crossing, "\n".join(crossing)
