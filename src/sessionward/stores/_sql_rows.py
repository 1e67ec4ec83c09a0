"""How the SQL store maps entries to rows and back; pure, no I/O.

One table holds live sessions and tombstones (:func:`sessionward.stores._sql_dialects.tables`).
A live record's row has ``meta`` and ``data`` (JSON text) and ``tomb`` NULL; a tombstone's
row has ``tomb`` (its JSON) and neither of the others. Every column read back is checked
against its type: the database's column types are no guarantee.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from msgspec.structs import replace

from sessionward.core.errors import StoreError
from sessionward.core.ids import handle_of
from sessionward.core.records import (
    Entry,
    SessionRecord,
    Tombstone,
    Update,
    data_from_json,
    dumps,
    meta_from_json,
    meta_to_json,
    stored_count,
    stored_time,
    tombstone_from_json,
    tombstone_to_json,
    with_changes,
)

logger = logging.getLogger("sessionward")

# Columns an establish overwrites on an existing row (all but the key and the version).
ESTABLISHED_COLUMNS = (
    "handle",
    "user_id",
    "created_at",
    "last_access_at",
    "expires_at",
    "kept_until",
    "meta",
    "data",
    "tomb",
)
# Columns that turn a row into a tombstone.
BURIED_COLUMNS = ("tomb", "data", "meta", "user_id", "expires_at", "kept_until")
# What a save writes besides the data: the metadata and its clocks.
SAVED_COLUMNS = ("meta", "last_access_at", "expires_at", "kept_until")


def params(values: dict[str, Any]) -> dict[str, Any]:
    """Return column values as the store's bound parameters (``p_<column>``)."""
    return {f"p_{name}": value for name, value in values.items()}


def merged(data: dict[str, Any], update: Update) -> dict[str, Any]:
    """Return ``data`` with the update's changes applied (a new dict)."""
    return with_changes(data, update.set, update.delete)


def tomb_row(key: str, tomb: Tombstone) -> dict[str, Any]:
    """Return the column values of a tombstone row under ``key``."""
    return {
        "key": key,
        "handle": handle_of(key),
        "created_at": tomb.ended_at,
        "last_access_at": tomb.ended_at,
        "version": 0,
        "tomb": tombstone_to_json(replace(tomb, key=key)).decode(),
        "data": None,
        "meta": None,
        "user_id": None,
        "expires_at": tomb.expires_at,
        # The purge looks at the row when the seal's grace ends (to drop it), else when it goes.
        "kept_until": tomb.sealed_until if tomb.sealed_until is not None else tomb.expires_at,
    }


def row_entry(row: sa.Row[Any]) -> Entry:
    """Decode a row, every column checked against its type; raise :class:`StoreError` if corrupt.

    The database's column types are no guarantee: SQLite keeps text in a REAL column,
    PostgreSQL keeps NaN, and anyone with write access can put anything in the JSON.
    """
    try:
        if row.tomb is not None:
            tomb = tombstone_from_json(row.tomb)
            if tomb.key != row.key:
                raise StoreError("a tombstone filed under another key")
            # The row's columns are what the store queries on; they must agree with the JSON.
            stored_time(row.expires_at, "tombstone expiry")
            stored_time(row.kept_until, "tombstone retention")
            return tomb
        if row.meta is None or row.data is None:
            raise StoreError("no metadata or data")
        meta = meta_from_json(row.meta)
        meta.last_access_at = stored_time(row.last_access_at, "access time")
        return SessionRecord(
            key=row.key,
            meta=meta,
            data=data_from_json(row.data),
            expires_at=stored_time(row.expires_at, "expiry"),
            version=stored_count(row.version, "version"),
            retain_until=stored_time(row.kept_until, "retention"),
        )
    except StoreError as error:
        raise StoreError(f"corrupt session row {row.key[:16]}: {error}") from None


def expired(value: object, now: float) -> bool:
    """Tell whether a stored expiry has passed; one that is not a time counts as passed (corrupt)."""
    try:
        return stored_time(value, "expiry") <= now
    except StoreError:
        return True


def is_tombstone(row: sa.Row[Any]) -> bool:
    """Tell whether ``row`` decodes as a tombstone (a corrupt one may be overwritten)."""
    try:
        return isinstance(row_entry(row), Tombstone)
    except StoreError:
        return False


def record_row(record: SessionRecord) -> dict[str, Any]:
    """Return the column values of a live record's row."""
    return {
        "key": record.key,
        "handle": handle_of(record.key),
        "user_id": record.meta.user,
        "created_at": record.meta.created_at,
        "last_access_at": record.meta.last_access_at,
        "expires_at": record.expires_at,
        "kept_until": record.kept_until,
        "version": record.version,
        "meta": meta_to_json(record.meta).decode(),
        "data": dumps(record.data).decode(),
        "tomb": None,
    }


def loaded(row: sa.Row[Any], now: float) -> Entry | None:
    """Return what a load at ``now`` finds in ``row``; raise :class:`StoreError` if corrupt."""
    entry = row_entry(row)
    if isinstance(entry, Tombstone):
        # A tombstone's row is kept until it expires; its kept_until is when the purge
        # must next look at it (the end of a renewal's grace, to drop the seal).
        return entry.seen_at(now) if entry.expires_at > now else None
    if entry.kept_until <= now:
        return None  # a record past expires_at is still returned until then: the engine tells why
    return entry


def decoded(row: sa.Row[Any] | None) -> Entry | None:
    """Decode a row whatever its expiry; a corrupt one reads as none (its next load ends it)."""
    if row is None:
        return None
    try:
        return row_entry(row)
    except StoreError as error:
        logger.warning("corrupt session %s: %s", row.key[:16], error)
        return None


def readable(rows: Iterable[sa.Row[Any]]) -> list[SessionRecord]:
    """Decode rows for listings, leaving out corrupt ones: their next load ends them."""
    records = []
    for row in rows:
        try:
            entry = row_entry(row)
            if not isinstance(entry, SessionRecord):
                raise StoreError(f"corrupt session row {row.key[:16]}: a tombstone where a record was expected")
            records.append(entry)
        except StoreError as error:
            logger.warning("skipping corrupt session %s: %s", row.key[:16], error)
    return records
