"""Generate sessionward's synchronous I/O (``src/sessionward/_sync/``) from the async code.

The SQL and Redis stores, the manager and the exchange are written once, async. Their sync
twins, which Flask and WSGI use, are produced by this script and committed;
``tests/flask_wsgi/test_generated_code_is_current.py`` regenerates them into a temporary
directory and fails when the committed files differ, so run this script after any change
to an async source::

    .venv/bin/python scripts/generate_sync.py          # rewrite src/sessionward/_sync/
    .venv/bin/python scripts/generate_sync.py --check  # exit 1 if they are out of date

How it works (httpcore's ``unasync``, on Python's tokenizer, so comments, layout and
strings pass through untouched):

1. Tokens: ``async def/with/for`` lose ``async``; ``await`` goes; ``Awaitable[X]`` becomes
   ``X`` and ``AsyncGenerator[X, Y]`` becomes ``Generator[X, Y, None]``; names and dotted
   names are renamed by :data:`NAMES` and :data:`CHAINS` (``redis.asyncio`` → ``redis``,
   ``asyncio.Lock`` → ``_blocking.Lock``, an async module → its twin), once
   ``import asyncio`` has become an import of ``_blocking`` (:data:`LINES`).
2. Per-file fix-ups (:data:`FILES`): the few constructs with no name-for-name twin, each
   of which must match, so a change in the async source cannot slip past unnoticed.
3. Imports that are no longer used are dropped, and a header marks the file generated.

Pure definitions are not generated: they live in modules of their own (``stores/_*.py``,
``core/``), which both twins import. Stores whose work is synchronous (memory, files) are
written blocking by hand and wrapped for async instead (``stores/_threaded.py``).
"""

from __future__ import annotations

import argparse
import ast
import io
import subprocess
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
    # The event bus: a sync caller delivers to plain subscribers.
    "events.emit": "events.emit_sync",
    # Stores whose blocking twin is written by hand, as sync code.
    "sessionward.stores.memory": "sessionward.stores._memory_sync",
    "sessionward.stores.file": "sessionward.stores._file_sync",
}
"""Dotted names renamed when they are a whole dotted chain or its tail (``self.events.emit``)."""

LINES = (("import asyncio\n", "from sessionward.io import _blocking\n"),)
"""Whole lines replaced in every file (the dotted renames above then find ``_blocking``)."""


@dataclass(frozen=True)
class Source:
    """One async module and what its sync twin needs beyond the common renames.

    Attributes:
        path: The async module, relative to ``src/sessionward``.
        replace: Literal ``(old, new)`` fix-ups on the translated text; each must match.
        names: Extra single-name renames for this module only.
    """

    path: str
    replace: tuple[tuple[str, str], ...] = ()
    names: dict[str, str] = field(default_factory=dict)

    @property
    def module(self) -> str:
        """The async module's dotted name."""
        parts = Path(self.path).with_suffix("").parts
        return ".".join(("sessionward", *parts)).removesuffix(".__init__")

    @property
    def sync_module(self) -> str:
        """The generated module's dotted name (``io/`` modules sit at the top of ``_sync``)."""
        return "sessionward._sync." + self.module.removeprefix("sessionward.").removeprefix("io.")

    @property
    def sync_path(self) -> str:
        """The generated module's path, relative to the ``_sync`` package."""
        return self.path.removeprefix("io/")


FILES = (
    Source("stores/base.py"),
    Source(
        "stores/sql.py",
        replace=(
            # A blocking call cannot be cut at its deadline, so there is no cleanup to leave behind.
            (
                "unwaited_cleanup(self._transaction(work, read_only, single, progress))",
                "self._transaction(work, read_only, single, progress)",
            ),
            # The blocking store's driver path is BlockingFastPath, on sqlite3 and psycopg.
            (
                """* On PostgreSQL with asyncpg and on a SQLite file with aiosqlite (the default drivers), a
  request's own statements (the read of its session, a touch, a data write that finds its
  version) are sent on the driver's own connection (from the same pool on PostgreSQL, a
  few of its own on SQLite): SQLAlchemy's execution layer costs several times the
  statement (:mod:`sessionward.stores._sql_fast`). Any failure there sends the statement
  again the ordinary way.
""",
                """* On SQLite (sqlite3) and PostgreSQL with psycopg, a request's own statements (the read
  of its session, a touch, a data write that finds its version) are sent on the driver's
  own connection, from the same pool: SQLAlchemy's execution layer costs several times
  the statement (:mod:`sessionward.stores._sql_fast`). Any failure there sends the
  statement again the ordinary way.
""",
            ),
            # A sync connection runs schema functions directly.
            ("lambda connection: connection.run_sync(self.metadata.create_all)", "self.metadata.create_all"),
            ("lambda connection: connection.run_sync(self.metadata.drop_all)", "self.metadata.drop_all"),
        ),
        names={"open_engine": "open_sync_engine", "FastPath": "BlockingFastPath"},
    ),
    Source("stores/redis.py"),
    Source(
        "stores/redis_cluster.py",
        # The blocking cluster client learns its topology when it is made; this
        # refreshes it, as the async client's initialize() does.
        replace=(("self.client.initialize()", "self.client.nodes_manager.initialize()"),),
    ),
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

PACKAGE_INIT = '''"""Synchronous twins of sessionward's async I/O, for WSGI (Flask and others).

Every module here except this one is generated by ``scripts/generate_sync.py`` from the
async module of the same path: ``_sync.stores`` mirrors ``sessionward.stores`` and
``_sync.exchange`` mirrors ``sessionward.io.exchange``. The memory and file stores do
synchronous work and are written blocking by hand (``sessionward.stores._memory_sync``,
``sessionward.stores._file_sync``); ``_sync.stores`` exports them. Use all of these
through :mod:`sessionward.wsgi` and :mod:`sessionward.flask`.
"""
'''


# -- step 1: tokens -------------------------------------------------------------------------


def translate_tokens(text: str, names: dict[str, str]) -> str:
    """Return ``text`` with async syntax removed and names renamed (layout untouched)."""
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))

    def at(position: tuple[int, int]) -> int:
        return starts[position[0] - 1] + position[1]

    edits: list[tuple[int, int, str]] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if token.type != tokenize.NAME or (index > 0 and tokens[index - 1].string == "."):
            index += 1
            continue
        if following is not None and (
            token.string == "await" or (token.string == "async" and following.string in ("def", "with", "for"))
        ):
            edits.append((at(token.start), at(following.start), ""))
            index += 1
            continue
        if token.string in ("Awaitable", "AsyncGenerator") and following is not None and following.string == "[":
            closing = tokens[_matching_bracket(tokens, index + 1)]
            if token.string == "Awaitable":  # Awaitable[X] -> X
                edits.append((at(token.start), at(following.end), ""))
                edits.append((at(closing.start), at(closing.end), ""))
            else:  # typing's Generator takes three parameters on Python 3.11
                edits.append((at(closing.start), at(closing.start), ", None"))
        end = _chain_end(tokens, index)
        chain = "".join(t.string for t in tokens[index : end + 1])
        renamed = _rename_chain(chain, names)
        if renamed != chain:
            edits.append((at(token.start), at(tokens[end].end), renamed))
        index = end + 1
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


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
        if tokens[index].type == tokenize.OP and tokens[index].string in "([{":
            depth += 1
        elif tokens[index].type == tokenize.OP and tokens[index].string in ")]}":
            depth -= 1
            if depth == 0:
                return index
    raise ValueError("unbalanced brackets after a generic type")


# -- steps 2 and 3: fix-ups and imports -----------------------------------------------------


def generate_module(source: Source) -> str:
    """Return the text of the sync twin of ``source``."""
    text = (PACKAGE / source.path).read_text(encoding="utf-8")
    for old, new in LINES:
        text = text.replace(old, new)
    result = translate_tokens(text, NAMES | source.names)
    for old, new in source.replace:
        if old not in result:
            raise SystemExit(f"{source.path}: fix-up {old!r} no longer matches; update scripts/generate_sync.py")
        result = result.replace(old, new)
    return HEADER.format(path=source.path) + _drop_unused_imports(result)


def _drop_unused_imports(text: str) -> str:
    tree = ast.parse(text)
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            used |= {e.value for e in ast.walk(node.value) if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    lines = text.splitlines(keepends=True)
    imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    for node in reversed(imports):
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
    package_init = output / "__init__.py"
    package_init.parent.mkdir(parents=True, exist_ok=True)
    package_init.write_text("# GENERATED by scripts/generate_sync.py; do not edit.\n" + PACKAGE_INIT)
    written = [package_init]
    for source in FILES:
        target = output / source.sync_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(generate_module(source), encoding="utf-8")
        written.append(target)
    format_as_the_project(written)
    return written


def format_as_the_project(paths: list[Path]) -> None:
    """Run ``ruff format`` (the project's settings) over ``paths``: removing ``async`` and
    ``await`` shortens lines that the formatter would then join."""
    command = [sys.executable, "-m", "ruff", "format", "--quiet", "--config", str(ROOT / "pyproject.toml")]
    # Our own interpreter and the files this script just wrote: no outside input.
    result = subprocess.run([*command, *map(str, paths)], capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise SystemExit(f"ruff format failed (is the dev group installed?):\n{result.stderr}")


def stale(output: Path, fresh: Path) -> list[str]:
    """Return the generated files under ``output`` that differ from those under ``fresh``, or are extra."""
    committed = {path.relative_to(output) for path in output.rglob("*.py")}
    made = {path.relative_to(fresh) for path in fresh.rglob("*.py")}
    differing = [
        str(relative)
        for relative in sorted(made | committed)
        if relative not in made
        or relative not in committed
        or (output / relative).read_text(encoding="utf-8") != (fresh / relative).read_text(encoding="utf-8")
    ]
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
    made = generate(OUTPUT)
    for path in sorted(set(OUTPUT.rglob("*.py")) - set(made)):
        path.unlink()  # the twin of a module that is no longer generated
        print(f"removed {path.relative_to(ROOT)}")
    for path in made:
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
