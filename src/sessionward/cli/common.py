"""Pieces every ``sessionward`` command shares: the ``--store`` option, running on a store, printing.

Store URLs can hold passwords, so anything the CLI prints about a store goes through
:func:`redact_url` first.

What a site or a user chose (cookie attributes, headers, URLs, user agents, user names)
is printed through :func:`safe_text` (plain lines), :func:`terminal_text` (Rich) or
:func:`json_for_terminal` (``--json``): a terminal runs the escape sequences it receives,
and Rich interprets markup, so such text could otherwise move the cursor, erase or hide
lines, open links, or stop a command with a ``MarkupError``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import click
from rich.text import Text

from sessionward.core.errors import StoreSchemaMissingError, StoreUnavailableError
from sessionward.stores.base import SessionStore

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., object])

DEFAULT_STORE_URL = "sqlite:///./.sessionward/sessions.db"
"""The embedded default store, used when neither ``--store`` nor the variable is set."""

STORE_ENV = "SESSIONWARD_STORE"

UNAVAILABLE_HINT = "is the store running, and was `sessionward store init` run?"
"""What to check when a command finds no store answering."""

_MISSING_DATABASE = {"postgresql": "`createdb {name}`", "mysql": "`CREATE DATABASE {name}`"}
"""How to create a database that the server says does not exist, per dialect."""


def store_option(command: F) -> F:
    """Add ``--store URL`` (default ``$SESSIONWARD_STORE``, else the local SQLite file)."""
    decorate = click.option(
        "--store",
        "store_url",
        metavar="URL",
        envvar=STORE_ENV,
        default=DEFAULT_STORE_URL,
        show_default=True,
        show_envvar=True,
        help="Session store URL (memory://, sqlite:///…, postgresql://…, mysql://…, redis://…).",
    )
    return decorate(command)


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def run_on_store(url: str, work: Callable[[SessionStore], Awaitable[T]], *, must_exist: bool = True) -> T:
    """Open the store ``url`` names, run ``work`` on it and close it.

    Only ``store init`` passes ``must_exist=False``: every other command works on a store
    that was set up, and where there is none it creates nothing (no folder, no SQLite file,
    no table), says so in one line and fails.

    Raises:
        ConfigError: the URL is malformed or names an unsupported store (exit 2).
        click.ClickException: there is no store at ``url``, or it cannot be reached (exit 1),
            saying what to check.
    """
    from sessionward.stores import open_store

    async def go(store: SessionStore) -> T:
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        # The schema is made by `store init` alone, whatever SESSIONWARD_STORE_CREATE_SCHEMA says.
        store = open_store(url, setting="--store / SESSIONWARD_STORE", must_exist=must_exist, create_schema=False)
        return asyncio.run(go(store))
    except StoreSchemaMissingError as error:
        raise click.ClickException(
            f"no session store at {redact_url(url)} ({error.detail}); run `sessionward store init --store URL`"
        ) from None
    except StoreUnavailableError as error:
        raise click.ClickException(f"{error} ({unavailable_hint(error, url, initialising=not must_exist)})") from None


def unavailable_hint(error: StoreUnavailableError, url: str, *, initialising: bool) -> str:
    """Return what to check when the store at ``url`` cannot be reached.

    A database server that answers but has no database of the URL's name needs that
    database created first (``store init`` makes tables, not databases). Otherwise the
    store may be down, or, for any command but ``store init`` itself, not set up.
    """
    dialect = missing_database(error)
    if dialect is not None:
        name = unquote(urlsplit(url).path.lstrip("/")) or "NAME"
        then = "run `sessionward store init` again" if initialising else "run `sessionward store init`"
        return f"create the database first: {_MISSING_DATABASE[dialect].format(name=name)}, then {then}"
    return "is the store running?" if initialising else UNAVAILABLE_HINT


def missing_database(error: BaseException) -> str | None:
    """Return ``postgresql`` or ``mysql`` if the server said the URL's database does not exist.

    PostgreSQL says so with SQLSTATE 3D000, MySQL and MariaDB with error 1049; the
    driver's error is somewhere along the chain of causes.
    """
    seen: BaseException | None = error
    for _ in range(8):  # the store's error, SQLAlchemy's, the adapter's, the driver's
        if seen is None:
            break
        for candidate in (seen, getattr(seen, "orig", None)):
            if getattr(candidate, "sqlstate", None) == "3D000":
                return "postgresql"
            if getattr(candidate, "args", ())[:1] == (1049,):
                return "mysql"
        seen = seen.__cause__ or seen.__context__
    return None


def format_time(timestamp: float) -> str:
    """Format a Unix time as ``YYYY-MM-DD HH:MM:SS`` UTC."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _visible(char: str) -> str:
    code = ord(char)
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def safe_text(value: object) -> str:
    """Return ``value`` as text that does nothing to a terminal but show itself.

    Every character Python does not count as printable (what ``repr`` escapes) is written
    as a visible escape: the C0 controls and DEL (``\\x1b``, ``\\t``), the C1 controls
    (``\\x9b``, ``\\x85``), the line and paragraph separators (``\\u2028``), bidi
    overrides and other invisible format characters (``\\u202e``, ``\\u200b``),
    non-ASCII spaces, lone surrogates and unassigned code points. Printable text,
    including non-ASCII letters, is unchanged; backslashes are kept as they are.

    The result still holds any Rich markup it had: give it to Rich as :func:`terminal_text`,
    never as a markup string.
    """
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _visible(char) for char in text)


def terminal_text(value: object, style: str = "") -> Text:
    """:func:`safe_text` as a Rich ``Text``: printed as it reads, no markup, emoji codes or highlighting."""
    return Text(safe_text(value), style=style)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def json_for_terminal(data: object) -> str:
    """Encode ``data`` as compact JSON whose text is safe on a terminal, with its values intact.

    JSON encoders escape only the C0 controls; the C1 controls, DEL, U+2028/U+2029, bidi
    overrides and other non-printable characters would go out raw. Here every one is a
    ``\\uXXXX`` escape (a surrogate pair beyond the BMP), which any JSON parser reads back
    as the original character. Lone surrogates (undecodable command-line bytes) are
    escaped too, rather than failing.
    """
    encoded = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    if encoded.isprintable():
        return encoded
    return "".join(char if char.isprintable() else _json_escape(char) for char in encoded)
