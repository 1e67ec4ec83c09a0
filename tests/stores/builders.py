"""Records, updates and tombstones for store tests, built with as little ceremony as possible."""

from __future__ import annotations

from typing import Any

from msgspec.structs import replace

from sessionward.core.engine import SessionLimit
from sessionward.core.ids import generate_id, storage_key
from sessionward.core.records import EndReason, SessionMeta, SessionRecord, Tombstone, Update

NOW = 1_700_000_000.0
IDLE_S = 1800.0
TOMB_TTL_S = 3600.0


def new_key() -> str:
    """Return the storage key of a fresh ID."""
    return storage_key(generate_id())


def make_record(
    *,
    key: str | None = None,
    user: str | None = None,
    created_at: float = NOW,
    expires_at: float | None = None,
    data: dict[str, Any] | None = None,
    ip: str | None = "203.0.113.7",
    retain_until: float = 0.0,
) -> SessionRecord:
    """Return a live record, by default anonymous, created at ``NOW`` and idle-limited.

    ``retain_until`` 0 means the store forgets it at ``expires_at`` (no F10 retention).
    """
    meta = SessionMeta(
        created_at=created_at,
        last_access_at=created_at,
        rotated_at=created_at,
        absolute_deadline=created_at + 8 * 3600,
        user=user,
        auth_at=created_at if user is not None else None,
        ip=ip,
        user_agent="pytest/1.0",
    )
    return SessionRecord(
        key=key or new_key(),
        meta=meta,
        data=dict(data or {}),
        expires_at=expires_at if expires_at is not None else created_at + IDLE_S,
        retain_until=retain_until,
    )


def make_update(
    record: SessionRecord,
    *,
    set: dict[str, Any] | None = None,
    delete: frozenset[str] = frozenset(),
    now: float | None = None,
    stale: bool = False,
    retain_s: float = 0.0,
) -> Update:
    """Return the update a request that loaded ``record`` would make.

    Args:
        record: The record as the request loaded it.
        set: Data keys written.
        delete: Data keys removed.
        now: When the request ran; moves the idle clock and the expiry.
        stale: Whether the request claims no loaded data (forcing the store to re-read).
        retain_s: How long after its new expiry the record is kept (F10 retention).
    """
    when = now if now is not None else record.meta.last_access_at
    meta = replace(record.meta, last_access_at=when)
    return Update(
        set=dict(set or {}),
        delete=delete,
        meta=meta,
        expires_at=when + IDLE_S,
        retain_until=when + IDLE_S + retain_s if retain_s else 0.0,
        base_version=record.version,
        base_data=None if stale else dict(record.data),
    )


def make_tombstone(
    key: str, reason: EndReason = EndReason.LOGGED_OUT, *, user: str | None = None, now: float = NOW
) -> Tombstone:
    """Return a tombstone for ``key`` ended at ``now``, remembered for ``TOMB_TTL_S``."""
    return Tombstone(key=key, reason=reason, user=user, ended_at=now, expires_at=now + TOMB_TTL_S)


def make_limit(max_sessions: int, *, prevent_login: bool, now: float = NOW) -> SessionLimit:
    """Return a multiple-login limit as the engine hands it to a store."""
    return SessionLimit(
        max_sessions=max_sessions, prevent_login=prevent_login, now=now, tombstone_expires_at=now + TOMB_TTL_S
    )
