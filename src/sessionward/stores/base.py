"""The async store contract every backend implements.

A store files entries (live :class:`~sessionward.core.records.SessionRecord` or
:class:`~sessionward.core.records.Tombstone`) under the *storage key* (SHA-256 of the ID);
it never sees a raw ID. It keeps a per-user index of live sessions and remembers
tombstones until they expire, so a user can be told why a session ended. It does not
decide: the sans-I/O engine computes deadlines and tombstones and passes them in, with
``now``.

Guarantees every store gives (the conformance suite in ``tests/stores`` checks them):

* :meth:`SessionStore.save` applies per-key changes, so concurrent saves that change
  different keys both keep their change; for the same key the last write wins.
* :meth:`SessionStore.save` never resurrects: if the key no longer holds a live record
  (a concurrent logout ended it), nothing is written and it returns ``False``.
* :meth:`SessionStore.establish` writes a new record, retires the old key and enforces
  the per-user limit atomically with respect to other logins of the same user.
  When it carries an :class:`~sessionward.core.records.Expected` (every login, rotation and
  renewal of an existing session does), it applies only while the old key still holds a
  live record at the expected version, checked and written in one atomic step (one Lua
  script, one transaction holding the row and user locks, one set of file locks).
  Otherwise it writes nothing and returns what it found (``applied=False``), so a move
  never undoes a concurrent logout or revocation and one renewal never forks a session.
* A move (renewal, rotation) leaves on the old key a tombstone naming the successor's
  key; :meth:`SessionStore.end_following` follows it, so ending a session that a racing
  request just moved still ends it, and :meth:`SessionStore.find_moved` lets a handle
  listed before the move still reach it.
* :meth:`SessionStore.end` has no precondition (ending always wins) and keeps the first
  tombstone on a key. :meth:`SessionStore.end_user` and every establish of a user's
  session are atomic with respect to each other (the user's lock, or one script): an
  "end all of a user's sessions" sees either the old key of a racing move (which the
  move then finds ended) or its new key (which it ends).
* A renewal's sealed successor is kept only until its grace ends (``Tombstone.sealed_until``):
  a load after that never shows it, and the store forgets it (Redis by expiry, the others
  in :meth:`SessionStore.purge_expired`), keeping the rest of the tombstone.
* Records whose ``expires_at`` has passed are never listed or counted (``list_user``,
  ``find_handle``, ``stats``, the login limit). :meth:`load` still returns them until
  ``record.kept_until`` (``retain_until``) so the engine can tell the user why the session
  ended and bury it; tombstones are returned until their ``expires_at``.
  :meth:`purge_expired` removes what is past those times in bounded batches.
* :meth:`SessionStore.count_hit` counts a hit on a fixed-window counter in one atomic
  step (a locked read and write, one upsert, one script), so hits from any number of
  tasks, threads, processes and servers are all counted: N clients hitting a counter M
  times leave it at exactly N*M. A counter is forgotten after its window (Redis by
  expiry, the others in :meth:`SessionStore.purge_expired`) and is never listed with
  sessions. Counter names are SHA-256 hex digests (``engine.counter_name``): what is
  counted (a client's network, an account) never reaches the store in clear.
* Every method either completes or raises :class:`~sessionward.core.errors.StoreUnavailableError`
  (after the store's timeout) — never hangs, never half-writes silently.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from msgspec.structs import replace

from sessionward.core.engine import Hits, SessionLimit
from sessionward.core.records import CHAIN_LIMIT, EndReason, Entry, Expected, SessionRecord, Tombstone, Update
from sessionward.stores._contract import Established, StoreStats, check_counter

__all__ = ["Established", "SessionStore", "StoreStats", "check_counter"]


class SessionStore(ABC):
    """An async session store. Subclasses keep I/O small and share pure logic."""

    @abstractmethod
    async def load(self, key: str, now: float) -> Entry | None:
        """Return the record (until ``kept_until``) or unexpired tombstone under ``key``, else ``None``.

        Args:
            key: The storage key.
            now: The current time.

        One round trip. The idle clock is not written here: when a touch is due the
        exchange writes it with the request's save, at most one more round trip.
        """

    @abstractmethod
    async def save(self, key: str, update: Update) -> bool:
        """Apply ``update`` to the live record under ``key``.

        ``update.meta`` replaces the metadata whole (last writer wins), except that a save
        never changes who the session belongs to: ``meta.user`` changes only through
        :meth:`establish`, which keeps the per-user index right. "Live" here means "a record,
        not a tombstone": the engine only saves what it judged valid in the same request,
        so a record past ``expires_at`` but within retention is not refused by the store.

        Returns:
            ``False`` (and writes nothing) when ``key`` holds no record (ended or gone).
        """

    @abstractmethod
    async def establish(
        self,
        record: SessionRecord,
        *,
        retire: Tombstone | None = None,
        limit: SessionLimit | None = None,
        expect: Expected | None = None,
    ) -> Established:
        """Write a new record (login, rotation, first save), atomically.

        Args:
            record: The record to write under ``record.key`` (created or overwritten).
            retire: A tombstone to write over an old key, which leaves the user index.
            expect: The precondition: ``expect.key`` (the retired key, or ``record.key``
                for a login that keeps its ID) holds a live record at ``expect.version``.
                When it does not, nothing is written and the result says what is there.
            limit: For a login of ``record.meta.user``: the most live sessions the user
                may have counting the new one. Sessions other than ``record.key`` and
                ``retire.key`` count. When over, either refuse (``prevent_login``) or
                end the oldest by creation time with reason ``displaced``.

        Raises:
            LoginRefusedError: when ``limit.prevent_login`` and the user is at the limit;
                nothing is written then.
        """

    @abstractmethod
    async def end(self, tombstone: Tombstone) -> SessionRecord | None:
        """End the session under ``tombstone.key``, leaving the tombstone.

        Returns:
            The record that was live there, or ``None`` if there was none (then the
            tombstone is still written, unless a tombstone is already there).
        """

    async def discard(self, tombstone: Tombstone) -> None:
        """Replace an entry under ``tombstone.key`` that does not decode with ``tombstone``.

        A corrupt record is treated as invalid and removed (never a 500): the caller found
        that :meth:`load` raised :class:`~sessionward.core.errors.StoreError` for the key. Unlike
        :meth:`end`, what is there goes even if it looks like a tombstone: a store that
        cannot tell a corrupt tombstone from a sound one by itself overrides this.
        """
        await self.end(tombstone)

    @abstractmethod
    async def list_user(self, user: str, now: float) -> list[SessionRecord]:
        """Return the user's live sessions, oldest first."""

    @abstractmethod
    async def find_handle(self, handle: str, now: float) -> SessionRecord | None:
        """Return the live session whose handle is ``handle``, if any."""

    @abstractmethod
    async def end_user(
        self,
        user: str,
        reason: EndReason,
        now: float,
        tombstone_expires_at: float,
        *,
        keep_key: str | None = None,
    ) -> list[SessionRecord]:
        """End every live session of ``user`` except ``keep_key``; return those ended."""

    @abstractmethod
    async def purge_expired(self, now: float, batch_size: int = 500) -> int:
        """Remove up to ``batch_size`` expired entries; return how many went.

        Call until it returns less than ``batch_size`` to purge everything; the cost of a
        call is proportional to what it removes (expiry is indexed).
        """

    @abstractmethod
    async def stats(self, now: float) -> StoreStats:
        """Count live sessions, authenticated ones, users and tombstones."""

    @abstractmethod
    async def count_hit(self, name: str, window_s: float, now: float) -> Hits:
        """Count one hit on the fixed-window counter ``name``, atomically; return it after the hit.

        The first hit on a counter, or the first after its window ended, starts a window
        of ``window_s`` at ``now`` with a count of 1; every other hit adds 1. The store
        forgets the counter once its window has ended.

        Args:
            name: The counter's name: a SHA-256 hex digest (see ``engine.counter_name``).
            window_s: The length of a window, in seconds.
            now: The current time (the store's time, except that Redis also gives the
                counter a real expiry so it vanishes by itself).

        Raises:
            ValueError: ``name`` is not a SHA-256 hex digest or ``window_s`` is not a
                positive number; nothing is written.
        """

    @abstractmethod
    async def reset_counter(self, name: str) -> None:
        """Forget the counter ``name`` (its next hit starts a new window at 1).

        Raises:
            ValueError: ``name`` is not a SHA-256 hex digest.
        """

    async def setup(self) -> None:  # noqa: B027 - optional hook
        """Create the schema or whatever the backend needs (an explicit step)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    async def end_handle(
        self, handle: str, reason: EndReason, now: float, tombstone_expires_at: float, *, user: str | None = None
    ) -> SessionRecord | None:
        """End the session named by ``handle``; when ``user`` is given, only if it is theirs.

        Returns:
            The record ended, or ``None`` if no such live session (of that user) exists.
        """
        record = await self.find_handle(handle, now)
        if record is None:
            # Listed before a renewal or rotation moved the session: still end it, where it
            # is now. Otherwise a session renewed often enough would dodge revocation.
            moved = await self.find_moved(handle, now)
            if moved is None or (user is not None and moved.user != user):
                return None
            key, owner = moved.key, moved.user
        elif user is not None and record.meta.user != user:
            return None
        else:
            key, owner = record.key, record.meta.user
        tomb = Tombstone(key=key, reason=reason, user=owner, ended_at=now, expires_at=tombstone_expires_at)
        return await self.end_following(tomb, now)

    async def find_moved(self, handle: str, now: float) -> Tombstone | None:
        """Return the unexpired tombstone named by ``handle`` if it names a successor, else ``None``.

        A renewal or rotation leaves such a tombstone; :meth:`end_handle` follows it, so a
        handle from a listing made before the move still revokes the session.
        """
        return None

    async def end_following(self, tombstone: Tombstone, now: float) -> SessionRecord | None:
        """End the session under ``tombstone.key``, and wherever a renewal or rotation moved it.

        A request that loaded a session just before another request renewed it still
        holds the old key, which is now a tombstone naming the successor: ending only the
        old key would leave the successor live. Each step is :meth:`end` (atomic on its
        key); a move applies only to a live key, so once a key is ended the chain cannot
        grow past it, and following it to its end leaves no ID of the session live.

        Returns:
            The live record that was ended, or ``None`` if the session had already ended.
        """
        key = tombstone.key
        for _ in range(CHAIN_LIMIT):
            ended = await self.end(replace(tombstone, key=key))
            if ended is not None:
                return ended
            entry = await self.load(key, now)
            if not isinstance(entry, Tombstone) or entry.successor_key is None:
                return None
            key = entry.successor_key
        return None
