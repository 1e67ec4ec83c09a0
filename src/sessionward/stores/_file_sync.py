"""A store of JSON files in one directory, for a single server that survives restarts (blocking).

``file:///path/to/dir`` names the directory; :meth:`FileStore.setup` creates its layout::

    sessions/ab/cd/<key>.json   one entry (live record or tombstone) per storage key
    users/ab/<sha256 of user>.json   the per-user index: {"user": …, "keys": […]}
    expiry/<minute>/<key>       empty markers: an index of entries by expiry minute
    counters/ab/<name>.json     one fixed-window counter ({"hits": …, "resets_at": …})
    expiry/<minute>/c-<name>    a counter's marker, in the minute its window ends
    locks/k/ab, locks/u/ab      256 + 256 lock stripes for ``fcntl.flock``

Invariants:

* Every file is written whole: to a temporary file, ``fsync``, ``os.replace``, then the
  directory is synced. A reader sees the old file or the new one, never a mix, so reads
  take no lock.
* A write takes the flock of its key's stripe, so tasks, threads and processes sharing
  the directory are serialized per key; a save re-reads the entry under the lock and
  applies only its own keys, and never writes where no live record is.
* Locks are taken in one order — user stripes, then key stripes, each sorted — and are
  polled up to the store's timeout, so nothing deadlocks or hangs: a lock not had in
  time raises :class:`StoreUnavailableError`.
* Logins take the user's lock, so the per-user limit holds. The user index is a superset of the user's live
  sessions: keys are added before the record is written and removed after it ended, and
  readers check each entry, so a crash between two writes never shows a dead session.
* Each entry has a marker in the bucket of the minute it may be forgotten (a record's
  ``kept_until``, a tombstone's ``expires_at``, or the end of a renewal's grace while
  the tombstone holds the sealed successor), made before the entry is written;
  :meth:`FileStore.purge_expired` walks only buckets that have begun, so its cost
  follows what it removes, not the store's size.
* A counter's hit reads and rewrites its file under the flock of its name's stripe (the
  key stripes: a counter's name is a SHA-256 digest like a key), so hits from any
  number of processes are all counted. Nothing else is locked meanwhile: no deadlock.

This is the blocking store, which Flask and WSGI apps use as it is; the async store
(:class:`sessionward.stores.file.FileStore`) runs each of its methods in a worker thread.
An operating-system error (a full disk, a lost mount) leaves every method as
:class:`StoreUnavailableError`. Nothing is pickled; a raw session ID never reaches the
disk (files are named by the SHA-256 key).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar
from urllib.parse import unquote, urlsplit

import orjson
from msgspec.structs import replace

from sessionward._sync.stores.base import SessionStore
from sessionward.core.engine import Hits, SessionLimit, login_order
from sessionward.core.errors import ConfigError, StoreError, StoreSchemaMissingError, StoreUnavailableError
from sessionward.core.ids import is_handle, is_key
from sessionward.core.records import EndReason, Entry, Expected, SessionRecord, Tombstone, Update
from sessionward.stores._contract import Established, StoreStats, check_counter
from sessionward.stores._file_io import (
    bucket_of,
    decode_entry,
    encode_entry,
    ensure_dir,
    hold_locks,
    kept_until,
    settle_at,
    write_atomic,
)

logger = logging.getLogger("sessionward")
P = ParamSpec("P")
T = TypeVar("T")

COUNTER_MARK = "c-"
"""Prefix of a counter's expiry marker (an entry's marker is its bare key)."""


def _outage(method: Callable[Concatenate[FileStore, P], T]) -> Callable[Concatenate[FileStore, P], T]:
    """Make an operating-system error of ``method`` the store being unavailable."""

    @functools.wraps(method)
    def guarded(store: FileStore, /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(store, *args, **kwargs)
        except OSError as error:
            raise StoreUnavailableError(f"file store at {store.root} failed: {error}") from error

    return guarded


class FileStore(SessionStore):
    """Sessions as JSON files under ``root``; safe for many threads and processes on one host.

    Args:
        root: The store's directory (made by :meth:`setup`).
        timeout_s: The most a method waits for a lock before raising
            :class:`StoreUnavailableError`.
        durable: ``fsync`` every write (default). Turning it off trades crash safety
            for speed; ``os.replace`` still keeps every file whole.
    """

    def __init__(self, root: str | os.PathLike[str], *, timeout_s: float = 2.0, durable: bool = True) -> None:
        self.root = Path(root)
        self.timeout_s = timeout_s
        self.durable = durable
        self._sessions = self.root / "sessions"
        self._users = self.root / "users"
        self._expiry = self.root / "expiry"
        self._locks = self.root / "locks"
        self._counters = self.root / "counters"
        self._lock_dirs = (self._locks / "u", self._locks / "k")

    @classmethod
    def from_url(
        cls, url: str, *, setting: str = "SESSIONWARD_STORE", timeout_s: float = 2.0, must_exist: bool = False
    ) -> FileStore:
        """Build a store from ``file:///absolute/path/to/dir``; nothing is created (:meth:`setup` does).

        Args:
            url: The store's URL.
            setting: What the URL came from, for error messages.
            timeout_s: See the class.
            must_exist: Refuse a directory that :meth:`setup` did not lay out.

        Raises:
            ConfigError: naming ``setting``, when the URL is not a local absolute
                directory path, carries a query or fragment, or names a file.
            StoreSchemaMissingError: ``must_exist`` and there is no store at the path.
        """
        accepted = "use file:///absolute/path/to/dir"
        parts = urlsplit(url)
        if parts.scheme.lower() != "file":
            raise ConfigError(setting, f"{url!r} is not a file:// URL; {accepted}")
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(setting, f"{url!r} names host {parts.netloc!r}; the file store is local: {accepted}")
        if parts.query or parts.fragment:
            raise ConfigError(
                setting, f"{url!r} has a query or fragment, which the file store does not take; {accepted}"
            )
        path = unquote(parts.path)
        if not path.startswith("/") or path.rstrip("/") == "" or "\x00" in path:
            raise ConfigError(setting, f"{url!r} does not name an absolute directory path; {accepted}")
        root = Path(path)
        if root.exists() and not root.is_dir():
            raise ConfigError(setting, f"{url!r}: {root} exists and is not a directory")
        store = cls(root, timeout_s=timeout_s)
        if must_exist and not store._sessions.is_dir():
            raise StoreSchemaMissingError(f"the file store directory {root} was never set up")
        return store

    # -- paths, encoding and locks ----------------------------------------------------------

    def _entry_path(self, key: str) -> Path:
        _require_keys(key)
        return self._sessions / key[:2] / key[2:4] / f"{key}.json"

    def _index_path(self, user: str) -> Path:
        digest = _user_digest(user)
        return self._users / digest[:2] / f"{digest}.json"

    @contextmanager
    def _locked(self, users: Iterable[str | None] = (), keys: Iterable[str] = ()) -> Iterator[None]:
        """Hold the stripes of ``users`` then ``keys``, in the one global order."""
        with ExitStack() as stack:
            user_stripes = {self._locks / "u" / _user_digest(u)[:2] for u in users if u is not None}
            hold_locks(stack, sorted(user_stripes), timeout_s=self.timeout_s)
            hold_locks(stack, sorted({self._locks / "k" / key[:2] for key in keys}), timeout_s=self.timeout_s)
            yield

    def _read(self, key: str) -> Entry | None:
        """Return the entry under ``key`` whatever its expiry; raise StoreError if corrupt."""
        try:
            raw = self._entry_path(key).read_bytes()
        except FileNotFoundError:
            if not self._sessions.is_dir():
                # A missing directory is an outage (unmounted disk), not "no session".
                raise StoreUnavailableError(
                    f"file store at {self.root} has no sessions/ directory; run setup"
                ) from None
            return None
        return decode_entry(key, raw)

    def _peek(self, key: str) -> Entry | None:
        """Like :meth:`_read`, but a corrupt entry reads as none (for deciding what to lock)."""
        try:
            return self._read(key)
        except StoreError:
            return None

    def _write(self, path: Path, payload: bytes) -> None:
        write_atomic(path, payload, root=self.root, durable=self.durable)

    def _put(self, entry: Entry, previous: Entry | None) -> None:
        """Write ``entry``, filing its expiry marker first when its bucket is new."""
        bucket = bucket_of(settle_at(entry))
        if previous is None or bucket_of(settle_at(previous)) != bucket:
            marker_dir = self._expiry / str(bucket)
            ensure_dir(marker_dir, self.root)
            (marker_dir / entry.key).touch(mode=0o600)
        self._write(self._entry_path(entry.key), encode_entry(entry))

    def _index(self, user: str) -> set[str]:
        try:
            fields = orjson.loads(self._index_path(user).read_bytes())
        except FileNotFoundError:
            return set()
        except orjson.JSONDecodeError:
            logger.warning("rebuilding a corrupt user index file")
            return set()
        if not isinstance(fields, dict) or fields.get("user") != user or not isinstance(fields.get("keys"), list):
            return set()
        return {key for key in fields["keys"] if isinstance(key, str) and is_key(key)}

    def _write_index(self, user: str, keys: set[str]) -> None:
        path = self._index_path(user)
        if keys:
            self._write(path, orjson.dumps({"user": user, "keys": sorted(keys)}))
        else:
            with suppress(FileNotFoundError):
                path.unlink()

    def _live_of(self, user: str, keys: Iterable[str]) -> list[SessionRecord]:
        """Return the readable live records of ``user`` among ``keys``, expired or not."""
        records = []
        for key in keys:
            try:
                entry = self._read(key)
            except StoreError as error:
                logger.warning("skipping corrupt session %s: %s", key[:16], error)
                continue
            if isinstance(entry, SessionRecord) and entry.meta.user == user:
                records.append(entry)
        return records

    # -- the contract -------------------------------------------------------------------------

    @_outage
    def setup(self) -> None:
        """Create the directory layout (an explicit step, like a schema)."""
        self.root.parent.mkdir(parents=True, exist_ok=True)
        # One by one: mkdir(parents=True) would give the parents the default mode.
        for directory in (self.root, self._sessions, self._users, self._expiry, self._locks, *self._lock_dirs):
            directory.mkdir(mode=0o700, exist_ok=True)

    @_outage
    def load(self, key: str, now: float) -> Entry | None:
        entry = self._read(key)
        # A record past expires_at is still returned until kept_until: the engine tells why.
        if entry is None or kept_until(entry) <= now:
            return None
        return entry.seen_at(now) if isinstance(entry, Tombstone) else entry

    @_outage
    def save(self, key: str, update: Update) -> bool:
        _require_keys(key)

        with self._locked(keys=[key]):
            current = self._read(key)
            if not isinstance(current, SessionRecord):
                return False  # ended (or never was): never resurrect
            data = {**current.data, **update.set}
            for name in update.delete:
                data.pop(name, None)
            meta = replace(update.meta, user=current.meta.user)  # membership changes only by establish
            version = current.version + (1 if update.touches_data else 0)
            self._put(
                replace(
                    current,
                    meta=meta,
                    data=data,
                    expires_at=update.expires_at,
                    retain_until=update.retain_until,
                    version=version,
                ),
                current,
            )
            return True

    @_outage
    def establish(
        self,
        record: SessionRecord,
        *,
        retire: Tombstone | None = None,
        limit: SessionLimit | None = None,
        expect: Expected | None = None,
    ) -> Established:
        _require_keys(record.key, *([retire.key] if retire is not None else []))
        if expect is not None and expect.key not in (record.key, retire.key if retire is not None else None):
            raise ValueError("expect.key must be the retired key or the record's own key")
        user = record.meta.user
        retire_key = retire.key if retire is not None and retire.key != record.key else None
        touched = [record.key] + ([retire_key] if retire_key else [])

        def owners() -> set[str]:
            found = {entry.meta.user for entry in map(self._peek, touched) if isinstance(entry, SessionRecord)}
            return {name for name in found | {user} if name is not None}

        while True:
            users = owners()
            with self._locked(users=users):
                index = self._index(user) if user is not None else set()
                with self._locked(keys=[*touched, *index]):
                    if owners() != users:
                        continue  # a record changed hands before we held its user's lock
                    if expect is not None:
                        # The precondition, checked under the locks the write holds.
                        found = self._peek(expect.key)
                        if not isinstance(found, SessionRecord) or found.version != expect.version:
                            return Established(applied=False, found=found)
                    return self._establish_locked(record, retire if retire_key else None, limit, index)

    def _establish_locked(
        self, record: SessionRecord, retire: Tombstone | None, limit: SessionLimit | None, index: set[str]
    ) -> Established:
        user = record.meta.user
        retire_key = retire.key if retire is not None else None
        previous = self._peek(record.key)
        victims: list[SessionRecord] = []
        burials: list[Tombstone] = []
        filed: set[str] = set()
        if user is not None:
            others = self._live_of(user, {key for key in index if key != record.key})
            if limit is not None:
                alive = sorted((r for r in others if r.key != retire_key and r.expires_at > limit.now), key=login_order)
                victims = list(limit.displace(user, alive))  # raises before any write when refused
                burials.extend(limit.tombstone(victim.key, user) for victim in victims)
            # File the new key before the record exists (the index is a superset), and
            # prune keys that no longer hold this user's sessions while the lock is held.
            filed = {r.key for r in others} | {record.key}
            self._write_index(user, filed)
        for victim, tomb in zip(victims, burials, strict=True):
            self._put(tomb, victim)
        retired = self._end_locked(retire, update_index=False) if retire is not None else None
        # Overwriting bumps the version, as the SQL stores do, so a stale optimistic writer
        # elsewhere cannot mistake the new record for the one it loaded.
        version = max(record.version, previous.version + 1) if isinstance(previous, SessionRecord) else record.version
        self._put(replace(record, version=version), previous)
        gone = {victim.key for victim in victims} | ({retire_key} if retire_key else set())
        if user is not None and filed & gone:
            self._write_index(user, filed - gone)
        if retired is not None and retire_key is not None and retired.meta.user != user:
            self._drop_from_index(retired.meta.user, retire_key)
        if isinstance(previous, SessionRecord) and previous.meta.user != user:
            self._drop_from_index(previous.meta.user, record.key)
        return Established(displaced=victims)

    def _drop_from_index(self, user: str | None, key: str) -> None:
        if user is None:
            return
        keys = self._index(user)
        if key in keys:
            keys.discard(key)
            self._write_index(user, keys)

    def _end_locked(self, tombstone: Tombstone, *, update_index: bool) -> SessionRecord | None:
        """Write ``tombstone`` (keys and users locked); return the record it replaced."""
        try:
            current = self._read(tombstone.key)
        except StoreError as error:
            logger.warning("ending corrupt session %s: %s", tombstone.handle, error)
            current = None
        if isinstance(current, Tombstone):
            return None  # the first reason a session ended is the one remembered
        self._put(tombstone, current)
        if isinstance(current, SessionRecord) and update_index:
            self._drop_from_index(current.meta.user, tombstone.key)
        return current

    @_outage
    def end(self, tombstone: Tombstone) -> SessionRecord | None:
        _require_keys(tombstone.key)

        while True:
            before = self._peek(tombstone.key)
            owner = before.meta.user if isinstance(before, SessionRecord) else None
            with self._locked(users=[owner], keys=[tombstone.key]):
                now_there = self._peek(tombstone.key)
                if (now_there.meta.user if isinstance(now_there, SessionRecord) else None) != owner:
                    continue
                return self._end_locked(tombstone, update_index=True)

    @_outage
    def list_user(self, user: str, now: float) -> list[SessionRecord]:
        records = [r for r in self._live_of(user, self._index(user)) if r.expires_at > now]
        return sorted(records, key=lambda r: (r.meta.created_at, r.key))

    @_outage
    def find_handle(self, handle: str, now: float) -> SessionRecord | None:
        for entry in self._named(handle):
            if isinstance(entry, SessionRecord) and entry.expires_at > now:
                return entry
        return None

    @_outage
    def find_moved(self, handle: str, now: float) -> Tombstone | None:
        for entry in self._named(handle):
            if isinstance(entry, Tombstone) and entry.successor_key is not None and entry.expires_at > now:
                return entry
        return None

    def _named(self, handle: str) -> Iterator[Entry]:
        """Yield the readable entries whose key starts with ``handle``."""
        if not is_handle(handle):
            return  # never build a path from an unchecked handle
        shard = self._sessions / handle[:2] / handle[2:4]
        try:
            names = [name for name in os.listdir(shard) if name.startswith(handle) and name.endswith(".json")]
        except FileNotFoundError:
            return
        for name in names:
            key = name.removesuffix(".json")
            if is_key(key) and (entry := self._peek(key)) is not None:
                yield entry

    @_outage
    def end_user(
        self,
        user: str,
        reason: EndReason,
        now: float,
        tombstone_expires_at: float,
        *,
        keep_key: str | None = None,
    ) -> list[SessionRecord]:
        with self._locked(users=[user]):
            index = self._index(user)
            with self._locked(keys=index):
                ended = []
                for record in self._live_of(user, {key for key in index if key != keep_key}):
                    tomb = Tombstone(
                        key=record.key, reason=reason, user=user, ended_at=now, expires_at=tombstone_expires_at
                    )
                    self._end_locked(tomb, update_index=False)
                    if record.expires_at > now:
                        ended.append(record)
                kept = {r.key for r in self._live_of(user, {key for key in index if key == keep_key})}
                self._write_index(user, kept)
                return sorted(ended, key=lambda r: (r.meta.created_at, r.key))

    @_outage
    def purge_expired(self, now: float, batch_size: int = 500) -> int:
        removed = 0
        current_bucket = bucket_of(now)
        for bucket in self._due_buckets(current_bucket):
            directory = self._expiry / str(bucket)
            for key in sorted(os.listdir(directory)):
                if removed >= batch_size:
                    return removed
                if is_key(key):
                    removed += self._purge_one(directory, bucket, key, now)
                elif key.startswith(COUNTER_MARK) and is_key(key[len(COUNTER_MARK) :]):
                    removed += self._purge_counter(directory, bucket, key, now)
                else:
                    (directory / key).unlink(missing_ok=True)
            if bucket < current_bucket:
                with suppress(OSError):
                    directory.rmdir()  # kept if a writer just filed a marker there
        return removed

    def _due_buckets(self, current_bucket: int) -> list[int]:
        buckets = []
        for name in os.listdir(self._expiry):
            with suppress(ValueError):
                if int(name) <= current_bucket:
                    buckets.append(int(name))
        return sorted(buckets)

    def _purge_one(self, directory: Path, bucket: int, key: str, now: float) -> int:
        """Settle one marker: remove the entry if expired, drop the marker if stale."""
        before = self._peek(key)
        owner = before.meta.user if isinstance(before, SessionRecord) else None
        with self._locked(users=[owner], keys=[key]):
            try:
                entry = self._read(key)
            except StoreError:
                # Unreadable: removed once its bucket is over (SPEC §7), its cause logged.
                if bucket >= bucket_of(now):
                    return 0
                logger.warning("purging corrupt session file %s", key[:16])
                self._entry_path(key).unlink(missing_ok=True)
                (directory / key).unlink(missing_ok=True)
                return 1
            if entry is None:
                (directory / key).unlink(missing_ok=True)
                return 0
            if isinstance(entry, Tombstone) and entry.sealed_until is not None and entry.sealed_until < now:
                # The grace is over: the seal goes (a new marker files the rest for later).
                self._put(entry.unsealed(), entry)
                (directory / key).unlink(missing_ok=True)
                return 0
            if kept_until(entry) > now:
                if bucket_of(settle_at(entry)) != bucket:
                    (directory / key).unlink(missing_ok=True)  # extended: its marker is elsewhere
                return 0
            if isinstance(entry, SessionRecord) and entry.meta.user != owner:
                return 0  # changed hands meanwhile; the next purge settles it
            self._entry_path(key).unlink()
            (directory / key).unlink(missing_ok=True)
            if isinstance(entry, SessionRecord):
                self._drop_from_index(entry.meta.user, key)
            return 1

    # -- counters -----------------------------------------------------------------------------

    def _counter_path(self, name: str) -> Path:
        check_counter(name)  # it names a file
        return self._counters / name[:2] / f"{name}.json"

    def _read_counter(self, name: str) -> Hits | None:
        """Return the counter ``name`` whatever its window; raise StoreError if its file is corrupt."""
        try:
            raw = self._counter_path(name).read_bytes()
        except FileNotFoundError:
            return None
        return _decode_counter(name, raw)

    def _mark(self, marker: str, when: float) -> None:
        """File an expiry marker in the bucket of ``when``."""
        marker_dir = self._expiry / str(bucket_of(when))
        ensure_dir(marker_dir, self.root)
        (marker_dir / marker).touch(mode=0o600)

    @_outage
    def count_hit(self, name: str, window_s: float, now: float) -> Hits:
        check_counter(name, window_s)

        with self._locked(keys=[name]):
            try:
                current = self._read_counter(name)
            except StoreError as error:
                logger.warning("%s; counting afresh", error)
                current = None
            if current is None or current.resets_at <= now:
                hits = Hits(count=1, resets_at=now + window_s)
                # Filed before the counter is written: no counter the purge cannot find.
                self._mark(COUNTER_MARK + name, hits.resets_at)
            else:
                hits = Hits(count=current.count + 1, resets_at=current.resets_at)
            self._write(self._counter_path(name), orjson.dumps({"hits": hits.count, "resets_at": hits.resets_at}))
            return hits

    @_outage
    def reset_counter(self, name: str) -> None:
        check_counter(name)

        with self._locked(keys=[name]):
            self._counter_path(name).unlink(missing_ok=True)  # its marker goes at the next purge

    def _purge_counter(self, directory: Path, bucket: int, marker: str, now: float) -> int:
        """Settle one counter marker: remove the counter if its window ended, drop a stale marker."""
        name = marker[len(COUNTER_MARK) :]
        with self._locked(keys=[name]):
            try:
                current = self._read_counter(name)
            except StoreError as error:
                logger.warning("purging %s", error)
                current = Hits(count=0, resets_at=now)  # unreadable: it goes
            if current is not None and current.resets_at > now:
                if bucket_of(current.resets_at) != bucket:
                    (directory / marker).unlink(missing_ok=True)  # a newer window: its marker is elsewhere
                return 0
            (directory / marker).unlink(missing_ok=True)
            if current is None:
                return 0
            self._counter_path(name).unlink(missing_ok=True)
            return 1

    def _live_counters(self, now: float) -> int:
        live = 0
        for directory, _subdirectories, names in os.walk(self._counters):
            for file_name in names:
                name = file_name.removesuffix(".json")
                if not file_name.endswith(".json") or not is_key(name):
                    continue
                try:
                    hits = _decode_counter(name, Path(directory, file_name).read_bytes())
                except (StoreError, FileNotFoundError):
                    continue
                if hits.resets_at > now:
                    live += 1
        return live

    @_outage
    def stats(self, now: float) -> StoreStats:
        live = authenticated = tombstones = 0
        users: set[str] = set()
        for key in self._all_keys():
            entry = self._peek(key)
            if entry is None or entry.expires_at <= now:
                continue
            if isinstance(entry, Tombstone):
                tombstones += 1
                continue
            live += 1
            if entry.meta.user is not None:
                authenticated += 1
                users.add(entry.meta.user)
        return StoreStats(
            live_sessions=live,
            authenticated_sessions=authenticated,
            users=len(users),
            tombstones=tombstones,
            counters=self._live_counters(now),
        )

    def _all_keys(self) -> Iterator[str]:
        for directory, _subdirectories, names in os.walk(self._sessions):
            del directory
            for name in names:
                key = name.removesuffix(".json")
                if name.endswith(".json") and is_key(key):
                    yield key


# -- pure helpers ------------------------------------------------------------------------------


def _require_keys(*keys: str) -> None:
    # Keys name files and locks: anything but a SHA-256 hex digest could escape the directory.
    for key in keys:
        if not is_key(key):
            raise StoreError("the file store takes only SHA-256 storage keys")


def _decode_counter(name: str, raw: bytes) -> Hits:
    """Decode a counter file; raise :class:`StoreError` for anything but what ``count_hit`` writes."""
    try:
        fields = orjson.loads(raw)
    except orjson.JSONDecodeError:
        fields = None
    if isinstance(fields, dict):
        hits, resets_at = fields.get("hits"), fields.get("resets_at")
        if (
            type(hits) is int
            and hits > 0
            and isinstance(resets_at, int | float)
            and not isinstance(resets_at, bool)
            and math.isfinite(resets_at)
        ):
            return Hits(count=hits, resets_at=float(resets_at))
    raise StoreError(f"corrupt counter file {name[:16]}")


def _user_digest(user: str) -> str:
    return hashlib.sha256(user.encode("utf-8", "surrogatepass")).hexdigest()
