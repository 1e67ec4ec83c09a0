"""How the SQL store maps entries to rows and back; pure, no I/O.

One table holds live sessions and tombstones (:func:`sessionward.stores._sql_dialects.tables`).
A live record's row has ``meta`` and ``data`` (JSON text) and ``tomb`` NULL; a tombstone's
row has ``tomb`` (its JSON) and neither of the others. Every column read back is checked
against its type: the database's column types are no guarantee.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
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

COLUMNS = (
    "key",
    "handle",
    "user_id",
    "created_at",
    "last_access_at",
    "expires_at",
    "kept_until",
    "version",
    "meta",
    "data",
    "tomb",
)
"""Every column of the sessions table (:func:`sessionward.stores._sql_dialects.tables`)."""
# Columns an establish overwrites on an existing row (all but the key and the version).
ESTABLISHED_COLUMNS = tuple(name for name in COLUMNS if name not in ("key", "version"))
# Columns that turn a row into a tombstone (the handle too: a corrupt one is set right).
BURIED_COLUMNS = ("tomb", "data", "meta", "user_id", "handle", "expires_at", "kept_until")
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
        "kept_until": tomb_kept_until(tomb),
    }


def tomb_kept_until(tomb: Tombstone) -> float:
    """Return a tombstone row's ``kept_until``: when the purge must next look at it.

    That is when the seal's grace ends (to drop the seal), else when the tombstone goes.
    """
    return tomb.sealed_until if tomb.sealed_until is not None else tomb.expires_at


class ColumnValues:
    """A session row's columns by name, from a record of the driver itself.

    What :class:`sqlalchemy.Row` gives by attribute, for a row read without SQLAlchemy
    (:mod:`sessionward.stores._sql_fast`), so that both are checked by one decoder.
    """

    __slots__ = COLUMNS

    key: str
    handle: Any
    user_id: Any
    created_at: Any
    last_access_at: Any
    expires_at: Any
    kept_until: Any
    version: Any
    meta: Any
    data: Any
    tomb: Any

    def __init__(self, record: Mapping[str, Any]) -> None:
        for name in COLUMNS:
            setattr(self, name, record[name])


Row = sa.Row[Any] | ColumnValues
"""A session row, read through SQLAlchemy or by the driver itself."""


def row_entry(row: Row) -> Entry:
    """Decode a row, every column checked against its type; raise :class:`StoreError` if corrupt.

    The database's column types are no guarantee: SQLite keeps text in a REAL column,
    PostgreSQL keeps NaN, and anyone with write access can put anything in the JSON.
    """
    try:
        # The columns are what the store queries on (by handle, by user, by expiry): a row
        # whose columns say something its JSON does not would be found, listed or ended
        # under the wrong name, so it is as corrupt as a field of the wrong type.
        if row.handle != handle_of(row.key):
            raise StoreError("its handle column is not its key's handle")
        if row.tomb is not None:
            tomb = tombstone_from_json(row.tomb)
            if tomb.key != row.key:
                raise StoreError("a tombstone filed under another key")
            if row.user_id is not None:
                raise StoreError("a tombstone filed under a user")
            _agrees(stored_time(row.expires_at, "tombstone expiry"), tomb.expires_at, "tombstone expiry")
            _agrees(stored_time(row.kept_until, "tombstone retention"), tomb_kept_until(tomb), "tombstone retention")
            return tomb
        if row.meta is None or row.data is None:
            raise StoreError("no metadata or data")
        meta = meta_from_json(row.meta)
        if row.user_id != meta.user:
            raise StoreError("filed under another user than its metadata's")
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


def _agrees(column: float, value: float, what: str) -> None:
    """Raise :class:`StoreError` unless a time column says what the JSON says.

    To the millisecond: a driver that sends a double as fewer digits of text than it
    takes to round-trip must not turn every tombstone corrupt.
    """
    if abs(column - value) > 0.001:
        raise StoreError(f"its {what} column disagrees with its JSON")


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


def loaded(row: Row, now: float) -> Entry | None:
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


def readable(rows: Iterable[sa.Row[Any]], user: str | None = None) -> list[SessionRecord]:
    """Decode rows for listings, leaving out corrupt ones: their next load ends them.

    With ``user``, also leave out records of anyone else: the database may match
    ``user_id`` more loosely than Python compares strings (MySQL ignores case and
    trailing spaces by default), and a user's list must hold only that user's sessions.
    """
    records = []
    for row in rows:
        try:
            entry = row_entry(row)
            if not isinstance(entry, SessionRecord):
                raise StoreError(f"corrupt session row {row.key[:16]}: a tombstone where a record was expected")
        except StoreError as error:
            logger.warning("skipping corrupt session %s: %s", row.key[:16], error)
            continue
        if user is None or entry.meta.user == user:
            records.append(entry)
    return records


def of_user(rows: Iterable[sa.Row[Any]], user: str) -> list[sa.Row[Any]]:
    """Return the rows a user-wide operation (log out everywhere, the login limit) may end.

    Those whose metadata names another user are left out, however their ``user_id``
    column reads (a hand edit, a buggy migration, a case-insensitive match): ending
    them would end someone else's session. A row whose metadata does not decode at all
    stays in: it is corrupt, and ending it removes it.
    """
    return [row for row in rows if not _names_another(row, user)]


def _names_another(row: sa.Row[Any], user: str) -> bool:
    """Tell whether a row's metadata decodes and names someone other than ``user``."""
    if row.meta is None:
        return False
    try:
        return meta_from_json(row.meta).user != user
    except StoreError:
        return False
