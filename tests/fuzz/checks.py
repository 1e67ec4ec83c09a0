"""What every fuzz property asserts about a decoded entry, and the engine's use of it.

A decoder must return an entry whose every field has its declared type (a float field a
finite ``float``, an int field an ``int``, a text field a ``str`` that can be written
back, the reason an :class:`EndReason`), stored under the key that was asked for, or
raise :class:`~sessionward.core.errors.StoreError`. Anything else either escapes as a 500 or
flows on into the engine, where it fails later and further from its cause.
"""

from __future__ import annotations

import math
from typing import Any

from sessionward.core.config import BindingPolicy, SessionPolicy
from sessionward.core.engine import Assessment, ClientInfo, SessionEngine, Verdict
from sessionward.core.records import EndReason, Entry, SessionMeta, SessionRecord, Tombstone, dumps


class Violation(AssertionError):
    """A property does not hold; ``signature`` names the kind of failure (for grouping)."""

    def __init__(self, signature: str, detail: str = "") -> None:
        super().__init__(f"{signature}: {detail}" if detail else signature)
        self.signature = signature


def expect(condition: bool, signature: str, detail: str = "") -> None:
    """Raise :class:`Violation` unless ``condition`` holds."""
    if not condition:
        raise Violation(signature, detail)


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}"


def _float(where: str, value: Any) -> None:
    expect(type(value) is float and math.isfinite(value), f"{where} is not a finite float", _describe(value))


def _optional_float(where: str, value: Any) -> None:
    if value is not None:
        _float(where, value)


def _text(where: str, value: Any) -> None:
    expect(type(value) is str, f"{where} is not a str", _describe(value))
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Violation(f"{where} is a str no codec can write", _describe(value)) from None


def _optional_text(where: str, value: Any) -> None:
    if value is not None:
        _text(where, value)


def check_json(where: str, value: Any) -> None:
    """Check that ``value`` is JSON-typed (finite floats) and writable by ``records.dumps``."""
    kind = type(value)
    if kind is dict:
        for name, item in value.items():
            _text(f"{where} key", name)
            check_json(where, item)
    elif kind is list:
        for item in value:
            check_json(where, item)
    elif kind is float:
        _float(where, value)
    elif kind is str:
        _text(where, value)
    else:
        expect(value is None or kind in (bool, int), f"{where} holds a non-JSON value", _describe(value))


def check_meta(meta: Any, where: str = "meta") -> None:
    """Check every field of a :class:`SessionMeta`."""
    expect(type(meta) is SessionMeta, f"{where} is not a SessionMeta", _describe(meta))
    for name in ("created_at", "last_access_at", "rotated_at", "absolute_deadline"):
        _float(f"{where}.{name}", getattr(meta, name))
    for name in ("auth_at", "elevated_until"):
        _optional_float(f"{where}.{name}", getattr(meta, name))
    for name in ("user", "ip", "user_agent", "binding", "csrf_token"):
        _optional_text(f"{where}.{name}", getattr(meta, name))


def check_tombstone(tomb: Any, key: str | None) -> None:
    """Check every field of a :class:`Tombstone` (and its key, when ``key`` is given)."""
    expect(type(tomb) is Tombstone, "not a Tombstone", _describe(tomb))
    _text("Tombstone.key", tomb.key)
    if key is not None:
        expect(tomb.key == key, "Tombstone.key is not the key loaded", f"{tomb.key!r} for {key!r}")
    expect(isinstance(tomb.reason, EndReason), "Tombstone.reason is not an EndReason", _describe(tomb.reason))
    _optional_text("Tombstone.user", tomb.user)
    _float("Tombstone.ended_at", tomb.ended_at)
    _float("Tombstone.expires_at", tomb.expires_at)
    _optional_text("Tombstone.successor_key", tomb.successor_key)
    _optional_text("Tombstone.sealed_successor", tomb.sealed_successor)
    _optional_float("Tombstone.grace_until", tomb.grace_until)


def check_record(record: Any, key: str | None) -> None:
    """Check every field of a :class:`SessionRecord` (and its key, when ``key`` is given)."""
    expect(type(record) is SessionRecord, "not a SessionRecord", _describe(record))
    _text("SessionRecord.key", record.key)
    if key is not None:
        expect(record.key == key, "SessionRecord.key is not the key loaded", f"{record.key!r} for {key!r}")
    check_meta(record.meta, "SessionRecord.meta")
    expect(type(record.data) is dict, "SessionRecord.data is not a dict", _describe(record.data))
    check_json("SessionRecord.data", record.data)
    try:
        dumps(record.data)
    except TypeError as error:
        raise Violation("SessionRecord.data cannot be written back", str(error)) from None
    _float("SessionRecord.expires_at", record.expires_at)
    expect(type(record.version) is int, "SessionRecord.version is not an int", _describe(record.version))
    _float("SessionRecord.retain_until", record.retain_until)


def check_entry(entry: Any, key: str | None) -> None:
    """Check a decoder's result: ``None``, or a record or tombstone of declared types."""
    if entry is None:
        return
    if isinstance(entry, Tombstone):
        check_tombstone(entry, key)
    else:
        check_record(entry, key)


ENGINES = (
    SessionEngine(SessionPolicy()),
    SessionEngine(SessionPolicy(binding=BindingPolicy.parse("ua+ip_prefix"))),
)
"""The default policy, and one that binds sessions to the client's User-Agent and network."""

CLIENT = ClientInfo(ip="203.0.113.9", user_agent="fuzz/1.0")


def check_engine(raw_id: str, entry: Entry | None, now: float) -> None:
    """Drive the engine over a decoded entry as a request at ``now`` would; it must not raise."""
    for engine in ENGINES:
        assessment = engine.assess(raw_id, entry, now)
        engine.assess(raw_id, entry, now, passive=True)
        _check_assessment(assessment, entry)
        if isinstance(entry, Tombstone):
            entry.seen_at(now)
            continue
        if entry is None:
            continue
        engine.check_binding(entry.meta, CLIENT)
        engine.status(entry, now)
        engine.deadline(entry.meta)
        engine.plan_update(entry, {"n": 1}, frozenset(), now, touch=assessment.touch)


def _check_assessment(assessment: Assessment, entry: Entry | None) -> None:
    if entry is None:
        expect(assessment.verdict is Verdict.UNKNOWN, "engine: no entry is not UNKNOWN", repr(assessment))
    elif isinstance(entry, Tombstone):
        expect(assessment.verdict in (Verdict.ENDED, Verdict.GRACE), "engine: a tombstone reads as live")
    else:
        expect(assessment.verdict in (Verdict.VALID, Verdict.ENDED), "engine: a record reads as neither")
