"""The file store's on-disk primitives: the entry format, atomic writes, flock stripes.

Kept apart from :mod:`sessionward.stores.file`, which says *what* is written and locked;
this module says *how*, and knows nothing of users, indexes or the contract.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import time
from contextlib import ExitStack, suppress
from pathlib import Path

import orjson
from msgspec.structs import asdict, replace

from sessionward.core.errors import StoreError, StoreUnavailableError
from sessionward.core.records import (
    Entry,
    SessionRecord,
    Tombstone,
    dumps,
    meta_from_fields,
    stored_count,
    stored_time,
    tombstone_from_fields,
)

FORMAT = 1
BUCKET_S = 60
_POLL_S = (0.0005, 0.02)  # first and longest pause between attempts at a busy lock


def hold_locks(stack: ExitStack, paths: list[Path], *, timeout_s: float) -> None:
    """Take an exclusive ``flock`` on each of ``paths`` in order, released when ``stack`` closes.

    Polls rather than blocks, so a lock held by a stuck process raises
    :class:`StoreUnavailableError` after ``timeout_s`` instead of hanging a thread.
    The files are made if missing, but not their directory.
    """
    deadline = time.monotonic() + timeout_s
    for path in paths:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        stack.callback(os.close, descriptor)
        pause = _POLL_S[0]
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreUnavailableError(f"file store lock {path} busy for {timeout_s} s") from None
                time.sleep(pause)
                pause = min(pause * 2, _POLL_S[1])
        stack.callback(fcntl.flock, descriptor, fcntl.LOCK_UN)


def write_atomic(path: Path, payload: bytes, *, root: Path, durable: bool) -> None:
    """Replace ``path`` with ``payload`` whole: temporary file, fsync, rename, fsync of the directory."""
    ensure_dir(path.parent, root)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(descriptor, view) :]
        if durable:
            os.fsync(descriptor)
    except BaseException:
        os.close(descriptor)
        with suppress(OSError):
            temporary.unlink()
        raise
    os.close(descriptor)
    os.replace(temporary, path)
    if durable:
        fsync_dir(path.parent)


def bucket_of(when: float) -> int:
    """Return the expiry bucket (minute) of a time."""
    return int(when // BUCKET_S)


def kept_until(entry: Entry) -> float:
    """When the store may forget ``entry``."""
    return entry.kept_until if isinstance(entry, SessionRecord) else entry.expires_at


def settle_at(entry: Entry) -> float:
    """When the purge must next look at ``entry``: its seal's end, else when it may go."""
    if isinstance(entry, Tombstone) and entry.sealed_until is not None:
        return entry.sealed_until
    return kept_until(entry)


def encode_entry(entry: Entry) -> bytes:
    """Encode a record or tombstone as an entry file."""
    if isinstance(entry, Tombstone):
        return orjson.dumps({"format": FORMAT, "kind": "tomb", "expires_at": entry.expires_at, "tomb": asdict(entry)})
    return orjson.dumps(
        {
            "format": FORMAT,
            "kind": "live",
            "expires_at": entry.expires_at,
            "retain_until": entry.retain_until,
            "version": entry.version,
            "meta": asdict(entry.meta),
            "data": orjson.Fragment(dumps(entry.data)),
        }
    )


def decode_entry(key: str, raw: bytes) -> Entry:
    """Decode an entry file, checking every field's type; raise :class:`StoreError` for anything but what we write."""
    try:
        fields = orjson.loads(raw)
        if not isinstance(fields, dict):
            raise StoreError("not a JSON object")
        kind = fields.get("kind")
        expires_at = stored_time(fields.get("expires_at"), "expiry")
        if kind == "tomb":
            return replace(tombstone_from_fields(fields.get("tomb"), key), expires_at=expires_at)
        if kind == "live":
            data = fields.get("data")
            if not isinstance(data, dict):
                raise StoreError("the data is not a JSON object")
            return SessionRecord(
                key=key,
                meta=meta_from_fields(fields.get("meta")),
                data=data,
                expires_at=expires_at,
                version=stored_count(fields.get("version"), "version"),
                retain_until=stored_time(fields.get("retain_until"), "retention"),
            )
        raise StoreError(f"unknown kind {kind!r:.20}")
    except orjson.JSONDecodeError as error:
        raise StoreError(f"corrupt session file {key[:16]}: {error}") from None
    except StoreError as error:
        raise StoreError(f"corrupt session file {key[:16]}: {error}") from None


def ensure_dir(directory: Path, root: Path) -> None:
    """Make ``directory`` and missing parents below ``root`` (which must exist: setup made it)."""
    missing = []
    while directory != root and not directory.is_dir():
        missing.append(directory)
        directory = directory.parent
    if not root.is_dir():
        raise FileNotFoundError(errno.ENOENT, "the store directory is missing; run setup", str(root))
    for path in reversed(missing):
        with suppress(FileExistsError):
            path.mkdir(mode=0o700)


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
