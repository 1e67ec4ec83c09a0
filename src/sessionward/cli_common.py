"""Pieces every ``sessionward`` command shares: the ``--store`` option and running on a store.

Store URLs can hold passwords, so anything the CLI prints about a store goes through
:func:`redact_url` first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import click

from sessionward.stores.base import SessionStore

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., object])

DEFAULT_STORE_URL = "sqlite:///./.sessionward/sessions.db"
"""The embedded default store (SPEC §6), used when neither ``--store`` nor the variable is set."""

STORE_ENV = "SESSIONWARD_STORE"


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


def run_on_store(url: str, work: Callable[[SessionStore], Awaitable[T]]) -> T:
    """Open the store ``url`` names, run ``work`` on it and close it.

    Raises:
        ConfigError: the URL is malformed or names an unsupported store (exit 2).
        StoreUnavailableError: the store cannot be reached (exit 1).
    """
    from sessionward.stores import open_store

    store = open_store(url, setting="--store / SESSIONWARD_STORE")

    async def go() -> T:
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(go())


def format_time(timestamp: float) -> str:
    """Format a Unix time as ``YYYY-MM-DD HH:MM:SS`` UTC."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
