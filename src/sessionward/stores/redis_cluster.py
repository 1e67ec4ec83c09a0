"""The Redis store for a Redis Cluster, through redis-py's asyncio cluster client.

The layout, the scripts and every read are those of :class:`~sessionward.stores.redis.RedisStore`;
what differs is that a script may only touch keys of one slot, and a session and its
user's index hash to different slots, so the work of a login, a logout and an "end all
of a user's sessions" is split into steps:

* Atomic: everything on one session (load, save, end, write: the session hash and its
  handle key share the tag ``{handle}``), everything on one user's index (the limit
  check and registration of a login, pruning: both index keys share the tag ``{user}``),
  and a counter's hit (one script on its one key).
* Not atomic: the steps of a login (check the members' liveness, write the new session,
  admit it into the index under the limit, tombstone the old ID and the displaced
  sessions), of a logout (tombstone, then leave the index) and of ``end_user``.

Why that is safe: the limit itself is decided by one script on the user's slot, so two
racing logins of one user are serialized there and never both pass. The liveness
check that precedes it only removes members that are gone, and a session that has ended
never lives again, so a stale answer can only overcount (a refusal or displacement that
a retry clears), never let a login past the limit. The new session is written *before*
it is admitted (and deleted again if refused), so no reader ever finds an indexed member
whose hash is not there yet and prunes it. Sessions are tombstoned in their own slot
atomically; only their removal from the index may lag by a moment (or, if the app
process dies in between, until the entry's deadline), and readers skip and prune index
entries whose session is gone. The user index carries the absolute deadline of each
session and expires with the last one, so nothing in it outlives its sessions.

A move (renewal, rotation) checks its precondition and retires the old key in one
script on the old key's slot, after the new session is written and admitted: a
concurrent "end all sessions" finds the new one through the index or through the
tombstone's successor key, and a move that lost its race withdraws what it wrote.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

from msgspec.structs import replace
from redis.asyncio import RedisCluster

from sessionward.core.engine import SessionLimit
from sessionward.core.errors import LoginRefusedError, StoreError
from sessionward.core.records import EndReason, Expected, SessionRecord, Tombstone
from sessionward.stores import _redis_lua as lua
from sessionward.stores._contract import Established
from sessionward.stores._redis_errors import translate
from sessionward.stores._redis_layout import (
    Arg,
    displacement,
    is_live,
    live_record,
    members,
    not_applied,
    number,
    pairs,
    record_fields,
    seal_args,
    session_key,
    text,
    tomb_args,
    ttl_ms,
    user_tag,
)
from sessionward.stores._redis_url import DEFAULT_PREFIX
from sessionward.stores.redis import RedisStore

logger = logging.getLogger("sessionward")


class RedisClusterStore(RedisStore):
    """Sessions in a Redis Cluster; see the module docstring for what is atomic and why.

    Args:
        client: A redis-py asyncio ``RedisCluster`` client, created with
            ``decode_responses=False``. It is used as given: nothing connects to a
            default host.
        key_prefix: Prefix of every key; lets several applications share one cluster.
        record_format: As for :class:`~sessionward.stores.redis.RedisStore`.

    Raises:
        TypeError: the client is not a Redis Cluster client.
        ValueError: ``record_format`` is neither, or the client decodes replies to text.
    """

    cluster: ClassVar[bool] = True
    client: RedisCluster

    def __init__(
        self, client: RedisCluster, *, key_prefix: str = DEFAULT_PREFIX, record_format: str = "compact"
    ) -> None:
        super().__init__(client, key_prefix=key_prefix, record_format=record_format)
        self._ready = False
        self._ready_lock = asyncio.Lock()
        register = client.register_script
        self._write = register(lua.WRITE)
        self._admit = register(lua.ADMIT)
        self._claim_script = register(lua.CLAIM)

    async def _connect(self) -> None:
        """Learn the cluster's topology once, before any command.

        redis-py's asyncio cluster client (8.1) tears connections down mid-handshake when
        many first commands race its lazy start-up; discovering the nodes first avoids it.
        """
        if self._ready:
            return
        async with self._ready_lock:
            if not self._ready:
                with translate():
                    await self.client.initialize()
            self._ready = True

    async def close(self) -> None:
        await super().close()
        # redis-py's blocking cluster client (the generated twin of this store) leaves its
        # nodes' pools connected on close; the asyncio one has no such method (nor need).
        disconnect = getattr(self.client, "disconnect_connection_pools", None)
        if disconnect is not None:
            disconnect()

    async def _end_session(
        self, key: str, tomb: Tombstone, *, only_existing: bool = False, discard: bool = False, owner: str = ""
    ) -> dict[bytes, bytes] | None:
        """Tombstone ``key``, then take it out of its user's index: two steps, two slots."""
        previous = await self._run_end(
            key, tomb, only_existing=only_existing, discard=discard, unindex=False, owner=owner
        )
        if not previous:
            return None
        fields = pairs(previous)
        tag = fields.get(b"u")
        if tag is not None:
            with translate():
                await self._unindex(keys=self._user_keys(text(tag)), args=[self.prefix, key])
        return fields

    async def establish(
        self,
        record: SessionRecord,
        *,
        retire: Tombstone | None = None,
        limit: SessionLimit | None = None,
        expect: Expected | None = None,
    ) -> Established:
        """Write a new record in steps, each atomic in its slot (module docstring)."""
        await self._connect()
        user = record.meta.user
        if user is None:
            limit = None
        if expect is not None and expect.key == record.key:
            # A login that keeps its ID: the check and the write are on one key, one step.
            ttl = ttl_ms(record.kept_until, record.meta.last_access_at)
            reply = await self._claim(expect, ["write", ttl, *record_fields(record, compact=self.compact)])
            if reply[0] == 0:
                return not_applied(expect.key, reply[1])
            expect = None
        tag = user_tag(user) if user is not None else None
        now = limit.now if limit else record.meta.last_access_at
        skip = [retire.key] if retire is not None else []
        dead: list[str] = []
        existing = False
        if limit is not None and tag is not None:
            dead, existing = await self._find_dead(tag, record.key, skip, now)
        written = False
        previous_tag: bytes | None = None
        if not existing:
            # Written before it is admitted, so no reader finds it indexed but missing.
            previous_tag = await self._write_record(record)
            written = True
        victims: list[str] = []
        if tag is not None:
            args: list[Arg] = [self.prefix, number(now), limit.max_sessions if limit else 0]
            args += ["1" if limit and limit.prevent_login else "0", record.key]
            args += [number(record.meta.created_at), number(record.meta.absolute_deadline), len(skip), *skip, *dead]
            with translate():
                result = await self._admit(keys=self._user_keys(tag), args=args)
            if result[0] == 0:
                assert limit is not None
                assert user is not None
                if written:
                    with translate():
                        await self.client.delete(*self._session_keys(record.key))
                raise LoginRefusedError(user, limit.max_sessions)
            victims = [text(v) for v in result[1]]
        if not written:
            previous_tag = await self._write_record(record)
        if previous_tag is not None and text(previous_tag) != tag:
            with translate():
                await self._unindex(keys=self._user_keys(text(previous_tag)), args=[self.prefix, record.key])
        if retire is not None and retire.key != record.key and expect is not None:
            # The precondition and the retirement, atomic on the old key's slot. The new
            # session is already written (and admitted): a concurrent "end all sessions"
            # finds it through the index or through this tombstone's successor key.
            end = ["end", *tomb_args(retire.unsealed(), compact=self.compact), *seal_args(retire)]
            reply = await self._claim(expect, end)
            if reply[0] == 0:
                await self._withdraw(record.key, tag, victims)
                return not_applied(expect.key, reply[1])
            old_tag = pairs(reply[1]).get(b"u")
            if old_tag is not None:
                with translate():
                    await self._unindex(keys=self._user_keys(text(old_tag)), args=[self.prefix, retire.key])
        elif retire is not None and retire.key != record.key:
            await self._end_session(retire.key, retire)
        displaced: list[SessionRecord] = []
        displaced_tomb = displacement(user, limit)
        for victim in victims:
            assert displaced_tomb is not None
            assert tag is not None
            # Checked again in the victim's slot: a session that is not this user's stays.
            fields = await self._end_session(victim, displaced_tomb, only_existing=True, owner=tag)
            victim_record = live_record(victim, fields) if fields is not None else None
            if victim_record is not None:
                displaced.append(victim_record)
        return Established(displaced=displaced)

    async def _successor(self, key: str, now: float) -> str | None:
        """Return where the session under ``key`` moved, if it is a tombstone naming a successor."""
        try:
            entry = await self.load(key, now)
        except StoreError:
            return None  # corrupt: nothing to follow (its own next load removes it)
        return entry.successor_key if isinstance(entry, Tombstone) else None

    async def _claim(self, expect: Expected, tail: list[Arg]) -> Any:
        """Run CLAIM on the expected key's slot."""
        args: list[Arg] = [self.prefix, expect.key, str(expect.version), *tail]
        with translate():
            return await self._claim_script(keys=self._session_keys(expect.key), args=args)

    async def _withdraw(self, key: str, tag: str | None, victims: list[str]) -> None:
        """Undo the first steps of a move whose precondition failed: drop the new session."""
        if victims:
            logger.warning("a login lost a race after displacing %d session(s); they stay live", len(victims))
        with translate():
            if tag is not None:
                await self._unindex(keys=self._user_keys(tag), args=[self.prefix, key])
            await self.client.delete(*self._session_keys(key))

    async def _find_dead(self, tag: str, key: str, skip: list[str], now: float) -> tuple[list[str], bool]:
        """Return the user's indexed sessions that are no longer live, and whether ``key`` is live.

        A live session of another user (indexed here by mistake: a hand edit, a buggy
        migration) counts as dead: it is neither counted against the limit nor displaced,
        and the admission drops it from this index.
        """
        owner = tag.encode()
        with translate():
            indexed = members(await self.client.zrange(self._user_keys(tag)[0], 0, -1))
            candidates = [m for m in indexed if m != key and m not in skip]
            replies = await self._pipelined(
                [("hmget", session_key(self.prefix, m), ["e", "t", "u"]) for m in [*candidates, key]]
            )
        dead = [m for m, reply in zip(candidates, replies, strict=False) if not is_live(reply, now, owner)]
        return dead, is_live(replies[-1], now)

    async def _write_record(self, record: SessionRecord) -> bytes | None:
        ttl = ttl_ms(record.kept_until, record.meta.last_access_at)
        with translate():
            previous: bytes | None = await self._write(
                keys=self._session_keys(record.key),
                args=[self.prefix, record.key, ttl, *record_fields(record, compact=self.compact)],
            )
        return previous

    async def end_user(
        self,
        user: str,
        reason: EndReason,
        now: float,
        tombstone_expires_at: float,
        *,
        keep_key: str | None = None,
    ) -> list[SessionRecord]:
        """End the user's sessions one by one, each in its slot, then leave the index."""
        await self._connect()
        tomb = Tombstone(key="", reason=reason, user=user, ended_at=now, expires_at=tombstone_expires_at)
        tag = user_tag(user)
        index = self._user_keys(tag)
        with translate():
            indexed = [m for m in members(await self.client.zrange(index[0], 0, -1)) if m != keep_key]
        ended: list[SessionRecord | None] = []
        followed: list[SessionRecord] = []
        for member in indexed:
            # Only if it is this user's, checked in its slot: another user's session,
            # indexed here by mistake, stays (and only leaves this index below).
            fields = await self._end_session(member, tomb, only_existing=True, owner=tag)
            if fields is not None:
                ended.append(live_record(member, fields))
                continue
            # Not atomic with a move of this session on another slot: a renewal may
            # have retired the member just now, naming a successor not yet indexed.
            successor = await self._successor(member, now)
            if successor is None:
                continue
            moved = await self.end_following(replace(tomb, key=successor), now)
            if moved is not None and moved.key != keep_key:
                followed.append(moved)
        if indexed:
            with translate():
                await self._unindex(keys=index, args=[self.prefix, *indexed])
        return [r for r in [*ended, *followed] if r is not None and r.expires_at > now]
