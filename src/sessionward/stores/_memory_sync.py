"""An in-process store, for tests and single-process apps (``memory://``), written blocking.

Every public method holds the store's lock from its start to its end (the private ones
run under their caller's), so each is atomic with respect to every other call from any
thread; that is what makes
:meth:`MemoryStore.establish` enforce the per-user limit exactly. No method waits for
anything but that lock, so the async store (:class:`sessionward.stores.memory.MemoryStore`)
calls them inline, on its event loop. Data is kept as encoded JSON, so the store behaves
like the others (no shared mutable objects) and a value that could not be stored
elsewhere cannot be stored here either.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from msgspec.structs import replace

from sessionward._sync.stores.base import SessionStore
from sessionward.core.engine import Hits, SessionLimit, login_order
from sessionward.core.records import (
    EndReason,
    Entry,
    Expected,
    SessionRecord,
    Tombstone,
    Update,
    dumps,
    loads,
)
from sessionward.stores._contract import Established, StoreStats, check_counter


@dataclass(slots=True)
class _Stored:
    record: SessionRecord
    data: dict[str, bytes]


class MemoryStore(SessionStore):
    """Sessions in a dict; lost when the process ends. Safe for many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, _Stored] = {}
        self._tombs: dict[str, Tombstone] = {}
        self._by_user: dict[str, set[str]] = {}
        self._counters: dict[str, Hits] = {}

    def load(self, key: str, now: float) -> Entry | None:
        with self._lock:
            stored = self._live.get(key)
            if stored is not None:
                # Past expires_at but within retention: returned, so the engine can say why it ended.
                if stored.record.kept_until <= now:
                    return None
                return self._materialize(stored)
            tomb = self._tombs.get(key)
            if tomb is not None and tomb.expires_at > now:
                seen = tomb.seen_at(now)
                if seen is not tomb:
                    self._tombs[key] = seen  # the grace is over: the seal goes
                return seen
            return None

    def _entry(self, key: str) -> Entry | None:
        """Return what ``key`` holds, whatever its expiry (a failed precondition reports it)."""
        stored = self._live.get(key)
        return self._materialize(stored) if stored is not None else self._tombs.get(key)

    def save(self, key: str, update: Update) -> bool:
        with self._lock:
            stored = self._live.get(key)
            if stored is None:
                return False
            for name, value in update.set.items():
                stored.data[name] = dumps(value)
            for name in update.delete:
                stored.data.pop(name, None)
            stored.record = replace(
                stored.record,
                meta=replace(update.meta),
                expires_at=update.expires_at,
                retain_until=update.retain_until,
                version=stored.record.version + (1 if update.touches_data else 0),
            )
            return True

    def establish(
        self,
        record: SessionRecord,
        *,
        retire: Tombstone | None = None,
        limit: SessionLimit | None = None,
        expect: Expected | None = None,
    ) -> Established:
        with self._lock:
            if expect is not None:
                current = self._live.get(expect.key)
                if current is None or current.record.version != expect.version:
                    return Established(applied=False, found=self._entry(expect.key))
            user = record.meta.user
            displaced: list[SessionRecord] = []
            if limit is not None and user is not None:
                excluded = {record.key, retire.key if retire else None}
                others = [
                    s.record
                    for k in self._by_user.get(user, ())
                    if k not in excluded and (s := self._live[k]).record.expires_at > limit.now
                ]
                others.sort(key=login_order)
                for victim in limit.displace(user, others):
                    self._end(limit.tombstone(victim.key, user))
                    displaced.append(victim)
            if retire is not None and retire.key != record.key:
                self._end(retire)
            previous = self._live.get(record.key)
            if previous is not None and previous.record.meta.user not in (None, user):
                self._by_user.get(previous.record.meta.user or "", set()).discard(record.key)
            self._tombs.pop(record.key, None)
            self._live[record.key] = _Stored(
                record=replace(record, data={}, meta=replace(record.meta)),
                data={name: dumps(value) for name, value in record.data.items()},
            )
            if user is not None:
                self._by_user.setdefault(user, set()).add(record.key)
            return Established(displaced=displaced)

    def end(self, tombstone: Tombstone) -> SessionRecord | None:
        with self._lock:
            return self._end(tombstone)

    def _end(self, tombstone: Tombstone) -> SessionRecord | None:
        stored = self._live.pop(tombstone.key, None)
        if stored is None:
            self._tombs.setdefault(tombstone.key, tombstone)
            return None
        self._tombs[tombstone.key] = tombstone
        user = stored.record.meta.user
        if user is not None:
            keys = self._by_user.get(user)
            if keys is not None:
                keys.discard(tombstone.key)
                if not keys:
                    del self._by_user[user]
        return self._materialize(stored)

    def list_user(self, user: str, now: float) -> list[SessionRecord]:
        with self._lock:
            records = [
                self._materialize(self._live[k])
                for k in self._by_user.get(user, ())
                if self._live[k].record.expires_at > now
            ]
            return sorted(records, key=lambda r: (r.meta.created_at, r.key))

    def find_handle(self, handle: str, now: float) -> SessionRecord | None:
        with self._lock:
            for key, stored in self._live.items():
                if key.startswith(handle) and len(handle) >= 16 and stored.record.expires_at > now:
                    return self._materialize(stored)
            return None

    def find_moved(self, handle: str, now: float) -> Tombstone | None:
        with self._lock:
            if len(handle) < 16:
                return None
            for key, tomb in self._tombs.items():
                if key.startswith(handle) and tomb.successor_key is not None and tomb.expires_at > now:
                    return tomb
            return None

    def end_user(
        self,
        user: str,
        reason: EndReason,
        now: float,
        tombstone_expires_at: float,
        *,
        keep_key: str | None = None,
    ) -> list[SessionRecord]:
        with self._lock:
            ended = []
            for key in list(self._by_user.get(user, ())):
                if key == keep_key:
                    continue
                record = self._end(
                    Tombstone(key=key, reason=reason, user=user, ended_at=now, expires_at=tombstone_expires_at)
                )
                if record is not None and record.expires_at > now:
                    ended.append(record)
            return ended

    def purge_expired(self, now: float, batch_size: int = 500) -> int:
        with self._lock:
            removed = 0
            for key in [k for k, s in self._live.items() if s.record.kept_until <= now][:batch_size]:
                stored = self._live.pop(key)
                user = stored.record.meta.user
                if user is not None and user in self._by_user:
                    self._by_user[user].discard(key)
                    if not self._by_user[user]:
                        del self._by_user[user]
                removed += 1
            for key in [k for k, t in self._tombs.items() if t.expires_at <= now][: batch_size - removed]:
                del self._tombs[key]
                removed += 1
            for key, tomb in list(self._tombs.items()):
                self._tombs[key] = tomb.seen_at(now)  # seals whose grace is over go
            for name in [n for n, hits in self._counters.items() if hits.resets_at <= now][: batch_size - removed]:
                del self._counters[name]
                removed += 1
            return removed

    def count_hit(self, name: str, window_s: float, now: float) -> Hits:
        check_counter(name, window_s)
        with self._lock:
            current = self._counters.get(name)
            if current is None or current.resets_at <= now:
                hits = Hits(count=1, resets_at=now + window_s)
            else:
                hits = Hits(count=current.count + 1, resets_at=current.resets_at)
            self._counters[name] = hits
            return hits

    def reset_counter(self, name: str) -> None:
        check_counter(name)
        with self._lock:
            self._counters.pop(name, None)

    def stats(self, now: float) -> StoreStats:
        with self._lock:
            live = [s.record for s in self._live.values() if s.record.expires_at > now]
            users = {r.meta.user for r in live if r.meta.user is not None}
            return StoreStats(
                live_sessions=len(live),
                authenticated_sessions=sum(1 for r in live if r.meta.user is not None),
                users=len(users),
                tombstones=sum(1 for t in self._tombs.values() if t.expires_at > now),
                counters=sum(1 for hits in self._counters.values() if hits.resets_at > now),
            )

    @staticmethod
    def _materialize(stored: _Stored) -> SessionRecord:
        return replace(
            stored.record,
            meta=replace(stored.record.meta),
            data={name: loads(value) for name, value in stored.data.items()},
        )
