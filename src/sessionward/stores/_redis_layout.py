"""How the Redis stores lay sessions out in keys, hash fields and script arguments; pure, no I/O.

Keys (``P`` is the key prefix, ``sw:`` by default; ``H`` a session's handle, the first 16
hex digits of its storage key ``K``; ``T`` the user's tag, the user name with ``%``,
``{`` and ``}`` percent-escaped so that it never breaks a hash tag):

* ``P s:{H}K``: the session, a HASH (the whole key is in its name, for operators' tools).
  A live session has ``m`` (its metadata: see below), ``e`` (``expires_at``),
  ``r`` (``retain_until``: Redis keeps the hash until ``kept_until`` so the reason it
  ended can be told), ``v`` (version), ``u`` (the user's tag, when authenticated) and
  one field ``d:<name>`` per data key (its JSON value), so a per-key write is a native
  HSET/HDEL. A tombstone has only ``t`` (what ended and why, without the key: see
  below) and ``e``.
* ``P h:{H}``: the handle's key ``K`` (a string), for revocation by handle.
* ``P g:{H}K``: after a renewal, the successor sealed under the old ID (a string), kept
  only for the grace period (its TTL): the tombstone's ``t`` never holds it.
* ``P u:{T}``: the user's live sessions, a ZSET of ``K`` scored by ``created_at``
  (oldest first, ties by key, as the contract orders them).
* ``P ux:{T}``: the same members scored by their absolute deadline, an upper bound on
  when each can expire: entries past it are pruned.
* ``P c:{N}``: a fixed-window counter named ``N`` (a SHA-256 hex digest), a HASH with
  ``n`` (hits) and ``e`` (when its window ends); it expires by TTL soon after that.

The hash tags put a session with its handle key, and a user's two index keys together,
in one Redis Cluster slot each.

Redis keeps a small hash as one compact ``listpack`` only while every value is at most
``hash-max-listpack-value`` bytes (64 by default); one longer value turns it into a
hashtable at about twice the memory. So the metadata and a tombstone are written compact
(:func:`~sessionward.core.records.meta_to_packed`,
:func:`~sessionward.core.records.tombstone_to_packed`) and split into fields of at most 64
bytes: ``m``, ``m1``, ``m2``... (by this module) and ``t``, ``t1``... (by the scripts,
which receive a tombstone whole), in order. A store opened with ``record_format="json"``
writes ``m`` and ``t`` as one JSON document each instead, which sessionward 0.1 also
reads (for a fleet upgraded server by server); both formats are always read.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import orjson
from msgspec.structs import asdict, replace

from sessionward.core.engine import SessionLimit
from sessionward.core.errors import StoreError
from sessionward.core.records import (
    PACKED_MARK,
    EndReason,
    Entry,
    JSONValue,
    SessionMeta,
    SessionRecord,
    Tombstone,
    count_from_text,
    dumps,
    meta_from_json,
    meta_from_packed,
    meta_to_json,
    meta_to_packed,
    time_from_text,
    tombstone_from_json,
    tombstone_from_packed,
    tombstone_to_packed,
)
from sessionward.stores._contract import Established

logger = logging.getLogger("sessionward")

Arg = bytes | str | int | float
"""A script argument."""

DATA_PREFIX = b"d:"
_DATA_AT = len(DATA_PREFIX)
TTL_SLACK_MS = 1000
"""Redis keeps a key this long past its logical expiry: app servers' clocks differ a
little, and ``load`` checks expiry itself, so a key living a bit longer is harmless while
one vanishing early would turn a reason (tombstone) into "unknown"."""


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it can start key names; braces would break the hash tags."""
    if "{" in prefix or "}" in prefix:
        raise ValueError(f"key prefix {prefix!r} must not contain '{{' or '}}' (they would change the hash tags)")
    return prefix


def session_key(prefix: str, key: str) -> str:
    """Return the Redis key of the session stored under storage key ``key``."""
    return f"{prefix}s:{{{key[:16]}}}{key}"


def seal_key(prefix: str, key: str) -> str:
    """Return the Redis key holding a renewed session's sealed successor, for its grace only."""
    return f"{prefix}g:{{{key[:16]}}}{key}"


def seal_args(tomb: Tombstone | None) -> list[bytes | str | int]:
    """Return the sealed successor and its TTL in ms (until the grace ends), or ``''`` and 0.

    No slack here, unlike other TTLs: the seal must not outlive the grace at rest, and one
    that vanishes a moment early only turns a late request's answer into "renewed".
    """
    if tomb is None or tomb.sealed_successor is None or tomb.sealed_until is None:
        return ["", 0]
    return [tomb.sealed_successor, max(1, math.ceil((tomb.sealed_until - tomb.ended_at) * 1000))]


def handle_key(prefix: str, key: str) -> str:
    """Return the Redis key mapping the handle of ``key`` back to ``key``."""
    return f"{prefix}h:{{{key[:16]}}}"


def counter_key(prefix: str, name: str) -> str:
    """Return the Redis key of the fixed-window counter ``name`` (one key: one slot)."""
    return f"{prefix}c:{{{name}}}"


def user_tag(user: str) -> str:
    """Return ``user`` escaped for use inside a hash tag (injective: distinct users stay distinct)."""
    return user.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


def user_keys(prefix: str, tag: str) -> tuple[str, str]:
    """Return the user index keys (by creation, by deadline) for a user tag."""
    return f"{prefix}u:{{{tag}}}", f"{prefix}ux:{{{tag}}}"


def ttl_ms(expires_at: float, reference: float) -> int:
    """Return the Redis TTL for something that expires at ``expires_at``, seen at ``reference``.

    Callers pass the time the writer acted (the idle clock, the tombstone's end time), a
    time no later than now: the TTL then never ends before the logical expiry.
    """
    return max(1, math.ceil((expires_at - reference) * 1000)) + TTL_SLACK_MS


def number(value: float) -> str:
    """Return a float as text that Redis and Lua read back exactly."""
    return repr(float(value))


RECORD_FORMATS = ("compact", "json")
"""How a Redis store writes metadata: ``compact`` (the default) or ``json`` (as 0.1 did)."""

CHUNK_BYTES = 64
"""The longest field written for compact metadata or a tombstone: Redis' default
``hash-max-listpack-value``."""


def chunk_name(first: bytes, number_: int) -> bytes:
    """Return the name of field ``number_`` of a value split from field ``first`` on: ``m``, ``m1``..."""
    return first + b"%d" % number_ if number_ else first


def meta_fields(meta: SessionMeta, *, compact: bool) -> list[bytes | str]:
    """Return the metadata's hash fields and values, flat: ``m``, ``m1``... (see the module docstring)."""
    return chunks(b"m", meta_to_packed(meta)) if compact else ["m", meta_to_json(meta)]


def chunks(first: bytes, packed: bytes) -> list[bytes | str]:
    """Split a compact value into hash fields ``first``, ``first`` 1... of at most :data:`CHUNK_BYTES`, flat."""
    fields: list[bytes | str] = []
    for number_, start in enumerate(range(0, len(packed), CHUNK_BYTES)):
        fields += [chunk_name(first, number_), packed[start : start + CHUNK_BYTES]]
    return fields


def joined(first: bytes, value: bytes, rest: Mapping[bytes, bytes]) -> bytes:
    """Join a compact value from its field ``first`` (holding ``value``) and the others, by name.

    Every field must come in turn and none stray: a missing or an extra one is corrupt.
    """
    if not rest:
        return value
    count = len(rest)
    names = _LATER_NAMES[first][:count] if count < _NAMED else [chunk_name(first, n) for n in range(1, count + 1)]
    try:  # n fields named first1..firstn, all there: none is missing, so none is stray
        return value + b"".join([rest[name] for name in names])
    except KeyError:
        raise StoreError(f"a field {first.decode()}<n> out of turn") from None


# Read on every load of a compact session: the usual names are made once.
_NAMED = 64
_LATER_NAMES = {first: tuple(chunk_name(first, n) for n in range(1, _NAMED)) for first in (b"m", b"t")}


def record_fields(record: SessionRecord, *, compact: bool = True) -> list[bytes | str]:
    """Return the hash fields and values of a live record, flat (for HSET)."""
    fields = meta_fields(record.meta, compact=compact)
    fields += ["e", number(record.expires_at)]
    fields += ["v", str(record.version), "r", number(record.retain_until)]
    if record.meta.user is not None:
        fields += ["u", user_tag(record.meta.user)]
    for name, value in record.data.items():
        fields += [DATA_PREFIX + name.encode(), dumps(value)]
    return fields


def tombstone_value(tomb: Tombstone, *, compact: bool) -> bytes:
    """Encode a tombstone without its key (the Redis key names it; victims share one value).

    Compact, or JSON as sessionward 0.1 wrote it; the scripts split a compact one into
    fields of at most :data:`CHUNK_BYTES`.
    """
    if compact:
        return tombstone_to_packed(tomb)
    fields = asdict(tomb)
    del fields["key"]
    return orjson.dumps(fields)  # the reason is a StrEnum: orjson writes its value


def text(value: bytes | str) -> str:
    """Return a reply's bytes (or text, from a client that decodes) as text."""
    return value.decode() if isinstance(value, bytes) else value


def members(reply: Any) -> list[str]:
    """Return the members of a ZRANGE reply as text."""
    return [text(member) for member in reply]


def glob_escape(pattern_text: str) -> str:
    """Escape ``pattern_text`` for a SCAN ``MATCH`` pattern (a prefix may hold ``*`` or ``[``)."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in pattern_text)


def pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    """Turn a flat HGETALL-style list (as a Lua script returns it) into a dict."""
    items = iter(flat)  # bytes: the stores refuse clients that decode replies to text
    return dict(zip(items, items, strict=False))


def decode_entry(key: str, fields: list[bytes] | Mapping[bytes, bytes]) -> Entry | None:
    """Decode a session hash into a record or tombstone; ``None`` if the hash is empty.

    Args:
        key: The session's storage key.
        fields: The hash as a mapping (``HGETALL`` in RESP3, redis-py's ``hgetall``) or
            flat, name after value (``HGETALL`` in RESP2, the scripts' replies), as bytes:
            the stores refuse clients that decode replies to text.

    Raises:
        StoreError: the hash is corrupt (then the caller treats the session as invalid).
    """
    if not fields:
        return None
    hash_ = pairs(fields) if isinstance(fields, list) else dict(fields)
    # The fields sessionward writes by name, taken out; what is left is data (d:<name>),
    # the later fields of a compact value (m1..., t1...) and anything else, ignored.
    pop = hash_.pop
    meta, expires, tomb, tag = pop(b"m", None), pop(b"e", None), pop(b"t", None), pop(b"u", None)
    version, retain = pop(b"v", b"0"), pop(b"r", b"0")
    touched, sealed = pop(b"a", None), pop(b"g", None)  # g: only in a script's reply (the seal's key)
    data: dict[str, JSONValue] = {}
    meta_rest: dict[bytes, bytes] = {}
    tomb_rest: dict[bytes, bytes] = {}
    try:
        for name, value in hash_.items():
            if name[:_DATA_AT] == DATA_PREFIX:
                data[name[_DATA_AT:].decode()] = orjson.loads(value)
            elif name[:1] == b"m":
                meta_rest[name] = value
            elif name[:1] == b"t":
                tomb_rest[name] = value
        if expires is None:
            raise StoreError("no expiry field")
        if tomb is not None:
            if meta is not None or meta_rest or data:
                raise StoreError("a tombstone beside session fields")  # sessionward never writes both
            tombstone = decode_tombstone(key, tomb, tomb_rest)
            if sealed is not None:
                tombstone = replace(tombstone, sealed_successor=sealed.decode())
            return tombstone
        if meta is None or tomb_rest:
            raise StoreError("no metadata field" if meta is None else "tombstone fields beside a session")
        decoded_meta = decode_meta(meta, meta_rest)
        if tag != (None if decoded_meta.user is None else user_tag(decoded_meta.user).encode()):
            # ``u`` is what the user-wide scripts go by: one that names someone else would
            # have this session ended as theirs.
            raise StoreError("its user tag is not its metadata's user")
        if touched is not None:
            # Written beside ``m`` by earlier versions' load-and-touch script, which left
            # ``m`` alone: the later of the two is the idle clock. Saves now drop it.
            decoded_meta.last_access_at = max(decoded_meta.last_access_at, time_from_text(touched, "access time"))
        return SessionRecord(
            key=key,
            meta=decoded_meta,
            data=data,
            expires_at=time_from_text(expires, "expiry"),
            version=count_from_text(version, "version"),
            retain_until=time_from_text(retain, "retention"),
        )
    except (UnicodeDecodeError, orjson.JSONDecodeError) as error:
        raise StoreError(f"corrupt session record {key[:16]} in Redis: {type(error).__name__}: {error}") from None
    except StoreError as error:
        raise StoreError(f"corrupt session record {key[:16]} in Redis: {error}") from None


def decode_meta(first: bytes, rest: Mapping[bytes, bytes]) -> SessionMeta:
    """Decode metadata from its first field ``m`` and the others (``m1``, ``m2``...) by name.

    JSON stands alone in ``m``: chunks beside it are left from a compact write that a
    server writing JSON replaced (a fleet mid-upgrade), and the next compact write removes
    them. Compact metadata must come whole, every chunk in turn and none stray.
    """
    if first[:1] != PACKED_MARK:
        return meta_from_json(first)
    return meta_from_packed(joined(b"m", first, rest))


def decode_tombstone(key: str, first: bytes, rest: Mapping[bytes, bytes]) -> Tombstone:
    """Decode the tombstone of ``key`` from its first field ``t`` and the others (``t1``...) by name.

    A tombstone is written whole (the hash replaced), so JSON has no fields beside it.
    """
    if first[:1] != PACKED_MARK:
        if rest:
            raise StoreError("a field t<n> beside a JSON tombstone")
        return tombstone_from_json(first, key)
    return tombstone_from_packed(joined(b"t", first, rest), key)


def is_live(fields: list[bytes | None], now: float, tag: bytes | None = None) -> bool:
    """Tell from ``HMGET key e t u`` whether a session is live at ``now`` (and, given ``tag``, that user's)."""
    expires, tomb, user = fields
    if expires is None or tomb is not None or (tag is not None and user != tag):
        return False
    try:
        return float(expires) > now
    except ValueError:
        return False


def ends_after(ends: bytes | str | None, now: float) -> bool:
    """Tell whether a counter's window end (its ``e`` field) is after ``now``."""
    try:
        return ends is not None and float(ends) > now
    except ValueError:
        return False


def tomb_args(tomb: Tombstone | None, *, compact: bool) -> list[Arg]:
    """Return a tombstone's script arguments: its value, expiry and TTL (or none)."""
    if tomb is None:
        return ["", "0", 1]
    return [tombstone_value(tomb, compact=compact), number(tomb.expires_at), ttl_ms(tomb.expires_at, tomb.ended_at)]


def displacement(user: str | None, limit: SessionLimit | None) -> Tombstone | None:
    """Return the tombstone (without its key) of the sessions a login under ``limit`` displaces."""
    if limit is None:
        return None
    return Tombstone(
        key="", reason=EndReason.DISPLACED, user=user, ended_at=limit.now, expires_at=limit.tombstone_expires_at
    )


def live_record(key: str, fields: dict[bytes, bytes]) -> SessionRecord | None:
    """Decode the fields a session had when it ended; ``None`` unless it was a live record."""
    try:
        entry = decode_entry(key, fields)
    except StoreError:
        logger.warning("corrupt session record %s ended", key[:16])
        return None
    return entry if isinstance(entry, SessionRecord) else None


def not_applied(key: str, fields: Any) -> Established:
    """Return the result of a move whose precondition failed, with what ``key`` holds."""
    try:
        found = decode_entry(key, pairs(fields)) if fields else None
    except StoreError:
        logger.warning("corrupt session record %s met by a move", key[:16])
        found = None
    return Established(applied=False, found=found)
