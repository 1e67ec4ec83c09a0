"""Generate sessionward's synchronous I/O (``src/sessionward/_sync/``) from the async code.

The stores and the exchange are written once, async. Their sync twins, which Flask and
WSGI use, are produced by this script and committed; ``tests/flask_wsgi/test_generated_code_is_current.py``
regenerates them into a temporary directory and fails when the committed files differ, so
run this script after any change to an async source::

    .venv/bin/python scripts/generate_sync.py          # rewrite src/sessionward/_sync/
    .venv/bin/python scripts/generate_sync.py --check  # exit 1 if they are out of date

How it works (the idea of httpcore's ``unasync``, on Python's tokenizer, so comments,
layout and strings pass through untouched):

1. Tokens: ``async def/with/for`` lose ``async``; ``await`` goes; ``Awaitable[X]`` becomes
   ``X``; names and dotted names are renamed by :data:`NAMES` and :data:`CHAINS` (module
   paths such as ``redis.asyncio`` → ``redis``, ``asyncio.Lock`` → ``_blocking.Lock``).
2. Sharing: a top-level definition that the translation leaves unchanged, and that uses
   nothing async, is pure. It is not copied but imported from the async module, so the
   pure parts (result types, SQL helpers, Redis argument builders…) exist once.
3. Per-file fix-ups (:data:`FILES`): the few constructs with no name-for-name twin, each
   of which must match, so a change in the async source cannot slip past unnoticed.
4. Imports that are no longer used are dropped, and a header marks the file generated.
"""

from __future__ import annotations

import argparse
import ast
import io
import re
import sys
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "sessionward"
OUTPUT = PACKAGE / "_sync"

NAMES = {
    "AsyncConnection": "Connection",
    "AsyncEngine": "Engine",
    "AsyncGenerator": "Generator",
    "AsyncIterator": "Iterator",
    "aclosing": "closing",
    "aclose": "close",
}
"""Single names renamed wherever they occur (never inside strings or comments)."""

CHAINS = {
    # Driver modules: the asyncio flavour → the blocking one.
    "redis.asyncio": "redis",
    "redis.asyncio.cluster": "redis.cluster",
    "redis.asyncio.sentinel": "redis.sentinel",
    "redis.asyncio.retry": "redis.retry",
    "sqlalchemy.ext.asyncio": "sqlalchemy.engine",
    # asyncio constructs → their blocking stand-ins (sessionward.io._blocking).
    "asyncio.timeout": "_blocking.timeout",
    "asyncio.Lock": "_blocking.Lock",
    "asyncio.sleep": "_blocking.sleep",
    "asyncio.to_thread": "_blocking.call_inline",
    # The event bus: a sync caller delivers to plain subscribers.
    "events.emit": "events.emit_sync",
}
"""Dotted names renamed when they are a whole dotted chain or its tail (``self.events.emit``)."""


@dataclass(frozen=True)
class Source:
    """One async module and what its sync twin needs beyond the common renames.

    Attributes:
        path: The async module, relative to ``src/sessionward``.
        replace: Literal ``(old, new)`` fix-ups on the translated text; each must match.
        patterns: Regular-expression fix-ups ``(pattern, replacement)``; each must match.
        names: Extra single-name renames for this module only.
    """

    path: str
    replace: tuple[tuple[str, str], ...] = ()
    patterns: tuple[tuple[str, str], ...] = ()
    names: dict[str, str] = field(default_factory=dict)

    @property
    def module(self) -> str:
        """The async module's dotted name."""
        parts = Path(self.path).with_suffix("").parts
        dotted = ".".join(("sessionward", *parts))
        return dotted.removesuffix(".__init__")

    @property
    def sync_module(self) -> str:
        """The generated module's dotted name."""
        if self.module.startswith("sessionward.io."):
            return self.module.replace("sessionward.io.", "sessionward._sync.", 1)
        return self.module.replace("sessionward.", "sessionward._sync.", 1)

    @property
    def sync_path(self) -> str:
        """The generated module's path, relative to the ``_sync`` package."""
        return self.path.removeprefix("io/")


_USE_BLOCKING = ("import asyncio\n", "from sessionward.io import _blocking\n")

FILES = (
    Source("stores/base.py"),
    Source(
        "stores/memory.py",
        replace=(
            ("from sessionward.core.engine", "from sessionward.io import _blocking\nfrom sessionward.core.engine"),
        ),
        # In the async store every method is atomic because it never awaits; threads
        # need a lock for that (the per-user limit of F11 depends on it).
        patterns=((r"(?m)^    def (?!_)", "    @_blocking.serialized\n    def "),),
    ),
    Source("stores/file.py", replace=(_USE_BLOCKING,)),
    Source(
        "stores/sql.py",
        replace=(
            _USE_BLOCKING,
            # A blocking call cannot be cut at its deadline, so there is no cleanup to leave behind.
            (
                "unwaited_cleanup(self._transaction(work, read_only=read_only))",
                "self._transaction(work, read_only=read_only)",
            ),
            # A sync connection runs schema functions directly.
            ("lambda connection: connection.run_sync(self.metadata.create_all)", "self.metadata.create_all"),
            ("lambda connection: connection.run_sync(self.metadata.drop_all)", "self.metadata.drop_all"),
        ),
        names={"open_engine": "open_sync_engine"},
    ),
    Source(
        "stores/redis.py",
        replace=(
            _USE_BLOCKING,
            # typing's Generator takes three parameters on Python 3.11.
            ("Generator[list[str], None]", "Generator[list[str], None, None]"),
            ("Generator[bytes | str, None]", "Generator[bytes | str, None, None]"),
            # The blocking cluster client learns its topology when it is made; this
            # refreshes it, as the async client's initialize() does.
            ("self.client.initialize()", "self.client.nodes_manager.initialize()"),
        ),
    ),
    Source("stores/_redis_url.py"),
    Source("stores/__init__.py"),
    # The manager guards store calls with sessionward.io._store_calls (no asyncio left in it);
    # its blocking twin uses the same object as a plain, non-bounding context manager.
    Source("io/manager.py"),
    Source("io/login_throttle.py"),
    Source("io/exchange.py"),
)

GENERATED = {source.module: source.sync_module for source in FILES if not source.path.endswith("__init__.py")}
"""Imports of these async modules become imports of their sync twins."""

HEADER = "# GENERATED by scripts/generate_sync.py from src/sessionward/{path}; do not edit.\n"
LINE_LENGTH = 121  # ruff's 120 characters plus the newline
KEEP_LOCAL = frozenset({"logger", "T", "__all__"})
"""Top-level names every generated module defines itself even when unchanged."""

PACKAGE_INIT = '''"""Synchronous twins of sessionward's async I/O, for WSGI (Flask and others).

Every module here except this one is generated by ``scripts/generate_sync.py`` from the
async module of the same path: ``_sync.stores`` mirrors ``sessionward.stores`` and
``_sync.exchange`` mirrors ``sessionward.io.exchange``. Use them through
:mod:`sessionward.wsgi` and :mod:`sessionward.flask`.
"""
'''


# -- step 1: tokens -------------------------------------------------------------------------


def _offsets(text: str) -> list[int]:
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def translate_tokens(text: str, names: dict[str, str]) -> str:
    """Return ``text`` with async syntax removed and names renamed (layout untouched)."""
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    starts = _offsets(text)

    def at(position: tuple[int, int]) -> int:
        return starts[position[0] - 1] + position[1]

    edits: list[tuple[int, int, str]] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if (
            token.type == tokenize.NAME
            and following is not None
            and (token.string == "await" or (token.string == "async" and following.string in ("def", "with", "for")))
        ):
            edits.append((at(token.start), at(following.start), ""))
            index += 1
            continue
        if token.type == tokenize.NAME and token.string == "Awaitable" and following and following.string == "[":
            closing = _matching_bracket(tokens, index + 1)
            edits.append((at(token.start), at(following.end), ""))
            edits.append((at(tokens[closing].start), at(tokens[closing].end), ""))
            index += 2
            continue
        if token.type == tokenize.NAME and not _after_dot(tokens, index):
            end = _chain_end(tokens, index)
            chain = "".join(t.string for t in tokens[index : end + 1])
            renamed = _rename_chain(chain, names)
            if renamed != chain:
                edits.append((at(token.start), at(tokens[end].end), renamed))
            index = end + 1
            continue
        index += 1
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _after_dot(tokens: list[tokenize.TokenInfo], index: int) -> bool:
    return index > 0 and tokens[index - 1].string == "."


def _chain_end(tokens: list[tokenize.TokenInfo], index: int) -> int:
    """Return the index of the last NAME of the dotted chain starting at ``index``."""
    end = index
    while (
        end + 2 < len(tokens)
        and tokens[end + 1].string == "."
        and tokens[end + 2].type == tokenize.NAME
        and tokens[end + 1].start == tokens[end].end
    ):
        end += 2
    return end


def _rename_chain(chain: str, names: dict[str, str]) -> str:
    """Rename a whole dotted chain, or its tail (``self.events.emit``), else name by name."""
    if chain in GENERATED:
        return GENERATED[chain]
    parts = chain.split(".")
    for size in range(len(parts), 1, -1):
        head, tail = parts[:-size], ".".join(parts[-size:])
        if tail in CHAINS:
            return ".".join([*head, CHAINS[tail]])
    return ".".join(names.get(part, part) for part in parts)


def _matching_bracket(tokens: list[tokenize.TokenInfo], opening: int) -> int:
    depth = 0
    for index in range(opening, len(tokens)):
        if tokens[index].string in "([{" and tokens[index].type == tokenize.OP:
            depth += 1
        elif tokens[index].string in ")]}" and tokens[index].type == tokenize.OP:
            depth -= 1
            if depth == 0:
                return index
    raise ValueError("unbalanced brackets after Awaitable")


# -- step 2: sharing the pure definitions --------------------------------------------------


@dataclass
class _Segment:
    """One top-level statement of the async module (with the comments just above it)."""

    node: ast.stmt | None
    text: str
    translated: str
    names: frozenset[str] = frozenset()
    uses: frozenset[str] = frozenset()


def _segments(text: str, names: dict[str, str]) -> list[_Segment]:
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    segments: list[_Segment] = []
    cursor = 0
    body = tree.body
    for position, node in enumerate(body):
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))]) - 1
        # Comment lines directly above a definition belong to it.
        while first > cursor and lines[first - 1].lstrip().startswith("#"):
            first -= 1
        if first > cursor:
            gap = "".join(lines[cursor:first])
            segments.append(_Segment(None, gap, gap))
        last = node.end_lineno or node.lineno
        # An attribute docstring (a bare string right after an assignment) goes with it.
        following = body[position + 1] if position + 1 < len(body) else None
        if (
            isinstance(node, ast.Assign | ast.AnnAssign)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            del body[position + 1]
            last = following.end_lineno or last
        chunk = "".join(lines[first:last])
        segments.append(
            _Segment(node, chunk, translate_tokens(chunk, names), frozenset(_defined(node)), frozenset(_used(node)))
        )
        cursor = last
    if cursor < len(lines):
        tail = "".join(lines[cursor:])
        segments.append(_Segment(None, tail, tail))
    return segments


def _defined(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.Assign):
        return {t.id for t in node.targets if isinstance(t, ast.Name)}
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return {node.target.id}
    return set()


def _used(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _async_bound(segments: list[_Segment]) -> set[str]:
    """Names imported from modules that the translation renames: the async world's."""
    bound: set[str] = set()
    for segment in segments:
        node = segment.node
        if isinstance(node, ast.ImportFrom) and node.module:
            renamed = _rename_chain(node.module, {})
            if renamed != node.module or node.module == "asyncio":
                bound.update(alias.asname or alias.name for alias in node.names)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "asyncio":
                    bound.add(alias.asname or alias.name)
    return bound


def _shared(segments: list[_Segment]) -> set[str]:
    """Return the top-level names the sync module imports from the async one."""
    candidates = {
        id(s): s
        for s in segments
        if isinstance(s.node, ast.FunctionDef | ast.ClassDef | ast.Assign | ast.AnnAssign)
        and s.names
        and not (s.names & KEEP_LOCAL)
        and s.translated == s.text
    }
    blocked = _async_bound(segments) | {
        name for s in segments if id(s) not in candidates and s.node is not None for name in s.names
    }
    changed = True
    while changed:
        changed = False
        for key, segment in list(candidates.items()):
            if segment.uses & blocked:
                del candidates[key]
                blocked |= segment.names
                changed = True
    return {name for segment in candidates.values() for name in segment.names}


# -- steps 3 and 4: assembling --------------------------------------------------------------


def shared_names(source: Source) -> set[str]:
    """Return the top-level names of ``source`` that its sync twin imports rather than copies."""
    text = (PACKAGE / source.path).read_text(encoding="utf-8")
    return _shared(_segments(text, NAMES | source.names))


def _split_import(node: ast.ImportFrom, shared: dict[str, set[str]]) -> str:
    """Import a generated module's own names from the sync twin, its shared ones from the original."""
    module = node.module or ""
    pure = [a for a in node.names if a.name in shared[module]]
    own = [a for a in node.names if a.name not in shared[module]]
    lines = ""
    for target, aliases in ((GENERATED[module], own), (module, pure)):
        if aliases:
            lines += _import_from(target, [a.name + (f" as {a.asname}" if a.asname else "") for a in aliases])
    return lines


def generate_module(source: Source, shared_by_module: dict[str, set[str]]) -> str:
    """Return the text of the sync twin of ``source``."""
    text = (PACKAGE / source.path).read_text(encoding="utf-8")
    names = NAMES | source.names
    segments = _segments(text, names)
    shared = shared_by_module[source.module]
    for segment in segments:
        if isinstance(segment.node, ast.ImportFrom) and segment.node.module in GENERATED:
            segment.translated = _split_import(segment.node, shared_by_module)
    parts: list[str] = []
    last_import = max(
        (i for i, s in enumerate(segments) if isinstance(s.node, ast.Import | ast.ImportFrom)), default=-1
    )
    for position, segment in enumerate(segments):
        if segment.names and segment.names <= shared:
            continue
        parts.append(segment.translated)
        if position == last_import and shared:
            parts.append(_import_from(source.module, sorted(shared)))
    result = "".join(parts)
    for old, new in source.replace:
        if old not in result:
            raise SystemExit(f"{source.path}: fix-up {old!r} no longer matches; update scripts/generate_sync.py")
        result = result.replace(old, new)
    for pattern, replacement in source.patterns:
        result, count = re.subn(pattern, replacement, result)
        if not count:
            raise SystemExit(f"{source.path}: pattern {pattern!r} no longer matches; update scripts/generate_sync.py")
    result = _drop_unused_imports(result)
    result = re.sub(r"\n{4,}", "\n\n\n", result)
    return HEADER.format(path=source.path) + result


def _drop_unused_imports(text: str) -> str:
    tree = ast.parse(text)
    used = _used(tree)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            used |= {e.value for e in ast.walk(node.value) if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    lines = text.splitlines(keepends=True)
    for node in sorted(
        (n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)), key=lambda n: n.lineno, reverse=True
    ):
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        kept = [alias for alias in node.names if (alias.asname or alias.name).split(".")[0] in used]
        if len(kept) == len(node.names):
            continue
        start, end = node.lineno - 1, node.end_lineno or node.lineno
        if not kept:
            lines[start:end] = []
            continue
        listed = [a.name + (f" as {a.asname}" if a.asname else "") for a in kept]
        if isinstance(node, ast.ImportFrom):
            statement = _import_from(node.module or "", listed)
        else:
            statement = f"import {', '.join(listed)}\n"
        lines[start:end] = [statement]
    return "".join(lines)


def _import_from(module: str, names: list[str]) -> str:
    """Return ``from module import names``, wrapped one name a line past the line length."""
    statement = f"from {module} import {', '.join(names)}\n"
    if len(statement) <= LINE_LENGTH:
        return statement
    return f"from {module} import (\n" + "".join(f"    {name},\n" for name in names) + ")\n"


def generate(output: Path) -> list[Path]:
    """Write every generated module under ``output`` (the ``_sync`` package); return their paths."""
    written = []
    package_init = output / "__init__.py"
    package_init.parent.mkdir(parents=True, exist_ok=True)
    package_init.write_text("# GENERATED by scripts/generate_sync.py; do not edit.\n" + PACKAGE_INIT)
    written.append(package_init)
    shared = {source.module: shared_names(source) for source in FILES}
    for source in FILES:
        target = output / source.sync_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(generate_module(source, shared), encoding="utf-8")
        written.append(target)
    return written


def stale(output: Path, fresh: Path) -> list[str]:
    """Return the generated files under ``output`` that differ from those under ``fresh``."""
    differing = []
    for path in sorted(fresh.rglob("*.py")):
        relative = path.relative_to(fresh)
        committed = output / relative
        if not committed.exists() or committed.read_text(encoding="utf-8") != path.read_text(encoding="utf-8"):
            differing.append(str(relative))
    return differing


def main(argv: list[str] | None = None) -> int:
    """Regenerate ``src/sessionward/_sync`` (or, with ``--check``, only compare)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed files are out of date")
    args = parser.parse_args(argv)
    if args.check:
        import tempfile

        with tempfile.TemporaryDirectory() as scratch:
            generate(Path(scratch))
            differing = stale(OUTPUT, Path(scratch))
        for name in differing:
            print(f"out of date: src/sessionward/_sync/{name}")
        return 1 if differing else 0
    for path in generate(OUTPUT):
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
