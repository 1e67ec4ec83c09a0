"""What a store holds: live session records and tombstones, and their JSON codec.

A :class:`SessionRecord` keeps the user's data apart from the metadata the library
manages (:class:`SessionMeta`), so no user key can shadow or forge a library field.
A :class:`Tombstone` stands where a session ended, remembering why until it
expires; after a renewal it also points to the successor for the grace period.

Everything is JSON, or MessagePack where every byte counts (:func:`meta_to_packed`, for
Redis): records are never pickled, because unpickling turns a store compromise into code
execution.

The record types are :class:`msgspec.Struct` classes rather than dataclasses: one or more
of each is made, decoded or copied on every request, and a struct is created, decoded
(:func:`meta_from_json` goes from JSON straight to a :class:`SessionMeta`) and copied
(:func:`msgspec.structs.replace`) several times faster. They are not tracked by the
cyclic garbage collector (``gc=False``): they only ever hold strings, numbers, other
records and the user's JSON data, which cannot refer back to them, so they can never be
part of a reference cycle. The user's own values stay with orjson (:func:`dumps`), whose
strictness the session data rules rely on.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import msgspec
import orjson

from sessionward.core.errors import StoreError
from sessionward.core.ids import handle_of

JSONValue = Any
"""A value made only of dict (str keys), list, str, int, float, bool and None."""

# Only plain JSON types pass: dataclasses, datetimes and subclasses are refused, not
# silently turned into something that reads back as another type.
JSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS


class EndReason(StrEnum):
    """Why a session ended; shown to the user and written to the audit log."""

    LOGGED_OUT = "logged_out"
    IDLE_TIMEOUT = "idle_timeout"
    ABSOLUTE_TIMEOUT = "absolute_timeout"
    DISPLACED = "displaced"
    REVOKED = "revoked"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - a reason code, not a secret
    BINDING_MISMATCH = "binding_mismatch"
    RENEWED = "renewed"
    """Periodic renewal moved the session to a new ID (grace period applies)."""
    SUPERSEDED = "superseded"
    """Login or a privilege change moved the session to a new ID (no grace)."""


class SessionMeta(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """Library-managed facts about a session, apart from the user's data.

    Attributes:
        created_at: When the session began (kept across ``change_id`` logins).
        last_access_at: The idle clock: when a request last counted as activity.
        rotated_at: When the ID last changed.
        absolute_deadline: When the session ends however active it is.
        user: The authenticated user, or ``None`` for an anonymous session.
        auth_at: When the user last proved who they are (login or re-entered password).
        elevated_until: When an elevation (sudo mode) lapses, or ``None``.
        ip: Client IP at login, for the user's device list.
        user_agent: Client User-Agent at login (truncated), for the device list.
        binding: Hash of the client attributes the session is bound to, if any.
        csrf_token: The synchronizer token for HTML forms, rotated at login.
    """

    created_at: float
    last_access_at: float
    rotated_at: float
    absolute_deadline: float
    user: str | None = None
    auth_at: float | None = None
    elevated_until: float | None = None
    ip: str | None = None
    user_agent: str | None = None
    binding: str | None = None
    csrf_token: str | None = None


class SessionRecord(msgspec.Struct, kw_only=True, gc=False):
    """A live session as a store keeps it.

    Attributes:
        key: The storage key (SHA-256 of the ID), never the ID itself.
        meta: Library-managed metadata.
        data: The user's JSON-typed data.
        expires_at: When it stops being live: the earlier of the idle and the absolute
            deadline. Listings, counts and the multiple-login limit use this.
        version: Bumped by each data write; lets SQL stores detect racing writers.
        retain_until: How long the store keeps it after ``expires_at``: until then
            ``load`` still returns it, so the engine can tell the returning user *why* it
            ended (idle or absolute timeout) and bury it. 0 means "same as expires_at".
    """

    key: str
    meta: SessionMeta
    data: dict[str, JSONValue] = msgspec.field(default_factory=dict)
    expires_at: float = 0.0
    version: int = 0
    retain_until: float = 0.0

    @property
    def kept_until(self) -> float:
        """When the store may forget the record: ``retain_until``, never before ``expires_at``."""
        return max(self.retain_until, self.expires_at)

    @property
    def handle(self) -> str:
        """The public handle naming this session in lists, logs and revocation."""
        return handle_of(self.key)


class Tombstone(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Where a session ended: why, for whom, and until when it is remembered.

    Attributes:
        key: The storage key of the ended session.
        reason: Why it ended.
        user: Its user, if it was authenticated.
        ended_at: When it ended.
        expires_at: When the store may forget the tombstone.
        successor_key: After a renewal, the key of the new session.
        sealed_successor: After a renewal, the new ID sealed under the old one
            (see :func:`sessionward.core.ids.seal_successor`).
        grace_until: Until when the old ID still leads to the successor.
    """

    key: str
    reason: EndReason
    user: str | None
    ended_at: float
    expires_at: float
    successor_key: str | None = None
    sealed_successor: str | None = None
    grace_until: float | None = None

    @property
    def handle(self) -> str:
        """The public handle of the session that ended here."""
        return handle_of(self.key)

    @property
    def sealed_until(self) -> float | None:
        """Until when the store keeps the sealed successor, if it holds one: the grace's end.

        Past the grace the seal is useless to the engine and only a risk at rest: anyone
        with the old ID and a copy of the store (a backup, a replica) could open it and
        walk to the live ID. Every store forgets it then (Redis by expiry, the others at
        the first purge or load after it) and keeps the rest of the tombstone.
        """
        if self.sealed_successor is None:
            return None
        return self.grace_until if self.grace_until is not None else self.ended_at

    def unsealed(self) -> Tombstone:
        """Return this tombstone without its sealed successor."""
        return msgspec.structs.replace(self, sealed_successor=None) if self.sealed_successor is not None else self

    def seen_at(self, now: float) -> Tombstone:
        """Return the tombstone as a load at ``now`` shows it: without a seal whose grace is over."""
        until = self.sealed_until
        return self.unsealed() if until is not None and now > until else self


Entry = SessionRecord | Tombstone

CHAIN_LIMIT = 64
"""The most successor links followed from one key (renewals and rotations in a row).

A chain grows by one link per renewal, and renewals are ``renewal_interval_s`` apart;
the configuration refuses a grace period that could need more links than this. A longer
chain (a client rotating in a tight loop) is treated as ended: fail closed."""


class Expected(msgspec.Struct, frozen=True, gc=False):
    """The state a transition was decided on: the precondition a store checks before applying it.

    A store applies a transition that carries an ``Expected`` only while ``key`` still
    holds a live record (not a tombstone, not nothing) whose ``version`` is the one the
    request loaded. Anything else means another request got there first (a logout, a
    revocation, a renewal, a data write): the store then changes nothing and returns what
    it found, and the core decides again from that.

    Attributes:
        key: The storage key of the session the transition moves away from.
        version: The record's version as loaded (data writes bump it).
    """

    key: str
    version: int


class Update(msgspec.Struct, kw_only=True, gc=False):
    """The writes one request makes to an existing session; stores never change it.

    Attributes:
        set: Data keys to write, with their new values.
        delete: Data keys to remove.
        meta: The session's metadata after the request (changed or not: see ``meta_changed``).
        expires_at: The session's new expiry.
        meta_changed: Whether ``meta`` (and with it the expiry) differs from what was
            loaded: a touch of the idle clock, a re-authentication… Stores may skip
            writing metadata, expiry and TTL when it does not.
        base_version: The record's version when the request loaded it; stores that
            version their writes try that first and re-read only when another writer
            came in between.
        base_data: The record's data when loaded, paired with ``base_version``.
    """

    set: dict[str, JSONValue]
    delete: frozenset[str]
    meta: SessionMeta
    expires_at: float
    base_version: int = 0
    base_data: dict[str, JSONValue] | None = None
    retain_until: float = 0.0
    meta_changed: bool = True

    @property
    def kept_until(self) -> float:
        """When the store may forget the record after this write (see SessionRecord)."""
        return max(self.retain_until, self.expires_at)

    @property
    def touches_data(self) -> bool:
        """Tell whether any user data changes."""
        return bool(self.set or self.delete)


def with_changes(
    data: dict[str, JSONValue], written: dict[str, JSONValue], deleted: frozenset[str]
) -> dict[str, JSONValue]:
    """Return a copy of ``data`` with one request's writes and deletions applied."""
    merged = {**data, **written}
    for name in deleted:
        merged.pop(name, None)
    return merged


def dumps(value: JSONValue) -> bytes:
    """Encode a JSON-typed value; raise :class:`TypeError` for anything else."""
    return orjson.dumps(value, option=JSON_OPTIONS)


def loads(data: bytes | str) -> JSONValue:
    """Decode JSON produced by :func:`dumps`."""
    return orjson.loads(data)


_META_ENCODER = msgspec.json.Encoder()
_META_DECODER = msgspec.json.Decoder(SessionMeta)
_TOMBSTONE_DECODER = msgspec.json.Decoder(Tombstone)


def meta_to_json(meta: SessionMeta) -> bytes:
    """Encode metadata for storage (unset fields left out: they decode to ``None``)."""
    return _META_ENCODER.encode(meta)


def meta_from_json(data: bytes | str) -> SessionMeta:
    """Decode stored metadata; raise :class:`StoreError` if it is corrupt."""
    try:
        return _META_DECODER.decode(data)
    except (msgspec.DecodeError, UnicodeError) as error:  # malformed JSON, a field of the wrong type, a lone surrogate
        raise StoreError(f"corrupt session metadata: {error}") from None


PACKED_MARK = b"\x01"
"""The first byte of :func:`meta_to_packed`'s and :func:`tombstone_to_packed`'s output; JSON starts with ``{``."""
_PACKED_ENCODER = msgspec.msgpack.Encoder()
_Items = TypeVar("_Items")
# MessagePack holds NaN and the infinities, which JSON cannot: these bounds refuse them
# (NaN fails every comparison), checked by the decoder itself. Any finite time passes, as
# in JSON: a far deadline (an absolute timeout of "never") must read back as written.
_Time = Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
# SessionMeta's fields in their order: created_at, last_access_at, rotated_at, absolute_deadline,
# user, auth_at, elevated_until, ip, user_agent, binding, csrf_token.
_PACKED_DECODER = msgspec.msgpack.Decoder(
    tuple[
        _Time,
        _Time,
        _Time,
        _Time,
        str | None,
        _Time | None,
        _Time | None,
        str | None,
        str | None,
        str | None,
        str | None,
    ]
)


def meta_to_packed(meta: SessionMeta) -> bytes:
    """Encode metadata compactly: :data:`PACKED_MARK`, then a MessagePack array.

    The fields go by position, without their names, and times as 8-byte doubles (exact,
    as in JSON); about half the size of :func:`meta_to_json`. A new metadata field needs
    a new mark, so that what was stored before still decodes.
    """
    return PACKED_MARK + _PACKED_ENCODER.encode(
        (
            meta.created_at,
            meta.last_access_at,
            meta.rotated_at,
            meta.absolute_deadline,
            meta.user,
            meta.auth_at,
            meta.elevated_until,
            meta.ip,
            meta.user_agent,
            meta.binding,
            meta.csrf_token,
        )
    )


def _unpacked(data: bytes, decoder: msgspec.msgpack.Decoder[_Items], what: str) -> _Items:
    """Decode the array behind :data:`PACKED_MARK`; :class:`StoreError` naming ``what`` if corrupt."""
    if data[:1] != PACKED_MARK:
        raise StoreError(f"corrupt {what}: unknown format {_shown(data[:1])}")
    try:
        return decoder.decode(data[1:])
    except (msgspec.DecodeError, UnicodeError) as error:  # ValidationError included: a field of the wrong type
        raise StoreError(f"corrupt {what}: {error}") from None


def meta_from_packed(data: bytes) -> SessionMeta:
    """Decode :func:`meta_to_packed`'s output; raise :class:`StoreError` if it is corrupt."""
    created, accessed, rotated, deadline, user, auth, elevated, ip, agent, binding, csrf = _unpacked(
        data, _PACKED_DECODER, "session metadata"
    )
    return SessionMeta(
        created_at=created,
        last_access_at=accessed,
        rotated_at=rotated,
        absolute_deadline=deadline,
        user=user,
        auth_at=auth,
        elevated_until=elevated,
        ip=ip,
        user_agent=agent,
        binding=binding,
        csrf_token=csrf,
    )


# A compact tombstone's fields in their order: the successor first, so that a Lua script
# tells a move from its third byte (after the mark and the array's one-byte header, 0xc0
# is MessagePack's nil), then reason, user, ended_at, expires_at, grace_until.
_PACKED_TOMBSTONE_DECODER = msgspec.msgpack.Decoder(
    tuple[str | None, EndReason, str | None, _Time, _Time, _Time | None]
)


def tombstone_to_packed(tomb: Tombstone) -> bytes:
    """Encode a tombstone compactly, without its key: :data:`PACKED_MARK`, then a MessagePack array.

    The key and the sealed successor are left out: the Redis store names a tombstone by its
    key, and keeps a seal in a key of its own, for the grace period only.
    """
    return PACKED_MARK + _PACKED_ENCODER.encode(
        (tomb.successor_key, tomb.reason, tomb.user, tomb.ended_at, tomb.expires_at, tomb.grace_until)
    )


def tombstone_from_packed(data: bytes, key: str) -> Tombstone:
    """Decode :func:`tombstone_to_packed`'s output as the tombstone of ``key``; :class:`StoreError` if corrupt."""
    successor, reason, user, ended, expires, grace = _unpacked(data, _PACKED_TOMBSTONE_DECODER, "tombstone")
    return Tombstone(
        key=key,
        reason=reason,
        user=user,
        ended_at=ended,
        expires_at=expires,
        successor_key=successor,
        grace_until=grace,
    )


def data_from_json(data: bytes | str) -> dict[str, JSONValue]:
    """Decode stored user data; raise :class:`StoreError` if it is corrupt."""
    try:
        decoded = orjson.loads(data)
    except (orjson.JSONDecodeError, UnicodeError) as error:
        raise StoreError(f"corrupt session data: {error}") from None
    if not isinstance(decoded, dict):
        raise StoreError("corrupt session data: not a JSON object")
    return decoded


def tombstone_to_json(tomb: Tombstone) -> bytes:
    """Encode a tombstone for storage."""
    return _META_ENCODER.encode(tomb)


def tombstone_from_json(data: bytes | str, key: str | None = None) -> Tombstone:
    """Decode a stored tombstone; raise :class:`StoreError` if it is corrupt.

    Every field is checked against its type (a ``grace_until`` of ``"soon"`` is corrupt,
    not a crash later). ``key`` names the tombstone when the JSON leaves it out (the
    Redis store keeps one JSON for many keys).
    """
    if key is not None:
        try:
            fields = msgspec.json.decode(data)
        except (msgspec.DecodeError, UnicodeError) as error:
            raise StoreError(f"corrupt tombstone: {error}") from None
        return tombstone_from_fields(fields, key)
    try:
        return _TOMBSTONE_DECODER.decode(data)
    except (msgspec.DecodeError, UnicodeError) as error:  # ValidationError included: a field of the wrong type
        raise StoreError(f"corrupt tombstone: {error}") from None


def tombstone_from_fields(fields: object, key: str) -> Tombstone:
    """Build the tombstone under ``key`` from decoded JSON, checking every field's type."""
    if not isinstance(fields, dict):
        raise StoreError("corrupt tombstone: not a JSON object")
    try:
        return msgspec.convert({**fields, "key": key}, Tombstone)
    except msgspec.ValidationError as error:
        raise StoreError(f"corrupt tombstone: {error}") from None


def meta_from_fields(fields: object) -> SessionMeta:
    """Build metadata from decoded JSON, checking every field's type."""
    try:
        return msgspec.convert(fields, SessionMeta)
    except msgspec.ValidationError as error:
        raise StoreError(f"corrupt session metadata: {error}") from None


# Stored times are seconds since the epoch; anything outside this range (and NaN or an
# infinity, which no comparison would catch) was not written by sessionward.
_TIME_BOUND = 1e15


def stored_time(value: object, name: str) -> float:
    """Check a time a store returned as a number (a SQL column): finite, else :class:`StoreError`.

    SQLite keeps text in a REAL column and PostgreSQL keeps ``NaN``; either would fail (or
    silently mislead) the first comparison with the clock, so it is refused here.
    """
    if (type(value) is float or type(value) is int) and -_TIME_BOUND < value < _TIME_BOUND:
        return float(value)
    raise StoreError(f"corrupt {name}: {_shown(value)}")


MAX_COUNT = 2**62
"""A version past this was never written by counting: a session cannot make 2⁶² writes, and
the next one would not fit a database's 64-bit integer."""


def stored_count(value: object, name: str) -> int:
    """Check a whole number a store returned (a version): an ``int`` from 0 to :data:`MAX_COUNT`."""
    if type(value) is int and 0 <= value <= MAX_COUNT:
        return value
    raise StoreError(f"corrupt {name}: {_shown(value)}")


def time_from_text(raw: bytes | str, name: str) -> float:
    """Parse a time a store keeps as text (a Redis hash field): finite, else :class:`StoreError`."""
    try:
        value = float(raw)
    except ValueError:
        raise StoreError(f"corrupt {name}: {_shown(raw)}") from None
    return stored_time(value, name)


def count_from_text(raw: bytes | str, name: str) -> int:
    """Parse a whole number a store keeps as text, as :func:`stored_count` checks it."""
    try:
        value = int(raw)
    except ValueError:
        raise StoreError(f"corrupt {name}: {_shown(raw)}") from None
    return stored_count(value, name)


def _shown(value: object) -> str:
    # Enough to recognise the value in a log line, never a whole planted blob.
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
