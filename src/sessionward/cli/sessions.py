"""``sessionward sessions …``: the per-user registry and store upkeep, from a shell.

Every verb works on any store URL, on a store that ``sessionward store init`` made: where
there is none, a verb creates nothing (no folder, no SQLite file, no table), says so in
one line and exits 1. Sessions are named by their handle, never by ID: the CLI cannot
print a usable cookie because stores do not hold one. Revocations leave
tombstones with reason ``revoked`` for the configured tombstone lifetime
(``SessionPolicy.from_env()``), so the victim's next request is told why.

User names, user agents and IPs come from users (and whatever wrote the store): they are
printed through :mod:`sessionward.cli.common`'s escaping, in tables, lines and JSON alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from sessionward.cli.common import (
    format_time,
    json_for_terminal,
    run_on_store,
    safe_text,
    store_option,
    terminal_text,
)
from sessionward.core.config import SessionPolicy
from sessionward.core.events import EventBus, EventName, JsonAuditLogger, SessionEvent
from sessionward.core.ids import is_handle
from sessionward.core.records import EndReason, SessionRecord
from sessionward.stores.base import SessionStore, StoreStats

audit_log_option = click.option(
    "--audit-log",
    "audit_log",
    metavar="FILE",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Append a JSON line per revoked session to FILE (the audit log format of).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")

EmitRevoked = Callable[[SessionRecord], None]


@click.group()
def sessions() -> None:
    """List, revoke and purge sessions in a store."""


@sessions.command("list")
@click.option("--user", "-u", required=True, help="The user whose live sessions to list.")
@store_option
@json_option
def list_sessions(user: str, store_url: str, as_json: bool) -> None:
    """List a user's live sessions: handle, created, last seen, IP, user agent."""

    async def work(store: SessionStore) -> list[SessionRecord]:
        return await store.list_user(user, time.time())

    records = run_on_store(store_url, work)
    if as_json:
        rows = [
            {
                "handle": r.handle,
                "created_at": r.meta.created_at,
                "last_seen_at": r.meta.last_access_at,
                "ip": r.meta.ip,
                "user_agent": r.meta.user_agent,
            }
            for r in records
        ]
        click.echo(json_for_terminal({"user": user, "sessions": rows}))
        return
    console = Console(highlight=False)
    if not records:
        console.print(terminal_text(f"no live sessions for user {user!r}"))
        return
    table = Table(title=terminal_text(f"live sessions of {user!r}"))
    # Handles and times are never cut (a cut handle cannot be revoked); IP and agent fold.
    table.add_column("handle", no_wrap=True, min_width=16)
    table.add_column("created (UTC)", min_width=10)
    table.add_column("last seen (UTC)", min_width=10)
    table.add_column("IP", overflow="fold", min_width=7)
    table.add_column("user agent", overflow="fold")
    for r in records:
        table.add_row(
            terminal_text(r.handle),
            format_time(r.meta.created_at),
            format_time(r.meta.last_access_at),
            terminal_text(r.meta.ip or "-"),
            terminal_text(r.meta.user_agent or "-"),
        )
    console.print(table)


@sessions.command("revoke")
@click.argument("handle")
@store_option
@audit_log_option
def revoke(handle: str, store_url: str, audit_log: str | None) -> None:
    """End the session named by HANDLE (from `sessions list`)."""
    if not is_handle(handle):
        raise click.BadParameter(
            "a handle is 16 lower-case hex characters, as `sessions list` shows", param_hint="HANDLE"
        )
    ttl = SessionPolicy.from_env().invalid_session.tombstone_ttl_s

    async def work(store: SessionStore) -> SessionRecord | None:
        now = time.time()
        return await store.end_handle(handle, EndReason.REVOKED, now, now + ttl)

    with _audit(audit_log) as emit:
        ended = run_on_store(store_url, work)
        if ended is None:
            raise click.ClickException(f"no live session has handle {handle}")
        emit(ended)
    click.echo(safe_text(f"revoked session {ended.handle} of user {ended.meta.user or '(anonymous)'}"))


@sessions.command("revoke-user")
@click.argument("user")
@store_option
@audit_log_option
def revoke_user(user: str, store_url: str, audit_log: str | None) -> None:
    """End every live session of USER (account disabled or compromised)."""
    ttl = SessionPolicy.from_env().invalid_session.tombstone_ttl_s

    async def work(store: SessionStore) -> list[SessionRecord]:
        now = time.time()
        return await store.end_user(user, EndReason.REVOKED, now, now + ttl)

    with _audit(audit_log) as emit:
        ended = run_on_store(store_url, work)
        for record in ended:
            emit(record)
    click.echo(safe_text(f"revoked {len(ended)} session(s) of user {user!r}"))
    for record in ended:
        click.echo(f"  {safe_text(record.handle)}")


@sessions.command("purge")
@store_option
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=500,
    show_default=True,
    help="Entries removed per store call.",
)
def purge(store_url: str, batch_size: int) -> None:
    """Remove expired sessions and tombstones, in batches, showing progress."""
    console = Console(highlight=False)

    async def work(store: SessionStore) -> int:
        # One `now` for the whole purge: entries expiring meanwhile wait for the next run,
        # which keeps the loop finite however busy the store is.
        now = time.time()
        total = 0
        with Progress(
            SpinnerColumn(),
            TextColumn("purging expired entries"),
            TextColumn("{task.completed} removed"),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        ) as progress:
            task = progress.add_task("purge", total=None)
            while True:
                removed = await store.purge_expired(now, batch_size)
                total += removed
                progress.update(task, advance=removed)
                if removed < batch_size:
                    return total

    total = run_on_store(store_url, work)
    console.print(f"removed {total} expired entr{'y' if total == 1 else 'ies'}")


@sessions.command("stats")
@store_option
@json_option
def stats(store_url: str, as_json: bool) -> None:
    """Count live sessions, authenticated ones, users and tombstones."""

    async def work(store: SessionStore) -> StoreStats:
        return await store.stats(time.time())

    counts = run_on_store(store_url, work)
    figures = {
        "live_sessions": counts.live_sessions,
        "authenticated_sessions": counts.authenticated_sessions,
        "users": counts.users,
        "tombstones": counts.tombstones,
    }
    if as_json:
        click.echo(json_for_terminal(figures))
        return
    table = Table(title="session store")
    table.add_column("figure")
    table.add_column("count", justify="right")
    for name, value in figures.items():
        table.add_row(name.replace("_", " "), str(value))
    Console(highlight=False).print(table)


@contextmanager
def _audit(path: str | None) -> Iterator[EmitRevoked]:
    """Yield a function recording a revocation in the audit log at ``path`` (if any).

    The log is opened first, so that a log that cannot be written stops the command
    before anything is revoked: no revocation goes unrecorded.
    """
    if path is None:
        yield lambda record: None
        return
    try:
        logger = JsonAuditLogger(path)
    except OSError as error:
        raise click.FileError(path, hint=error.strerror or str(error)) from None
    bus = EventBus()
    bus.subscribe(logger)

    def emit(record: SessionRecord) -> None:
        bus.emit_sync(
            SessionEvent(
                name=EventName.REVOKED,
                at=time.time(),
                reason=EndReason.REVOKED.value,
                handle=record.handle,
                user=record.meta.user,
                path="cli",
            )
        )

    try:
        yield emit
    finally:
        logger.close()
